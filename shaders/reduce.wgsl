// Reductions along one axis. Each replica's input is viewed as [outer, len, inner] and reduced
// over `len` into [outer, inner]; `dot` reduces x·y over a whole replica into one value.
//
// Entry `rows`: one invocation per output, a serial loop over the axis (many short reductions).
// Entry `tree`: one workgroup per output, WG strided partial sums then a shared-memory tree
// (few long reductions, where one invocation per output would leave the GPU idle).

struct Params {
  outer: u32,
  len: u32,
  inner: u32,
  batch: u32,
  xBatch: u32,   // elements between replicas of x (0 = shared)
  yBatch: u32,   // elements between replicas of y (dot only)
  alpha: f32,    // result scale (1/len for a mean)
  finalSqrt: u32, // 1: take the square root of the scaled result (norms)
  rowStride: u32, // rows: invocations per dispatch row; tree: workgroups per dispatch row
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override OP: u32 = 0u;   // one of the REDUCE_* codes below
override WG: u32 = 64u;

// Reduction codes (OP); src/kernels/reduce.ts keeps the same table, tests compare them.
const REDUCE_SUM = 0u;
const REDUCE_SUM_SQUARES = 1u;
const REDUCE_MAX = 2u;
const REDUCE_MIN = 3u;
const REDUCE_SUM_ABS = 4u;

var<workgroup> partial: array<f32, WG>;

fn identity() -> f32 {
  switch OP {
    case REDUCE_MAX: { return -3.402823e38; }
    case REDUCE_MIN: { return 3.402823e38; }
    default: { return 0.0; }
  }
}

fn combine(acc: f32, v: f32) -> f32 {
  switch OP {
    case REDUCE_SUM_SQUARES: { return acc + v * v; }
    case REDUCE_MAX: { return max(acc, v); }
    case REDUCE_MIN: { return min(acc, v); }
    case REDUCE_SUM_ABS: { return acc + abs(v); }
    default: { return acc + v; }
  }
}

// Partial results merge with + for sums, max/min for extrema (squares and |·| are already applied).
fn merge(a: f32, b: f32) -> f32 {
  switch OP {
    case REDUCE_MAX: { return max(a, b); }
    case REDUCE_MIN: { return min(a, b); }
    default: { return a + b; }
  }
}

fn finish(acc: f32) -> f32 {
  let scaled = params.alpha * acc;
  return select(scaled, sqrt(scaled), params.finalSqrt != 0u);
}

@compute @workgroup_size(WG, 1, 1)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let perReplica = params.outer * params.inner;
  let index = gid.y * params.rowStride + gid.x;
  if (index >= perReplica * params.batch) {
    return;
  }
  let b = index / perReplica;
  let o = (index % perReplica) / params.inner;
  let j = index % params.inner;
  var at = b * params.xBatch + o * params.len * params.inner + j;
  var acc = identity();
  for (var k = 0u; k < params.len; k += 1u) {
    acc = combine(acc, x[at]);
    at += params.inner;
  }
  out[index] = finish(acc);
}

// Shared tree reduction; `value` is this invocation's partial result.
fn workgroup_reduce(local: u32, value: f32) -> f32 {
  partial[local] = value;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (local < half) {
      partial[local] = merge(partial[local], partial[local + half]);
    }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(WG, 1, 1)
fn tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let perReplica = params.outer * params.inner;
  let index = wid.y * params.rowStride + wid.x;
  let valid = (index < perReplica * params.batch);
  let b = index / perReplica;
  let o = (index % perReplica) / params.inner;
  let j = index % params.inner;
  let base = b * params.xBatch + o * params.len * params.inner + j;
  var acc = identity();
  if (valid) {
    for (var k = lid.x; k < params.len; k += WG) {
      acc = combine(acc, x[base + k * params.inner]);
    }
  }
  let total = workgroup_reduce(lid.x, acc);
  if (valid && lid.x == 0u) {
    out[index] = finish(total);
  }
}

// out[b] = alpha · Σ_i x[b, i] · y[b, i] over `len` elements per replica, one workgroup per replica.
@compute @workgroup_size(WG, 1, 1)
fn dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  var acc = 0.0;
  for (var k = lid.x; k < params.len; k += WG) {
    acc += x[b * params.xBatch + k] * y[b * params.yBatch + k];
  }
  let total = workgroup_reduce(lid.x, acc);
  if (lid.x == 0u) {
    out[b] = finish(total);
  }
}
