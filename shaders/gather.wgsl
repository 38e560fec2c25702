// Gathers rows by index: out[b, r, :] = src[b, index[b, r], :]. Minibatches are drawn this way from
// a fixed dataset with indices made on the GPU, so nothing crosses to the CPU per step.

struct Params {
  rows: u32,       // rows gathered per replica
  rowLength: u32,  // elements per row
  srcRows: u32,    // rows available in src (indices are clamped below it)
  total: u32,      // batch · rows · rowLength
  srcBatch: u32,   // elements between replicas of src (0 = shared)
  indexBatch: u32, // indices between replicas (0 = shared)
  rowStride: u32,  // invocations per dispatch row
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256u;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let element = gid.y * params.rowStride + gid.x;
  if (element >= params.total) {
    return;
  }
  let perReplica = params.rows * params.rowLength;
  let b = element / perReplica;
  let r = (element % perReplica) / params.rowLength;
  let column = element % params.rowLength;
  let row = min(index[b * params.indexBatch + r], params.srcRows - 1u);
  out[element] = src[b * params.srcBatch + row * params.rowLength + column];
}
