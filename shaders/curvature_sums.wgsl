// Short per-replica sums of the curvature toolkit, one invocation per output and no barriers: on
// many replicas of small vectors (probe copies, per-sample gradients) a workgroup tree per replica
// costs far more than the sum itself.
//
// `dots`:      out[o(b)] = beta·out[o(b)] + alpha·Σ_{i<len} x[b·xBatch + i]·y[b·yBatch + i], where
//              o(b) = (b / outGroup)·outBatch + b % outGroup + outOffset (outGroup consecutive outputs per row)
// `group_sum`: out[r·outBatch + i] = beta·out[…] + alpha·Σ_{j<groups} x[(r·groups + j)·len + i]
//              (sums the `groups` consecutive replicas of each group: per-sample gradients → their sum)

struct DotParams {
  len: u32,
  batch: u32,
  rowStride: u32,  // invocations per dispatch row
  xBatch: u32,
  yBatch: u32,
  outGroup: u32,
  outBatch: u32,
  outOffset: u32,
  alpha: f32,
  beta: f32,       // 0 overwrites (out is not read), 1 accumulates
}

struct GroupParams {
  len: u32,
  groups: u32,
  total: u32,      // outputs: replicas · len
  rowStride: u32,
  outBatch: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> dotParams: DotParams;
@group(0) @binding(4) var<uniform> groupParams: GroupParams;

override WG: u32 = 64u;

@compute @workgroup_size(WG, 1, 1)
fn dots(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.y * dotParams.rowStride + gid.x;
  if (b >= dotParams.batch) {
    return;
  }
  var acc = 0.0;
  let xs = b * dotParams.xBatch;
  let ys = b * dotParams.yBatch;
  for (var i = 0u; i < dotParams.len; i += 1u) {
    acc += x[xs + i] * y[ys + i];
  }
  let at = (b / dotParams.outGroup) * dotParams.outBatch + b % dotParams.outGroup + dotParams.outOffset;
  var value = dotParams.alpha * acc;
  if (dotParams.beta != 0.0) {
    value += dotParams.beta * out[at];
  }
  out[at] = value;
}

@compute @workgroup_size(WG, 1, 1)
fn group_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.y * groupParams.rowStride + gid.x;
  if (index >= groupParams.total) {
    return;
  }
  let r = index / groupParams.len;
  let i = index % groupParams.len;
  var acc = 0.0;
  var at = r * groupParams.groups * groupParams.len + i;
  for (var j = 0u; j < groupParams.groups; j += 1u) {
    acc += x[at];
    at += groupParams.len;
  }
  let o = r * groupParams.outBatch + i;
  var value = groupParams.alpha * acc;
  if (groupParams.beta != 0.0) {
    value += groupParams.beta * out[o];
  }
  out[o] = value;
}
