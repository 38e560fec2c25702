// Many online-SGD steps of an Elman RNN student on RNN teacher–student data per dispatch, one
// invocation per replica: the sequence setups of the paper (inputs of T time steps of d features,
// a teacher RNN labels them, label noise is added, a student with a few hidden units learns).
//
// Per sample: x = S_x z (T·d features, time-major); y = teacher(x) + S_ε e; the student runs
// h_t = tanh(Wx x_t + Wh h_{t−1} + b), h_0 = 0, f = Wo h_T + bo. MSE: loss ½‖f − y‖²; cross-entropy:
// targets p = softmax(y), loss logsumexp(f) − ⟨p, f⟩. Minibatch mean; backpropagation through time and
// the update as the general path does (same Philox streams and Box–Muller pairing; only the order of
// floating-point additions differs).
//
// Student (h ≤ 4, d ≤ 8, m ≤ 8): h is a vec4; an input or output vector of up to 8 is a pair of vec4
// (lanes 0–3 and 4–7), Wx two mat4x4 (its input columns 0–3 and 4–7), Wo two (output rows 0–3 and
// 4–7). Padding is zero: padded hidden units stay 0 and get zero gradient, padded outputs are masked
// out of the softmax.
//
// Teacher (H hidden units): up to 4 in registers like the student (SmallRnn); up to
// RNN_MAX_TEACHER_HIDDEN from storage memory, where `pack_teacher` rewrites its parameters once
// per call into `packedTeacher`, four hidden units to a vec4 (the MLP kernel's layout): group q holds
// units 4q … 4q + 3 (zero past H); entry r·G + q holds row r of
//   r = 0              the biases b,
//   r = 1 + k          column k of Wx (k < d),
//   r = 1 + d + c      column c of Wh (c < 4G; zero past H),
//   r = 1 + d + 4G + a row a of Wo (a < m),
// then bo as two vec4s at (1 + d + 4G + m)·G. It stays in storage memory (a 100-unit teacher needs
// 47 KiB, more than the 16 KiB of workgroup memory every device has); on SwiftShader a load costs the
// same in any address space, on a GPU these replica-uniform reads hit the cache.
//
// `weights` packs the student tensors end to end, each for all replicas: Wx [R, h·d], Wh [R, h·h],
// b [R, h], Wo [R, m·h], bo [R, m]. `teacher` is the teacher's Wx (H×d), Wh (H×H), b (H), Wo (m×H),
// bo (m) end to end.

//!include fused_common.wgsl
//!include fused_sequence.wgsl

// Limits (src/kernels/fused.ts holds the same numbers; a test compares them).
const RNN_MAX_WIDTH = 8u;            // d and m: a pair of vec4
const RNN_MAX_HIDDEN = 4u;           // h: one vec4
const RNN_MAX_SEQUENCE = 16u;        // T: the states kept for backpropagation
const RNN_MAX_FEATURES = 64u;        // T·d: one sample's inputs
const RNN_MAX_TEACHER_HIDDEN = 128u; // H: the teacher's state

override HIDDEN: u32 = 4u;         // h (d = IN and m = OUT come from fused_common.wgsl)
override SEQUENCE: u32 = 4u;       // T
override TEACHER_HIDDEN: u32 = 4u; // H
override TEACHER_GROUPS: u32 = (TEACHER_HIDDEN + 3u) / 4u;
override CROSS_ENTROPY: bool = false;

const SEQUENCE_MAX_FEATURES = RNN_MAX_FEATURES;

@group(0) @binding(6) var<storage, read_write> packedTeacher: array<vec4<f32>>;

// Rows of the packed teacher per group: bias, d columns of Wx, 4G columns of Wh, m rows of Wo.
fn teacher_rows() -> u32 {
  return 1u + IN + 4u * TEACHER_GROUPS + OUT;
}

@compute @workgroup_size(64, 1, 1)
fn pack_teacher(@builtin(global_invocation_id) gid: vec3<u32>) {
  let H = TEACHER_HIDDEN;
  let G = TEACHER_GROUPS;
  let whAt = H * IN;
  let bAt = whAt + H * H;
  let woAt = bAt + H;
  let boAt = woAt + OUT * H;
  let rows = teacher_rows();
  let i = gid.x;
  if (i >= rows * G + 2u) {
    return;
  }
  var v = vec4<f32>(0.0);
  if (i >= rows * G) {
    let half = i - rows * G;
    for (var u = 0u; u < 4u; u += 1u) {
      let a = 4u * half + u;
      if (a < OUT) {
        v[u] = teacher[boAt + a];
      }
    }
    packedTeacher[i] = v;
    return;
  }
  let r = i / G;
  let q = i % G;
  for (var u = 0u; u < 4u; u += 1u) {
    let j = 4u * q + u;
    if (j < H) {
      if (r == 0u) {
        v[u] = teacher[bAt + j];
      } else if (r < 1u + IN) {
        v[u] = teacher[j * IN + (r - 1u)];
      } else if (r < 1u + IN + 4u * G) {
        let c = r - 1u - IN;
        if (c < H) {
          v[u] = teacher[whAt + j * H + c];
        }
      } else {
        v[u] = teacher[woAt + (r - 1u - IN - 4u * G) * H + j];
      }
    }
  }
  packedTeacher[i] = v;
}

// The student's states h_1 … h_{T−1} of the current sample (entry t holds h_t).
var<private> states: array<vec4<f32>, RNN_MAX_SEQUENCE + 1u>;
// The teacher's state and the next one, four units to a vec4.
var<private> teacherState: array<vec4<f32>, RNN_MAX_TEACHER_HIDDEN / 4u>;
var<private> teacherNext: array<vec4<f32>, RNN_MAX_TEACHER_HIDDEN / 4u>;

fn packed_column(row: u32, q: u32) -> vec4<f32> {
  return packedTeacher[row * TEACHER_GROUPS + q];
}

// Σ_k column(1 + k) · x_k over the d inputs, for teacher group q.
fn teacher_input_term(q: u32, x: Pair) -> vec4<f32> {
  var pre = packed_column(1u, q) * x.lo.x;
  if (IN > 1u) { pre += packed_column(2u, q) * x.lo.y; }
  if (IN > 2u) { pre += packed_column(3u, q) * x.lo.z; }
  if (IN > 3u) { pre += packed_column(4u, q) * x.lo.w; }
  if (IN > 4u) { pre += packed_column(5u, q) * x.hi.x; }
  if (IN > 5u) { pre += packed_column(6u, q) * x.hi.y; }
  if (IN > 6u) { pre += packed_column(7u, q) * x.hi.z; }
  if (IN > 7u) { pre += packed_column(8u, q) * x.hi.w; }
  return pre;
}

// One time step of the teacher in storage memory: teacherState ← tanh(Wx x_t + Wh state + b).
fn teacher_step(t: u32, x: Pair) {
  let G = TEACHER_GROUPS;
  for (var q = 0u; q < G; q += 1u) {
    var pre = packed_column(0u, q) + teacher_input_term(q, x);
    if (t > 0u) {
      for (var p = 0u; p < G; p += 1u) {
        let previous = teacherState[p];
        let row = 1u + IN + 4u * p;
        pre += packed_column(row, q) * previous.x + packed_column(row + 1u, q) * previous.y +
          packed_column(row + 2u, q) * previous.z + packed_column(row + 3u, q) * previous.w;
      }
    }
    teacherNext[q] = tanh(pre);
  }
  for (var q = 0u; q < G; q += 1u) {
    teacherState[q] = teacherNext[q];
  }
}

// The teacher's noise-free output from its last state, as a pair.
fn teacher_readout() -> Pair {
  let G = TEACHER_GROUPS;
  let rows = teacher_rows();
  var y = Pair(packedTeacher[rows * G], packedTeacher[rows * G + 1u]);
  let woRow = 1u + IN + 4u * G;
  for (var q = 0u; q < G; q += 1u) {
    let h = teacherState[q];
    for (var a = 0u; a < OUT; a += 1u) {
      let value = dot(packed_column(woRow + a, q), h);
      if (a < 4u) {
        y.lo[a] += value;
      } else {
        y.hi[a - 4u] += value;
      }
    }
  }
  return y;
}

// A teacher of at most 4 hidden units (the realizable setups: teacher and student of one size) held
// in registers like the student: no memory reads per sample, which on SwiftShader (a gather per
// lane for each load) made its evaluation cost as much as the rest of the step.
struct SmallRnn {
  WxLo: mat4x4<f32>,
  WxHi: mat4x4<f32>,
  Wh: mat4x4<f32>,
  b: vec4<f32>,
  WoLo: mat4x4<f32>,
  WoHi: mat4x4<f32>,
  boLo: vec4<f32>,
  boHi: vec4<f32>,
}

fn teacher_block(base: u32, rows: u32, cols: u32, r0: u32, c0: u32) -> mat4x4<f32> {
  var scratch = array<f32, 64>();
  for (var k = 0u; k < rows * cols; k += 1u) {
    scratch[k] = teacher[base + k];
  }
  return block_of(&scratch, rows, cols, r0, c0);
}

fn teacher_slice(base: u32, n: u32, first: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k += 1u) {
    if (first + k < n) {
      v[k] = teacher[base + first + k];
    }
  }
  return v;
}

fn load_small_teacher() -> SmallRnn {
  let H = TEACHER_HIDDEN;
  let whAt = H * IN;
  let bAt = whAt + H * H;
  let woAt = bAt + H;
  let boAt = woAt + OUT * H;
  return SmallRnn(
    teacher_block(0u, H, IN, 0u, 0u),
    teacher_block(0u, H, IN, 0u, 4u),
    teacher_block(whAt, H, H, 0u, 0u),
    teacher_slice(bAt, H, 0u),
    teacher_block(woAt, OUT, H, 0u, 0u),
    teacher_block(woAt, OUT, H, 4u, 0u),
    teacher_slice(boAt, OUT, 0u),
    teacher_slice(boAt, OUT, 4u),
  );
}

// One time step of a small teacher from its state (h_0 = 0: no Wh term at t = 0, as the general path).
fn small_teacher_step(net: SmallRnn, t: u32, x: Pair, state: vec4<f32>) -> vec4<f32> {
  var z = net.WxLo * x.lo + net.WxHi * x.hi + net.b;
  if (t > 0u) {
    z += net.Wh * state;
  }
  return tanh(z);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let streamReplica = replica + params.replicaOffset;
  let R = params.replicas;
  let d = IN;
  let h = HIDDEN;
  let m = OUT;

  let rootXAt = replica * params.rootXStride;
  let white = inputs_white(replica);
  let noiseRoot = load_noise_root(replica);

  // Offsets of this replica's tensors in the packing.
  let wxAt = replica * h * d;
  let whAt = R * h * d + replica * h * h;
  let bAt = R * h * (d + h) + replica * h;
  let woAt = R * h * (d + h + 1u) + replica * m * h;
  let boAt = R * h * (d + h + 1u + m) + replica * m;
  var WxLo = load_block(wxAt, h, d, 0u, 0u);
  var WxHi = load_block(wxAt, h, d, 0u, 4u);
  var Wh = load_block(whAt, h, h, 0u, 0u);
  var bias = load_slice(bAt, h, 0u);
  var WoLo = load_block(woAt, m, h, 0u, 0u);
  var WoHi = load_block(woAt, m, h, 4u, 0u);
  var boLo = load_slice(boAt, m, 0u);
  var boHi = load_slice(boAt, m, 4u);

  let direct = inputs_direct(white);
  var smallTeacher: SmallRnn;
  if (TEACHER_HIDDEN <= 4u) {
    smallTeacher = load_small_teacher();
  }

  let scale = 1.0 / f32(params.batchSize);
  var loss = 0.0;
  for (var s = 0u; s < params.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = params.stepLo + s;
    let step = vec2<u32>(lo, params.stepHi + select(0u, 1u, lo < params.stepLo));
    var gWxLo = mat4x4<f32>();
    var gWxHi = mat4x4<f32>();
    var gWh = mat4x4<f32>();
    var gb = vec4<f32>(0.0);
    var gWoLo = mat4x4<f32>();
    var gWoHi = mat4x4<f32>();
    var gboLo = vec4<f32>(0.0);
    var gboHi = vec4<f32>(0.0);
    cachedInputBlock = 0xFFFFFFFFu;
    cachedNoiseBlock = 0xFFFFFFFFu;
    loss = 0.0;
    for (var b = 0u; b < params.batchSize; b += 1u) {
      if (!direct) {
        draw_inputs(step, streamReplica, b, white, rootXAt);
      }
      // Forward, teacher and student side by side: h_t = tanh(Wx x_t + Wh h_{t−1} + b), h_0 = 0 (no Wh
      // term at t = 1, as the general path). The student's states h_1 … h_{T−1} are kept for
      // backpropagation, h_T in `last`.
      var teacherLast = vec4<f32>(0.0);
      var last = vec4<f32>(0.0);
      for (var t = 0u; t < SEQUENCE; t += 1u) {
        let x = sample_input(step, streamReplica, b, t, direct);
        if (direct) {
          keep_input(t, x);
        }
        if (TEACHER_HIDDEN <= 4u) {
          teacherLast = small_teacher_step(smallTeacher, t, x, teacherLast);
        } else {
          teacher_step(t, x);
        }
        var z = WxLo * x.lo + WxHi * x.hi + bias;
        if (t > 0u) {
          states[t] = last;
          z += Wh * last;
        }
        last = tanh(z);
      }
      var clean: Pair;
      if (TEACHER_HIDDEN <= 4u) {
        clean = Pair(smallTeacher.WoLo * teacherLast + smallTeacher.boLo, smallTeacher.WoHi * teacherLast + smallTeacher.boHi);
      } else {
        clean = teacher_readout();
      }
      let e = draw_noise(step, streamReplica, b);
      let y = noisy_label(clean, noiseRoot, e);
      let f = Pair(WoLo * last + boLo, WoHi * last + boHi);

      // δf = ∂(loss / B)/∂f: (f − y)/B for MSE, (softmax(f) − softmax(y))/B for cross-entropy.
      var dLo = vec4<f32>(0.0);
      var dHi = vec4<f32>(0.0);
      if (CROSS_ENTROPY) {
        let targets = softmax_of(y).p;
        let predicted = softmax_of(f);
        loss += predicted.logNormaliser - dot(targets.lo, f.lo) - dot(targets.hi, f.hi);
        dLo = (predicted.p.lo - targets.lo) * scale;
        dHi = (predicted.p.hi - targets.hi) * scale;
      } else {
        let rLo = f.lo - y.lo;
        let rHi = f.hi - y.hi;
        loss += 0.5 * (dot(rLo, rLo) + dot(rHi, rHi));
        dLo = rLo * scale;
        dHi = rHi * scale;
      }
      gWoLo += outer(dLo, last);
      gWoHi += outer(dHi, last);
      gboLo += dLo;
      gboHi += dHi;

      // Backpropagation through time: δz_t = δh_t ⊙ (1 − h_t²); δh_{t−1} = Whᵀ δz_t.
      var dh = dLo * WoLo + dHi * WoHi;
      var state = last;
      for (var t = SEQUENCE; t > 0u; t -= 1u) {
        let dz = dh * (vec4<f32>(1.0) - state * state);
        let x = input_at(t - 1u);
        gWxLo += outer(dz, x.lo);
        gWxHi += outer(dz, x.hi);
        gb += dz;
        if (t > 1u) {
          state = states[t - 1u];
          gWh += outer(dz, state);
          dh = dz * Wh;
        }
      }
    }
    let rate = params.learningRate;
    WxLo -= rate * gWxLo;
    WxHi -= rate * gWxHi;
    Wh -= rate * gWh;
    bias -= rate * gb;
    WoLo -= rate * gWoLo;
    WoHi -= rate * gWoHi;
    boLo -= rate * gboLo;
    boHi -= rate * gboHi;
  }
  lastLoss[replica] = loss * scale;
  store_block(wxAt, h, d, 0u, 0u, WxLo);
  store_block(wxAt, h, d, 0u, 4u, WxHi);
  store_block(whAt, h, h, 0u, 0u, Wh);
  store_slice(bAt, h, 0u, bias);
  store_block(woAt, m, h, 0u, 0u, WoLo);
  store_block(woAt, m, h, 4u, 0u, WoHi);
  store_slice(boAt, m, 0u, boLo);
  store_slice(boAt, m, 4u, boHi);
}
