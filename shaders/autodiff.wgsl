// Fused row kernels of the autodiff tape, one invocation per row of `len` elements (softmax rows
// are short: attention over a sequence), so each replaces a chain of launches and needs no barriers.
//
// `softmax`:          out = exp(x − max x) / Σ exp(x − max x) per row
// `softmax_backward`: out = s ∘ (g − ⟨g, s⟩) per row, the VJP of softmax with output s
// `softmax_backward_output`: out = h ∘ (g − ⟨g, s⟩) − g ⟨h, s⟩ per row, the VJP of
//                     softmax_backward(g, s) with respect to s (Hessian-vector products)

struct RowParams {
  len: u32,
  rows: u32,       // rows in all replicas
  rowStride: u32,  // invocations per dispatch row
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> rowParams: RowParams;

override WG: u32 = 64u;

@compute @workgroup_size(WG, 1, 1)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * rowParams.rowStride + gid.x;
  if (row >= rowParams.rows) {
    return;
  }
  let first = row * rowParams.len;
  var top = x[first];
  for (var i = 1u; i < rowParams.len; i += 1u) {
    top = max(top, x[first + i]);
  }
  var total = 0.0;
  for (var i = 0u; i < rowParams.len; i += 1u) {
    let e = exp(x[first + i] - top);
    out[first + i] = e;
    total += e;
  }
  let scale = 1.0 / total;
  for (var i = 0u; i < rowParams.len; i += 1u) {
    out[first + i] *= scale;
  }
}

// x holds the incoming gradient g, s the softmax output.
@compute @workgroup_size(WG, 1, 1)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * rowParams.rowStride + gid.x;
  if (row >= rowParams.rows) {
    return;
  }
  let first = row * rowParams.len;
  var inner = 0.0;
  for (var i = 0u; i < rowParams.len; i += 1u) {
    inner += x[first + i] * s[first + i];
  }
  for (var i = 0u; i < rowParams.len; i += 1u) {
    out[first + i] = s[first + i] * (x[first + i] - inner);
  }
}

@group(0) @binding(11) var<storage, read> h: array<f32>;

// x holds g, s the softmax output, h the gradient arriving at softmax_backward's output.
@compute @workgroup_size(WG, 1, 1)
fn softmax_backward_output(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * rowParams.rowStride + gid.x;
  if (row >= rowParams.rows) {
    return;
  }
  let first = row * rowParams.len;
  var gs = 0.0;
  var hs = 0.0;
  for (var i = 0u; i < rowParams.len; i += 1u) {
    gs += x[first + i] * s[first + i];
    hs += h[first + i] * s[first + i];
  }
  for (var i = 0u; i < rowParams.len; i += 1u) {
    out[first + i] = h[first + i] * (x[first + i] - gs) - x[first + i] * hs;
  }
}

// `sum_n`: out = a0 + a1 + … + a_{count−1} elementwise (gradient contributions of one node, all the
// same shape and batch), one launch instead of count − 1 pairwise adds. Unused inputs are bound to a0.
struct SumParams {
  total: u32,
  rowStride: u32,
  count: u32,
}

@group(0) @binding(4) var<storage, read> a0: array<f32>;
@group(0) @binding(5) var<storage, read> a1: array<f32>;
@group(0) @binding(6) var<storage, read> a2: array<f32>;
@group(0) @binding(7) var<storage, read> a3: array<f32>;
@group(0) @binding(8) var<storage, read> a4: array<f32>;
@group(0) @binding(9) var<storage, read> a5: array<f32>;
@group(0) @binding(10) var<uniform> sumParams: SumParams;

@compute @workgroup_size(WG, 1, 1)
fn sum_n(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * sumParams.rowStride + gid.x;
  if (i >= sumParams.total) {
    return;
  }
  var acc = a0[i] + a1[i];
  if (sumParams.count > 2u) {
    acc += a2[i];
  }
  if (sumParams.count > 3u) {
    acc += a3[i];
  }
  if (sumParams.count > 4u) {
    acc += a4[i];
  }
  if (sumParams.count > 5u) {
    acc += a5[i];
  }
  out[i] = acc;
}
