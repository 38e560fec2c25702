// Fused row kernels of the autodiff tape, one invocation per row of `len` elements (softmax rows
// are short: attention over a sequence), so each replaces a chain of launches and needs no barriers.
//
// `softmax`:          out = exp(x − max x) / Σ exp(x − max x) per row
// `softmax_backward`: out = s ∘ (g − ⟨g, s⟩) per row, the VJP of softmax with output s

struct RowParams {
  len: u32,
  rows: u32,       // rows in all replicas
  rowStride: u32,  // invocations per dispatch row
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> rp: RowParams;

override WG: u32 = 64u;

@compute @workgroup_size(WG, 1, 1)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * rp.rowStride + gid.x;
  if (row >= rp.rows) {
    return;
  }
  let first = row * rp.len;
  var top = x[first];
  for (var i = 1u; i < rp.len; i += 1u) {
    top = max(top, x[first + i]);
  }
  var total = 0.0;
  for (var i = 0u; i < rp.len; i += 1u) {
    let e = exp(x[first + i] - top);
    out[first + i] = e;
    total += e;
  }
  let scale = 1.0 / total;
  for (var i = 0u; i < rp.len; i += 1u) {
    out[first + i] *= scale;
  }
}

// x holds the incoming gradient g, s the softmax output.
@compute @workgroup_size(WG, 1, 1)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.y * rp.rowStride + gid.x;
  if (row >= rp.rows) {
    return;
  }
  let first = row * rp.len;
  var inner = 0.0;
  for (var i = 0u; i < rp.len; i += 1u) {
    inner += x[first + i] * s[first + i];
  }
  for (var i = 0u; i < rp.len; i += 1u) {
    out[first + i] = s[first + i] * (x[first + i] - inner);
  }
}
