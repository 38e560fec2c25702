// Gathers rows by index: out[b, r, :] = src[b, index[b, r], :]. Minibatches are drawn this way from
// a fixed dataset with indices made on the GPU, so nothing crosses to the CPU per step.
//
// Each invocation copies one chunk of up to `chunk` consecutive elements of one row: the row and its
// index are found once per chunk, not once per element (integer division and modulo by a uniform
// are emulated lane by lane on CPU adapters and cost more than the copy itself).

struct Params {
  rows: u32,       // rows gathered per replica
  rowLength: u32,  // elements per row
  srcRows: u32,    // rows available in src (indices are clamped below it)
  chunk: u32,      // elements per invocation
  chunksPerRow: u32, // ceil(rowLength / chunk)
  invocations: u32,  // batch · rows · chunksPerRow
  srcBatch: u32,   // elements between replicas of src (0 = shared)
  indexBatch: u32, // indices between replicas (0 = shared)
  rowStride: u32,  // invocations per dispatch row
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64u;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let invocation = gid.y * params.rowStride + gid.x;
  if (invocation >= params.invocations) {
    return;
  }
  let outRow = invocation / params.chunksPerRow; // b · rows + r
  let start = (invocation - outRow * params.chunksPerRow) * params.chunk;
  let end = min(start + params.chunk, params.rowLength);
  let b = outRow / params.rows;
  let r = outRow - b * params.rows;
  let row = min(index[b * params.indexBatch + r], params.srcRows - 1u);
  let source = b * params.srcBatch + row * params.rowLength;
  let destination = outRow * params.rowLength;
  for (var column = start; column < end; column += 1u) {
    out[destination + column] = src[source + column];
  }
}
