// Many online-SGD steps of a one-hidden-layer MLP student (every width ≤ 4) on teacher–student data
// per dispatch, one invocation per replica: the teacher–student setups of the paper (a wide teacher
// MLP labels Gaussian inputs, label noise is added, a narrow student learns).
//
// Per sample: x = S_x z; y = teacher(x) + S_ε e, the teacher read from storage (any hidden width);
// student f = W2 act(W1 x + b1) + b2; loss ½‖f − y‖² over the minibatch mean; backprop and update
// as the general path does (same Philox streams and Box–Muller pairing; only the order of
// floating-point additions differs). The student's layers are zero-padded mat4x4/vec4: padded
// hidden units have zero weights and bias, so they output 0 and receive zero gradient.
//
// `weights` packs the student tensors end to end, each for all replicas: W1 [R, h·d], b1 [R, h],
// W2 [R, m·h], b2 [R, m]. `teacher` packs the teacher's W1 (T×d), b1 (T), W2 (m×T), b2 (m).
// widths0 = (d, h, m, T).

//!include fused_common.wgsl

override HIDDEN: u32 = 4u; // h (d = IN and m = OUT come from fused_common.wgsl)
// Activations: false for ReLU, true for tanh.
override STUDENT_TANH: bool = false;
override TEACHER_TANH: bool = false;

fn activate(z: vec4<f32>) -> vec4<f32> {
  if (STUDENT_TANH) {
    return tanh(z);
  }
  return max(z, vec4<f32>(0.0));
}

// d act / dz from the pre-activation z and the output a (ReLU: 1 where z > 0, as reluBackward).
fn slope(z: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
  if (STUDENT_TANH) {
    return vec4<f32>(1.0) - a * a;
  }
  return select(vec4<f32>(0.0), vec4<f32>(1.0), z > vec4<f32>(0.0));
}

fn teacher_activate(z: f32) -> f32 {
  if (TEACHER_TANH) {
    return tanh(z);
  }
  return max(z, 0.0);
}

// Noise-free teacher output for one input, zero-padded to a vec4.
fn teacher_output(x: vec4<f32>) -> vec4<f32> {
  let T = p.widths0.w;
  let b1 = T * IN;
  let w2 = b1 + T;
  let b2 = w2 + OUT * T;
  var y = vec4<f32>(0.0);
  for (var a = 0u; a < OUT; a += 1u) {
    y[a] = teacher[b2 + a];
  }
  for (var j = 0u; j < T; j += 1u) {
    var pre = teacher[b1 + j];
    for (var k = 0u; k < IN; k += 1u) {
      pre += teacher[j * IN + k] * x[k];
    }
    let hidden = teacher_activate(pre);
    for (var a = 0u; a < OUT; a += 1u) {
      y[a] += teacher[w2 + a * T + j] * hidden;
    }
  }
  return y;
}

fn load_vector(base: u32, n: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < n; k += 1u) {
    v[k] = weights[base + k];
  }
  return v;
}

fn store_vector(base: u32, n: u32, v: vec4<f32>) {
  for (var k = 0u; k < n; k += 1u) {
    weights[base + k] = v[k];
  }
}

fn load_matrix(base: u32, rows: u32, cols: u32) -> mat4x4<f32> {
  var scratch: array<f32, 16>;
  for (var k = 0u; k < rows * cols; k += 1u) {
    scratch[k] = weights[base + k];
  }
  return load_rows(rows, cols, &scratch);
}

fn store_matrix(base: u32, rows: u32, cols: u32, m: mat4x4<f32>) {
  for (var i = 0u; i < rows; i += 1u) {
    for (var j = 0u; j < cols; j += 1u) {
      weights[base + i * cols + j] = m[j][i];
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= p.replicas) {
    return;
  }
  let streamReplica = replica + p.replicaOffset;
  let R = p.replicas;

  let sx = root_x(replica);
  let se = root_eps(replica);

  // Offsets of this replica's tensors in the packing.
  let w1At = replica * HIDDEN * IN;
  let b1At = R * HIDDEN * IN + replica * HIDDEN;
  let w2At = R * HIDDEN * (IN + 1u) + replica * OUT * HIDDEN;
  let b2At = R * HIDDEN * (IN + 1u + OUT) + replica * OUT;
  var W1 = load_matrix(w1At, HIDDEN, IN);
  var b1 = load_vector(b1At, HIDDEN);
  var W2 = load_matrix(w2At, OUT, HIDDEN);
  var b2 = load_vector(b2At, OUT);

  let scale = 1.0 / f32(p.batchSize);
  var loss = 0.0;
  for (var s = 0u; s < p.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = p.stepLo + s;
    let step = vec2<u32>(lo, p.stepHi + select(0u, 1u, lo < p.stepLo));
    var gW1 = mat4x4<f32>();
    var gb1 = vec4<f32>(0.0);
    var gW2 = mat4x4<f32>();
    var gb2 = vec4<f32>(0.0);
    cachedInputBlock = 0xFFFFFFFFu;
    cachedNoiseBlock = 0xFFFFFFFFu;
    var inputs = NormalCursor(0u, 0u, vec4<f32>());
    var noise = NormalCursor(0u, 0u, vec4<f32>());
    loss = 0.0;
    for (var b = 0u; b < p.batchSize; b += 1u) {
      let x = sx * sample_normals(STREAM_INPUTS, step, streamReplica, b, IN, &inputs);
      let y = teacher_output(x) + se * sample_normals(STREAM_LABEL_NOISE, step, streamReplica, b, OUT, &noise);
      let z1 = W1 * x + b1;
      let a1 = activate(z1);
      let r = W2 * a1 + b2 - y;
      loss += 0.5 * dot(r, r);
      // δ₂ = ∂(½‖f − y‖² / B)/∂f; δ₁ = (W2ᵀ δ₂) ⊙ act′(z1).
      let d2 = r * scale;
      gW2 += outer(d2, a1);
      gb2 += d2;
      let d1 = (d2 * W2) * slope(z1, a1);
      gW1 += outer(d1, x);
      gb1 += d1;
    }
    W1 -= p.learningRate * gW1;
    b1 -= p.learningRate * gb1;
    W2 -= p.learningRate * gW2;
    b2 -= p.learningRate * gb2;
  }
  lastLoss[replica] = loss * scale;
  store_matrix(w1At, HIDDEN, IN, W1);
  store_vector(b1At, HIDDEN, b1);
  store_matrix(w2At, OUT, HIDDEN, W2);
  store_vector(b2At, OUT, b2);
}
