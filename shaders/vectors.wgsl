// Vector kernels of the curvature toolkit: strided copies between a flat parameter vector and the
// parameter tensors (with replica repeat/tile for probe copies and per-sample replicas), and unit
// vectors for exact traces and dense Hessians.
//
// Everything is [batch, n] per launch; replica b of an operand starts at b · (its batch stride).

struct CopyParams {
  len: u32,        // elements copied per replica
  total: u32,      // batch · len
  rowStride: u32,  // invocations per dispatch row (2-D dispatch when total exceeds one axis)
  xBatch: u32,     // elements between replicas of x
  xOffset: u32,    // first element of replica 0 in x
  xDiv: u32,       // source replica = (b / xDiv) % xMod: repeat (xDiv = copies) or tile (xMod = count)
  xMod: u32,
  outBatch: u32,   // elements between replicas of out
  outOffset: u32,  // first element of replica 0 in out
  alpha: f32,      // out = alpha · x
}

struct UnitParams {
  n: u32,          // vector length per replica
  total: u32,      // batch · n
  rowStride: u32,
  copies: u32,     // replica b holds e_{start + b % copies} (a zero vector past the end)
  start: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> copyParams: CopyParams;
@group(0) @binding(3) var<uniform> unitParams: UnitParams;

override WG: u32 = 256u;

// out[b · outBatch + outOffset + i] = alpha · x[((b / xDiv) % xMod) · xBatch + xOffset + i]
@compute @workgroup_size(WG, 1, 1)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.y * copyParams.rowStride + gid.x;
  if (index >= copyParams.total) {
    return;
  }
  let b = index / copyParams.len;
  let i = index % copyParams.len;
  let source = ((b / copyParams.xDiv) % copyParams.xMod) * copyParams.xBatch + copyParams.xOffset + i;
  out[b * copyParams.outBatch + copyParams.outOffset + i] = copyParams.alpha * x[source];
}

// out[b, i] = 1 where i = start + b % copies, else 0.
@compute @workgroup_size(WG, 1, 1)
fn unit(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.y * unitParams.rowStride + gid.x;
  if (index >= unitParams.total) {
    return;
  }
  let b = index / unitParams.n;
  let i = index % unitParams.n;
  out[index] = select(0.0, 1.0, i == unitParams.start + b % unitParams.copies);
}
