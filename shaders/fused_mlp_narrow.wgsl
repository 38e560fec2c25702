// Many online-SGD steps of a one-hidden-layer MLP student (every width ≤ 4) on teacher–student data
// per dispatch, one invocation per replica: the teacher–student setups of the paper (a wide teacher
// MLP labels Gaussian inputs, label noise is added, a narrow student learns).
//
// Per sample: x = S_x z; y = teacher(x) + S_ε e; student f = W2 act(W1 x + b1) + b2; loss
// ½‖f − y‖² (MSE) or logsumexp(f) − ⟨softmax(y), f⟩ (cross-entropy against softmax targets), minibatch mean; backprop and update as the general path does (same Philox
// streams and Box–Muller pairing; only the order of floating-point additions differs). The
// student's layers are zero-padded mat4x4/vec4: padded hidden units have zero weights and bias, so
// they output 0 and receive zero gradient.
//
// The teacher (T hidden units, T up to a few hundred) is what a sample costs: its weights are read
// once per dispatch into workgroup memory, four hidden units to a vec4 (see load_teacher), and
// evaluated four units per iteration. On SwiftShader every load of a shared array is a per-lane
// gather (4–7 ns per vec4 in any address space), so this layout, with 1 + d + m vec4 loads per four
// units, ran 2.4× the previous one (a unit at a time, straight from storage) with a 100-unit
// teacher at 8 replicas, 3.6× at one replica.
//
// `weights` packs the student tensors end to end, each for all replicas: W1 [R, h·d], b1 [R, h],
// W2 [R, m·h], b2 [R, m]. `teacher` packs the teacher's W1 (T×d), b1 (T), W2 (m×T), b2 (m).
// widths0 = (d, h, m, T).

//!include fused_common.wgsl
//!include fused_softmax.wgsl

override HIDDEN: u32 = 4u; // h (d = IN and m = OUT come from fused_common.wgsl)
// Activations: false for ReLU, true for tanh.
override STUDENT_TANH: bool = false;
override TEACHER_TANH: bool = false;
override CROSS_ENTROPY: bool = false;

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

// The teacher in workgroup memory, by groups of four hidden units: group q holds units 4q … 4q + 3
// (zero-padded past T, which adds act(0)·0 = 0): their biases; column k of W1 (k < d) at k·G + q;
// row a of W2 (a < m) at a·G + q. Sized for 16 KiB, the limit every WebGPU device has (fused.ts
// checks (1 + d + m)·G·16 bytes fit).
override TEACHER_HIDDEN: u32 = 4u;
override TEACHER_GROUPS: u32 = (TEACHER_HIDDEN + 3u) / 4u;
var<workgroup> teacherBias: array<vec4<f32>, TEACHER_GROUPS>;
var<workgroup> teacherIn: array<vec4<f32>, IN * TEACHER_GROUPS>;
var<workgroup> teacherOut: array<vec4<f32>, OUT * TEACHER_GROUPS>;

// The workgroup's invocations share the copy from `teacher` (W1 T×d, b1 T, W2 m×T, b2 m).
fn load_teacher(local: u32) {
  let T = TEACHER_HIDDEN;
  let G = TEACHER_GROUPS;
  let b1 = T * IN;
  let w2 = b1 + T;
  for (var q = local; q < G; q += WG) {
    var bias = vec4<f32>(0.0);
    // Explicit initialisers: on SwiftShader a `var` declared without one in this loop kept the
    // previous iteration's values, which a padded group (T not a multiple of 4) then used.
    var columns = array<vec4<f32>, 4>();
    var rows = array<vec4<f32>, 4>();
    for (var u = 0u; u < 4u; u += 1u) {
      let j = 4u * q + u;
      if (j < T) {
        bias[u] = teacher[b1 + j];
        for (var k = 0u; k < IN; k += 1u) {
          columns[k][u] = teacher[j * IN + k];
        }
        for (var a = 0u; a < OUT; a += 1u) {
          rows[a][u] = teacher[w2 + a * T + j];
        }
      }
    }
    teacherBias[q] = bias;
    for (var k = 0u; k < IN; k += 1u) {
      teacherIn[k * G + q] = columns[k];
    }
    for (var a = 0u; a < OUT; a += 1u) {
      teacherOut[a * G + q] = rows[a];
    }
  }
}

fn teacher_activate(z: vec4<f32>) -> vec4<f32> {
  if (TEACHER_TANH) {
    return tanh(z);
  }
  return max(z, vec4<f32>(0.0));
}

// Noise-free teacher output b2 + W2 act(W1 x + b1), zero-padded to a vec4. IN and OUT are pipeline
// constants, so the width branches fold away.
fn teacher_output(x: vec4<f32>, b2: vec4<f32>) -> vec4<f32> {
  let G = TEACHER_GROUPS;
  var y = b2;
  for (var q = 0u; q < G; q += 1u) {
    var pre = teacherBias[q] + teacherIn[q] * x.x;
    if (IN > 1u) { pre += teacherIn[G + q] * x.y; }
    if (IN > 2u) { pre += teacherIn[2u * G + q] * x.z; }
    if (IN > 3u) { pre += teacherIn[3u * G + q] * x.w; }
    let hidden = teacher_activate(pre);
    y.x += dot(teacherOut[q], hidden);
    if (OUT > 1u) { y.y += dot(teacherOut[G + q], hidden); }
    if (OUT > 2u) { y.z += dot(teacherOut[2u * G + q], hidden); }
    if (OUT > 3u) { y.w += dot(teacherOut[3u * G + q], hidden); }
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
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) local: u32) {
  load_teacher(local);
  workgroupBarrier();
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let streamReplica = replica + params.replicaOffset;
  let R = params.replicas;

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

  let teacherB2At = TEACHER_HIDDEN * (IN + 1u + OUT);
  var teacherB2 = vec4<f32>(0.0);
  for (var a = 0u; a < OUT; a += 1u) {
    teacherB2[a] = teacher[teacherB2At + a];
  }
  let scale = 1.0 / f32(params.batchSize);
  var loss = 0.0;
  for (var s = 0u; s < params.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = params.stepLo + s;
    let step = vec2<u32>(lo, params.stepHi + select(0u, 1u, lo < params.stepLo));
    var gW1 = mat4x4<f32>();
    var gb1 = vec4<f32>(0.0);
    var gW2 = mat4x4<f32>();
    var gb2 = vec4<f32>(0.0);
    cachedInputBlock = 0xFFFFFFFFu;
    cachedNoiseBlock = 0xFFFFFFFFu;
    var inputs = NormalCursor(0u, 0u, vec4<f32>());
    var noise = NormalCursor(0u, 0u, vec4<f32>());
    loss = 0.0;
    for (var b = 0u; b < params.batchSize; b += 1u) {
      let x = sx * sample_normals(STREAM_INPUTS, step, streamReplica, b, IN, &inputs);
      let y = teacher_output(x, teacherB2) + se * sample_normals(STREAM_LABEL_NOISE, step, streamReplica, b, OUT, &noise);
      let z1 = W1 * x + b1;
      let a1 = activate(z1);
      let f = W2 * a1 + b2;
      // δ₂ = ∂(loss / B)/∂f: (f − y)/B for MSE, (softmax(f) − softmax(y))/B for cross-entropy.
      var d2 = vec4<f32>(0.0);
      if (CROSS_ENTROPY) {
        let targets = softmax_of(y).p;
        let predicted = softmax_of(f);
        loss += predicted.logNormaliser - dot(targets, f);
        d2 = (predicted.p - targets) * scale;
      } else {
        let r = f - y;
        loss += 0.5 * dot(r, r);
        d2 = r * scale;
      }
      // δ₁ = (W2ᵀ δ₂) ⊙ act′(z1).
      gW2 += outer(d2, a1);
      gb2 += d2;
      let d1 = (d2 * W2) * slope(z1, a1);
      gW1 += outer(d1, x);
      gb1 += d1;
    }
    W1 -= params.learningRate * gW1;
    b1 -= params.learningRate * gb1;
    W2 -= params.learningRate * gW2;
    b2 -= params.learningRate * gb2;
  }
  lastLoss[replica] = loss * scale;
  store_matrix(w1At, HIDDEN, IN, W1);
  store_vector(b1At, HIDDEN, b1);
  store_matrix(w2At, OUT, HIDDEN, W2);
  store_vector(b2At, OUT, b2);
}
