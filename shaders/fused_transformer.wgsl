// Many online-SGD steps of a one-block Transformer student on Transformer teacher–student data per
// dispatch, one invocation per replica (the sequence setups of the paper, as fused_rnn.wgsl does for
// the RNN).
//
// Per sample: x = S_x z (T tokens of d features, time-major); y = teacher(x) + S_ε e. The model (the
// general path's transformerForward, src/models/model.ts): e_t = Win x_t + bin + pos_t; per head h
// q_t = Wq_h e_t, k_t, v_t likewise, A_ts = softmax_s(q_t·k_s/√dh), attention_t = Σ_h Wo_h Σ_s A_ts v_s;
// h1_t = e_t + attention_t; h2_t = h1_t + W2 relu(W1 h1_t + b1) + b2; f = Wout mean_t(h2_t) + bout.
// No masking, no layer norm. MSE: loss ½‖f − y‖²; cross-entropy: targets p = softmax(y), loss
// logsumexp(f) − ⟨p, f⟩. Minibatch mean; the same Philox streams and update as the general path (only
// the order of floating-point additions differs).
//
// Layout: every vector of up to 8 (inputs, model width D, student MLP, outputs) is a Pair of vec4 and
// every matrix a Mat8 of four zero-padded mat4x4 blocks. The heads are stacked: Wq, Wk, Wv are D×D with
// head h's rows h·dh … h·dh + dh − 1, Wo is D×D with head h's columns there, so q_t, k_t, v_t are one
// Pair each and a head's dot product is a sum over its lanes (`head_sums`, broadcast back to those
// lanes): softmax, mixing and their backward then run lane-wise for all heads at once. Padded lanes
// stay 0 and get zero gradient; padded outputs are masked out of the softmax.
//
// Teacher: its embedding, attention and readout (D, d, m ≤ 8) in registers like the student; its MLP
// (up to TRANSFORMER_MAX_TEACHER_HIDDEN units) from storage memory, rewritten once per call by
// `pack_teacher` into `packedTeacher`, four hidden units to a vec4: group q holds units 4q … 4q + 3
// (zero past the teacher's width) in TEACHER_ROWS vec4s from q·TEACHER_ROWS: b1, then column k of W1
// (k < D), then for each of the four units its column of W2 as a pair (rows 0–3, 4–7).
//
// `weights` packs the student tensors end to end in the model's parameter order, each for all
// replicas: Win, bin, pos, then per head Wq_h, Wk_h, Wv_h, Wo_h, then W1, b1, W2, b2, Wout, bout.
// `teacher` holds the teacher's tensors in the same order (batch 1).

//!include fused_common.wgsl
//!include fused_sequence.wgsl

// Limits (src/kernels/fused.ts holds the same numbers; a test compares them).
const TRANSFORMER_MAX_WIDTH = 8u;            // d, m, D and the student's MLP: a Pair
const TRANSFORMER_MAX_SEQUENCE = 8u;         // T: the tokens kept for the backward pass
const TRANSFORMER_MAX_TEACHER_HIDDEN = 128u; // the teacher's MLP, from storage memory

override MODEL: u32 = 8u;       // D (d = IN and m = OUT come from fused_common.wgsl)
override HEADS: u32 = 2u;       // H, dividing D
override MLP: u32 = 4u;         // the student's MLP width
override SEQUENCE: u32 = 4u;    // T
override TEACHER_MLP: u32 = 16u;
override HEAD_DIM: u32 = MODEL / HEADS;
override TEACHER_GROUPS: u32 = (TEACHER_MLP + 3u) / 4u;
// Rows of the packed teacher per group of four units: b1, D columns of W1, four columns of W2 as pairs.
override TEACHER_ROWS: u32 = 1u + MODEL + 8u;
// Whether a width needs the upper half of its Pair (the lower-half-only products skip it).
override IN_HI: bool = IN > 4u;
override OUT_HI: bool = OUT > 4u;
override MODEL_HI: bool = MODEL > 4u;
override MLP_HI: bool = MLP > 4u;

const SEQUENCE_MAX_FEATURES = TRANSFORMER_MAX_SEQUENCE * TRANSFORMER_MAX_WIDTH;

@group(0) @binding(6) var<storage, read_write> packedTeacher: array<vec4<f32>>;

// The model's tensors (parameter order), for `element_at`.
const KIND_WIN = 0u;
const KIND_BIN = 1u;
const KIND_POS = 2u;
const KIND_WQ = 3u; // stacked over heads: D×D, head h in rows h·dh …
const KIND_WK = 4u;
const KIND_WV = 5u;
const KIND_WO = 6u; // stacked over heads: D×D, head h in columns h·dh …
const KIND_W1 = 7u;
const KIND_B1 = 8u;
const KIND_W2 = 9u;
const KIND_B2 = 10u;
const KIND_WOUT = 11u;
const KIND_BOUT = 12u;

// Index in the packing of element (r, c) of a tensor (vectors: element r; pos: row r = t, column c)
// of `replica` of R, for a model whose MLP has `mlp` units.
fn element_at(kind: u32, r: u32, c: u32, mlp: u32, R: u32, replica: u32) -> u32 {
  let D = MODEL;
  let dh = HEAD_DIM;
  let headsAt = D * IN + D + SEQUENCE * D;
  let w1At = headsAt + 4u * D * D;
  let b1At = w1At + mlp * D;
  let w2At = b1At + mlp;
  let b2At = w2At + D * mlp;
  let woutAt = b2At + D;
  let boutAt = woutAt + OUT * D;
  var prefix = 0u;
  var size = 0u;
  var index = 0u;
  switch kind {
    case KIND_WIN: { size = D * IN; index = r * IN + c; }
    case KIND_BIN: { prefix = D * IN; size = D; index = r; }
    case KIND_POS: { prefix = D * IN + D; size = SEQUENCE * D; index = r * D + c; }
    case KIND_WQ, KIND_WK, KIND_WV: {
      prefix = headsAt + (4u * (r / dh) + kind - KIND_WQ) * dh * D;
      size = dh * D;
      index = (r % dh) * D + c;
    }
    case KIND_WO: {
      prefix = headsAt + (4u * (c / dh) + 3u) * dh * D;
      size = D * dh;
      index = r * dh + c % dh;
    }
    case KIND_W1: { prefix = w1At; size = mlp * D; index = r * D + c; }
    case KIND_B1: { prefix = b1At; size = mlp; index = r; }
    case KIND_W2: { prefix = w2At; size = D * mlp; index = r * mlp + c; }
    case KIND_B2: { prefix = b2At; size = D; index = r; }
    case KIND_WOUT: { prefix = woutAt; size = OUT * D; index = r * D + c; }
    default: { prefix = boutAt; size = OUT; index = r; } // KIND_BOUT
  }
  return R * prefix + replica * size + index;
}

// The teacher's element (batch 1, its own MLP width).
fn teacher_value(kind: u32, r: u32, c: u32) -> f32 {
  return teacher[element_at(kind, r, c, TEACHER_MLP, 1u, 0u)];
}

@compute @workgroup_size(64, 1, 1)
fn pack_teacher(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= TEACHER_GROUPS * TEACHER_ROWS) {
    return;
  }
  let q = i / TEACHER_ROWS;
  let r = i % TEACHER_ROWS;
  var v = vec4<f32>(0.0);
  for (var u = 0u; u < 4u; u += 1u) {
    if (r == 0u) {
      if (4u * q + u < TEACHER_MLP) {
        v[u] = teacher_value(KIND_B1, 4u * q + u, 0u);
      }
    } else if (r <= MODEL) {
      if (4u * q + u < TEACHER_MLP) {
        v[u] = teacher_value(KIND_W1, 4u * q + u, r - 1u);
      }
    } else {
      // Unit 4q + (r − 1 − D) / 2 of W2's columns, rows 0–3 or 4–7.
      let unit = 4u * q + (r - 1u - MODEL) / 2u;
      let row = 4u * ((r - 1u - MODEL) % 2u) + u;
      if (unit < TEACHER_MLP && row < MODEL) {
        v[u] = teacher_value(KIND_W2, row, unit);
      }
    }
  }
  packedTeacher[i] = v;
}

// A matrix of up to 8×8 as four zero-padded blocks (rows 0–3 / 4–7, columns 0–3 / 4–7).
struct Mat8 {
  ll: mat4x4<f32>,
  lh: mat4x4<f32>,
  hl: mat4x4<f32>,
  hh: mat4x4<f32>,
}

// W x for W rows × cols; `rowsHi`, `colsHi`: whether rows or columns reach past 4 (pipeline constants,
// so the zero blocks cost nothing).
fn mv(W: Mat8, x: Pair, rowsHi: bool, colsHi: bool) -> Pair {
  var lo = W.ll * x.lo;
  var hi = vec4<f32>(0.0);
  if (colsHi) {
    lo += W.lh * x.hi;
  }
  if (rowsHi) {
    hi = W.hl * x.lo;
    if (colsHi) {
      hi += W.hh * x.hi;
    }
  }
  return Pair(lo, hi);
}

// Wᵀ y for W rows × cols.
fn mtv(W: Mat8, y: Pair, rowsHi: bool, colsHi: bool) -> Pair {
  var lo = y.lo * W.ll;
  var hi = vec4<f32>(0.0);
  if (rowsHi) {
    lo += y.hi * W.hl;
  }
  if (colsHi) {
    hi = y.lo * W.lh;
    if (rowsHi) {
      hi += y.hi * W.hh;
    }
  }
  return Pair(lo, hi);
}

// G += a bᵀ.
fn add_outer(G: ptr<function, Mat8>, a: Pair, b: Pair, rowsHi: bool, colsHi: bool) {
  (*G).ll += outer(a.lo, b.lo);
  if (colsHi) {
    (*G).lh += outer(a.lo, b.hi);
  }
  if (rowsHi) {
    (*G).hl += outer(a.hi, b.lo);
    if (colsHi) {
      (*G).hh += outer(a.hi, b.hi);
    }
  }
}

fn sgd_matrix(W: Mat8, G: Mat8, rate: f32) -> Mat8 {
  return Mat8(W.ll - rate * G.ll, W.lh - rate * G.lh, W.hl - rate * G.hl, W.hh - rate * G.hh);
}

fn plus(a: Pair, b: Pair) -> Pair {
  return Pair(a.lo + b.lo, a.hi + b.hi);
}

fn times(a: Pair, b: Pair) -> Pair {
  return Pair(a.lo * b.lo, a.hi * b.hi);
}

fn scaled(a: Pair, s: f32) -> Pair {
  return Pair(a.lo * s, a.hi * s);
}

// Each lane gets the sum of p over its head's lanes (lanes past D: 0, as p is 0 there). Heads of 4
// lanes (the anisotropy sweep's) are the halves of the pair; others sum under masks.
fn head_sums(p: Pair) -> Pair {
  if (HEAD_DIM == 4u) {
    return Pair(vec4<f32>(dot(p.lo, vec4<f32>(1.0))), vec4<f32>(dot(p.hi, vec4<f32>(1.0))));
  }
  var out = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
  let lanesLo = vec4<u32>(0u, 1u, 2u, 3u) / HEAD_DIM;
  let lanesHi = vec4<u32>(4u, 5u, 6u, 7u) / HEAD_DIM;
  for (var h = 0u; h < HEADS; h += 1u) {
    let maskLo = select(vec4<f32>(0.0), vec4<f32>(1.0), lanesLo == vec4<u32>(h));
    let maskHi = select(vec4<f32>(0.0), vec4<f32>(1.0), lanesHi == vec4<u32>(h));
    let sum = dot(p.lo, maskLo) + dot(p.hi, maskHi);
    out.lo += maskLo * sum;
    out.hi += maskHi * sum;
  }
  return out;
}

// The embedding and attention parameters (teacher or student); positions live in `pos`/`teacherPos`.
struct Attention {
  Win: Mat8,
  bin: Pair,
  Wq: Mat8,
  Wk: Mat8,
  Wv: Mat8,
  Wo: Mat8,
}

// Per token of the current sample (entry t): embedding, q, k, v, the heads' mixed values, h1 and the
// student's MLP activations; the attention weights A_ts = w_ts / Σ_s w_ts as the unnormalised w_ts
// (entry t·TRANSFORMER_MAX_SEQUENCE + s, each lane its head's weight) and 1 / Σ_s w_ts per t; the
// student's gradients with respect to k_s, v_s and e_s. (On SwiftShader each dynamically indexed
// access is code per lane: fewer of them compile faster.)
var<private> tokenE: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> tokenQ: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> tokenK: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> tokenV: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> tokenMixed: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> tokenH1: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> tokenU: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> attention: array<Pair, TRANSFORMER_MAX_SEQUENCE * TRANSFORMER_MAX_SEQUENCE>;
var<private> inverseTotals: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> gradK: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> gradV: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> gradE: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
// Positional embeddings (student, teacher) and the student's gradient of them.
var<private> pos: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> teacherPos: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
var<private> gradPos: array<Pair, TRANSFORMER_MAX_SEQUENCE>;

// Embedding and attention of the current sample's tokens (in `features`): fills tokenE/Q/K/V, the
// attention weights, tokenMixed and tokenH1 = e + attention.
fn attend(net: Attention, teacherSide: bool) {
  let inverseRoot = 1.0 / sqrt(f32(HEAD_DIM));
  for (var t = 0u; t < SEQUENCE; t += 1u) {
    var position: Pair;
    if (teacherSide) {
      position = teacherPos[t];
    } else {
      position = pos[t];
    }
    let e = plus(plus(mv(net.Win, input_at(t), MODEL_HI, IN_HI), net.bin), position);
    tokenE[t] = e;
    tokenQ[t] = mv(net.Wq, e, MODEL_HI, MODEL_HI);
    tokenK[t] = mv(net.Wk, e, MODEL_HI, MODEL_HI);
    tokenV[t] = mv(net.Wv, e, MODEL_HI, MODEL_HI);
  }
  let lowest = vec4<f32>(-3.0e38);
  for (var t = 0u; t < SEQUENCE; t += 1u) {
    let q = tokenQ[t];
    let row = t * TRANSFORMER_MAX_SEQUENCE;
    var top = Pair(lowest, lowest);
    for (var s = 0u; s < SEQUENCE; s += 1u) {
      let score = scaled(head_sums(times(q, tokenK[s])), inverseRoot);
      attention[row + s] = score;
      top = Pair(max(top.lo, score.lo), max(top.hi, score.hi));
    }
    // Unnormalised weights w_ts = exp(score − max) are kept; A_ts = w_ts / Σ_s w_ts (inverseTotals[t]).
    var total = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
    var mixed = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
    for (var s = 0u; s < SEQUENCE; s += 1u) {
      let score = attention[row + s];
      let w = Pair(exp(score.lo - top.lo), exp(score.hi - top.hi));
      attention[row + s] = w;
      total = plus(total, w);
      mixed = plus(mixed, times(w, tokenV[s]));
    }
    let inverseTotal = Pair(1.0 / total.lo, 1.0 / total.hi);
    inverseTotals[t] = inverseTotal;
    mixed = times(mixed, inverseTotal);
    tokenMixed[t] = mixed;
    tokenH1[t] = plus(tokenE[t], mv(net.Wo, mixed, MODEL_HI, MODEL_HI));
  }
}

// Σ_t W2 relu(W1 h1_t + b1) of the teacher's MLP (packed, storage memory) over the tokens in tokenH1.
fn teacher_mlp_sum() -> Pair {
  var out = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
  let zero = vec4<f32>(0.0);
  for (var q = 0u; q < TEACHER_GROUPS; q += 1u) {
    let base = q * TEACHER_ROWS;
    let b1 = packedTeacher[base];
    var c0 = zero; var c1 = zero; var c2 = zero; var c3 = zero;
    var c4 = zero; var c5 = zero; var c6 = zero; var c7 = zero;
    c0 = packedTeacher[base + 1u];
    if (MODEL > 1u) { c1 = packedTeacher[base + 2u]; }
    if (MODEL > 2u) { c2 = packedTeacher[base + 3u]; }
    if (MODEL > 3u) { c3 = packedTeacher[base + 4u]; }
    if (MODEL > 4u) { c4 = packedTeacher[base + 5u]; }
    if (MODEL > 5u) { c5 = packedTeacher[base + 6u]; }
    if (MODEL > 6u) { c6 = packedTeacher[base + 7u]; }
    if (MODEL > 7u) { c7 = packedTeacher[base + 8u]; }
    var units = zero;
    for (var t = 0u; t < SEQUENCE; t += 1u) {
      let h = tokenH1[t];
      var z = b1 + c0 * h.lo.x + c1 * h.lo.y + c2 * h.lo.z + c3 * h.lo.w;
      if (MODEL_HI) {
        z += c4 * h.hi.x + c5 * h.hi.y + c6 * h.hi.z + c7 * h.hi.w;
      }
      units += max(z, zero);
    }
    let w2 = base + 1u + MODEL;
    out.lo += packedTeacher[w2] * units.x + packedTeacher[w2 + 2u] * units.y +
      packedTeacher[w2 + 4u] * units.z + packedTeacher[w2 + 6u] * units.w;
    if (MODEL_HI) {
      out.hi += packedTeacher[w2 + 1u] * units.x + packedTeacher[w2 + 3u] * units.y +
        packedTeacher[w2 + 5u] * units.z + packedTeacher[w2 + 7u] * units.w;
    }
  }
  return out;
}

// A rows × cols tensor (kind) of the student's `replica` or of the teacher, as blocks.
fn load_matrix(kind: u32, rows: u32, cols: u32, fromTeacher: bool, replica: u32) -> Mat8 {
  var scratch = array<f32, 64>();
  for (var i = 0u; i < rows; i += 1u) {
    for (var j = 0u; j < cols; j += 1u) {
      if (fromTeacher) {
        scratch[i * cols + j] = teacher_value(kind, i, j);
      } else {
        scratch[i * cols + j] = weights[element_at(kind, i, j, MLP, params.replicas, replica)];
      }
    }
  }
  return Mat8(
    block_of(&scratch, rows, cols, 0u, 0u),
    block_of(&scratch, rows, cols, 0u, 4u),
    block_of(&scratch, rows, cols, 4u, 0u),
    block_of(&scratch, rows, cols, 4u, 4u),
  );
}

// A vector of n (kind; for KIND_POS row `row`), zero-padded.
fn load_vector(kind: u32, n: u32, row: u32, fromTeacher: bool, replica: u32) -> Pair {
  var v = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var i = 0u; i < n; i += 1u) {
    var r = i;
    var c = 0u;
    if (kind == KIND_POS) {
      r = row;
      c = i;
    }
    var value: f32;
    if (fromTeacher) {
      value = teacher_value(kind, r, c);
    } else {
      value = weights[element_at(kind, r, c, MLP, params.replicas, replica)];
    }
    if (i < 4u) {
      v.lo[i] = value;
    } else {
      v.hi[i - 4u] = value;
    }
  }
  return v;
}

fn store_matrix(kind: u32, rows: u32, cols: u32, replica: u32, W: Mat8) {
  for (var i = 0u; i < rows; i += 1u) {
    for (var j = 0u; j < cols; j += 1u) {
      var value: f32;
      if (i < 4u && j < 4u) {
        value = W.ll[j][i];
      } else if (i < 4u) {
        value = W.lh[j - 4u][i];
      } else if (j < 4u) {
        value = W.hl[j][i - 4u];
      } else {
        value = W.hh[j - 4u][i - 4u];
      }
      weights[element_at(kind, i, j, MLP, params.replicas, replica)] = value;
    }
  }
}

fn store_vector(kind: u32, n: u32, row: u32, replica: u32, v: Pair) {
  for (var i = 0u; i < n; i += 1u) {
    var r = i;
    var c = 0u;
    if (kind == KIND_POS) {
      r = row;
      c = i;
    }
    weights[element_at(kind, r, c, MLP, params.replicas, replica)] = select(v.hi[i % 4u], v.lo[i % 4u], i < 4u);
  }
}

// Every matrix and vector the kernel holds, loaded in one loop: each load is inlined code with
// loops and per-lane indexing, and on SwiftShader compiling one call site per tensor took about half
// of this kernel's compile time. Slot k of MATRIX_SLOTS / VECTOR_SLOTS: kind, and whether the teacher's.
const MATRIX_SLOTS = array<vec2<u32>, 14>(
  vec2<u32>(KIND_WIN, 0u), vec2<u32>(KIND_WQ, 0u), vec2<u32>(KIND_WK, 0u), vec2<u32>(KIND_WV, 0u),
  vec2<u32>(KIND_WO, 0u), vec2<u32>(KIND_W1, 0u), vec2<u32>(KIND_W2, 0u), vec2<u32>(KIND_WOUT, 0u),
  vec2<u32>(KIND_WIN, 1u), vec2<u32>(KIND_WQ, 1u), vec2<u32>(KIND_WK, 1u), vec2<u32>(KIND_WV, 1u),
  vec2<u32>(KIND_WO, 1u), vec2<u32>(KIND_WOUT, 1u),
);
const VECTOR_SLOTS = array<vec2<u32>, 7>(
  vec2<u32>(KIND_BIN, 0u), vec2<u32>(KIND_B1, 0u), vec2<u32>(KIND_B2, 0u), vec2<u32>(KIND_BOUT, 0u),
  vec2<u32>(KIND_BIN, 1u), vec2<u32>(KIND_B2, 1u), vec2<u32>(KIND_BOUT, 1u),
);
var<private> loadedMatrices: array<Mat8, 14>;
var<private> loadedVectors: array<Pair, 7>;

// Rows and columns of a matrix kind (the student's MLP width for W1, W2).
fn matrix_shape(kind: u32) -> vec2<u32> {
  switch kind {
    case KIND_WIN: { return vec2<u32>(MODEL, IN); }
    case KIND_W1: { return vec2<u32>(MLP, MODEL); }
    case KIND_W2: { return vec2<u32>(MODEL, MLP); }
    case KIND_WOUT: { return vec2<u32>(OUT, MODEL); }
    default: { return vec2<u32>(MODEL, MODEL); } // Wq, Wk, Wv, Wo
  }
}

fn vector_length(kind: u32) -> u32 {
  switch kind {
    case KIND_B1: { return MLP; }
    case KIND_BOUT: { return OUT; }
    default: { return MODEL; } // bin, b2
  }
}

fn load_all(replica: u32) {
  for (var k = 0u; k < 14u; k += 1u) {
    let slot = MATRIX_SLOTS[k];
    let shape = matrix_shape(slot.x);
    loadedMatrices[k] = load_matrix(slot.x, shape.x, shape.y, slot.y == 1u, replica);
  }
  for (var k = 0u; k < 7u; k += 1u) {
    let slot = VECTOR_SLOTS[k];
    loadedVectors[k] = load_vector(slot.x, vector_length(slot.x), 0u, slot.y == 1u, replica);
  }
  for (var t = 0u; t < SEQUENCE; t += 1u) {
    for (var side = 0u; side < 2u; side += 1u) {
      let v = load_vector(KIND_POS, MODEL, t, side == 1u, replica);
      if (side == 1u) {
        teacherPos[t] = v;
      } else {
        pos[t] = v;
      }
    }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let streamReplica = replica + params.replicaOffset;
  let T = SEQUENCE;
  let rootXAt = replica * params.rootXStride;
  let white = inputs_white(replica);
  let direct = inputs_direct(white);
  let noiseRoot = load_noise_root(replica);

  load_all(replica);
  // The teacher: embedding and attention in registers, its MLP from packedTeacher.
  let teacherNet = Attention(
    loadedMatrices[8],
    loadedVectors[4],
    loadedMatrices[9],
    loadedMatrices[10],
    loadedMatrices[11],
    loadedMatrices[12],
  );
  let teacherB2 = loadedVectors[5];
  let teacherWout = loadedMatrices[13];
  let teacherBout = loadedVectors[6];

  // The student.
  var net = Attention(
    loadedMatrices[0],
    loadedVectors[0],
    loadedMatrices[1],
    loadedMatrices[2],
    loadedMatrices[3],
    loadedMatrices[4],
  );
  var W1 = loadedMatrices[5];
  var b1 = loadedVectors[1];
  var W2 = loadedMatrices[6];
  var b2 = loadedVectors[2];
  var Wout = loadedMatrices[7];
  var bout = loadedVectors[3];
  for (var t = 0u; t < T; t += 1u) {
    gradPos[t] = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
  }

  let zeroPair = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
  let zeroMatrix = Mat8(mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>(), mat4x4<f32>());
  let inverseRoot = 1.0 / sqrt(f32(HEAD_DIM));
  let perToken = 1.0 / f32(T);
  let scale = 1.0 / f32(params.batchSize);
  // The loss is a uniform rather than a pipeline constant: MSE and cross-entropy batches of one shape
  // share one compiled pipeline (compiling this kernel takes seconds on SwiftShader).
  let crossEntropy = params.widths1.w != 0u;
  var loss = 0.0;
  for (var s = 0u; s < params.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = params.stepLo + s;
    let step = vec2<u32>(lo, params.stepHi + select(0u, 1u, lo < params.stepLo));
    var gWin = zeroMatrix;
    var gbin = zeroPair;
    var gWq = zeroMatrix;
    var gWk = zeroMatrix;
    var gWv = zeroMatrix;
    var gWo = zeroMatrix;
    var gW1 = zeroMatrix;
    var gb1 = zeroPair;
    var gW2 = zeroMatrix;
    var gb2 = zeroPair;
    var gWout = zeroMatrix;
    var gbout = zeroPair;
    cachedInputBlock = 0xFFFFFFFFu;
    cachedNoiseBlock = 0xFFFFFFFFu;
    loss = 0.0;
    for (var b = 0u; b < params.batchSize; b += 1u) {
      if (direct) {
        for (var t = 0u; t < T; t += 1u) {
          keep_input(t, sample_input(step, streamReplica, b, t, true));
        }
      } else {
        draw_inputs(step, streamReplica, b, white, rootXAt);
      }

      // Teacher: pooled = mean_t(h1_t) + W2 mean_t(relu(W1 h1_t + b1)) + b2.
      attend(teacherNet, true);
      var teacherSum = teacher_mlp_sum();
      for (var t = 0u; t < T; t += 1u) {
        teacherSum = plus(teacherSum, tokenH1[t]);
      }
      let teacherPooled = plus(scaled(teacherSum, perToken), teacherB2);
      let clean = plus(mv(teacherWout, teacherPooled, OUT_HI, MODEL_HI), teacherBout);
      let y = noisy_label(clean, noiseRoot, draw_noise(step, streamReplica, b));

      // Student forward.
      attend(net, false);
      var h1Sum = zeroPair;
      var uSum = zeroPair;
      for (var t = 0u; t < T; t += 1u) {
        let h1 = tokenH1[t];
        let z = plus(mv(W1, h1, MLP_HI, MODEL_HI), b1);
        let u = Pair(max(z.lo, vec4<f32>(0.0)), max(z.hi, vec4<f32>(0.0)));
        tokenU[t] = u;
        h1Sum = plus(h1Sum, h1);
        uSum = plus(uSum, u);
      }
      let pooled = plus(scaled(plus(h1Sum, mv(W2, uSum, MODEL_HI, MLP_HI)), perToken), b2);
      let f = plus(mv(Wout, pooled, OUT_HI, MODEL_HI), bout);

      // δf = ∂(loss / B)/∂f: (f − y)/B for MSE, (softmax(f) − softmax(y))/B for cross-entropy.
      var df: Pair;
      if (crossEntropy) {
        let targets = softmax_of(y).p;
        let predicted = softmax_of(f);
        loss += predicted.logNormaliser - dot(targets.lo, f.lo) - dot(targets.hi, f.hi);
        df = scaled(Pair(predicted.p.lo - targets.lo, predicted.p.hi - targets.hi), scale);
      } else {
        let r = Pair(f.lo - y.lo, f.hi - y.hi);
        loss += 0.5 * (dot(r.lo, r.lo) + dot(r.hi, r.hi));
        df = scaled(r, scale);
      }
      add_outer(&gWout, df, pooled, OUT_HI, MODEL_HI);
      gbout = plus(gbout, df);

      // Every token's h2_t gets g = Woutᵀ δf / T (the mean), so the MLP's output side sums over t.
      let pooledGrad = mtv(Wout, df, OUT_HI, MODEL_HI);
      let g = scaled(pooledGrad, perToken);
      gb2 = plus(gb2, pooledGrad);
      add_outer(&gW2, g, uSum, MODEL_HI, MLP_HI);
      let uGrad = mtv(W2, g, MODEL_HI, MLP_HI);
      for (var t = 0u; t < T; t += 1u) {
        gradK[t] = zeroPair;
        gradV[t] = zeroPair;
      }

      // Per query token t: the MLP's input side, the output projection, softmax and q_t.
      var dA: array<Pair, TRANSFORMER_MAX_SEQUENCE>;
      for (var t = 0u; t < T; t += 1u) {
        let u = tokenU[t];
        let dz = Pair(select(vec4<f32>(0.0), uGrad.lo, u.lo > vec4<f32>(0.0)), select(vec4<f32>(0.0), uGrad.hi, u.hi > vec4<f32>(0.0)));
        let h1 = tokenH1[t];
        add_outer(&gW1, dz, h1, MLP_HI, MODEL_HI);
        gb1 = plus(gb1, dz);
        let dh1 = plus(g, mtv(W1, dz, MLP_HI, MODEL_HI));
        add_outer(&gWo, dh1, tokenMixed[t], MODEL_HI, MODEL_HI);
        let dm = mtv(net.Wo, dh1, MODEL_HI, MODEL_HI);
        let row = t * TRANSFORMER_MAX_SEQUENCE;
        // δA_ts = ⟨δmixed_t, v_s⟩ per head; δscore_ts = A_ts (δA_ts − Σ_s' A_ts' δA_ts') / √dh.
        var centre = zeroPair;
        let inverseTotal = inverseTotals[t];
        for (var s2 = 0u; s2 < T; s2 += 1u) {
          let a = times(attention[row + s2], inverseTotal);
          let da = head_sums(times(dm, tokenV[s2]));
          dA[s2] = da;
          centre = plus(centre, times(a, da));
          gradV[s2] = plus(gradV[s2], times(a, dm));
        }
        let q = tokenQ[t];
        var dq = zeroPair;
        for (var s2 = 0u; s2 < T; s2 += 1u) {
          let a = times(attention[row + s2], inverseTotal);
          let da = dA[s2];
          let dScore = scaled(times(a, Pair(da.lo - centre.lo, da.hi - centre.hi)), inverseRoot);
          dq = plus(dq, times(dScore, tokenK[s2]));
          gradK[s2] = plus(gradK[s2], times(dScore, q));
        }
        let e = tokenE[t];
        add_outer(&gWq, dq, e, MODEL_HI, MODEL_HI);
        gradE[t] = plus(dh1, mtv(net.Wq, dq, MODEL_HI, MODEL_HI));
      }
      // Per key token: k, v, the embedding and positions.
      for (var t = 0u; t < T; t += 1u) {
        let e = tokenE[t];
        let dk = gradK[t];
        let dv = gradV[t];
        add_outer(&gWk, dk, e, MODEL_HI, MODEL_HI);
        add_outer(&gWv, dv, e, MODEL_HI, MODEL_HI);
        let de = plus(gradE[t], plus(mtv(net.Wk, dk, MODEL_HI, MODEL_HI), mtv(net.Wv, dv, MODEL_HI, MODEL_HI)));
        add_outer(&gWin, de, input_at(t), MODEL_HI, IN_HI);
        gbin = plus(gbin, de);
        gradPos[t] = plus(gradPos[t], de);
      }
    }
    let rate = params.learningRate;
    net.Win = sgd_matrix(net.Win, gWin, rate);
    net.bin = plus(net.bin, scaled(gbin, -rate));
    net.Wq = sgd_matrix(net.Wq, gWq, rate);
    net.Wk = sgd_matrix(net.Wk, gWk, rate);
    net.Wv = sgd_matrix(net.Wv, gWv, rate);
    net.Wo = sgd_matrix(net.Wo, gWo, rate);
    W1 = sgd_matrix(W1, gW1, rate);
    b1 = plus(b1, scaled(gb1, -rate));
    W2 = sgd_matrix(W2, gW2, rate);
    b2 = plus(b2, scaled(gb2, -rate));
    Wout = sgd_matrix(Wout, gWout, rate);
    bout = plus(bout, scaled(gbout, -rate));
    for (var t = 0u; t < T; t += 1u) {
      pos[t] = plus(pos[t], scaled(gradPos[t], -rate));
      gradPos[t] = zeroPair;
    }
  }
  lastLoss[replica] = loss * scale;
  store_matrix(KIND_WIN, MODEL, IN, replica, net.Win);
  store_vector(KIND_BIN, MODEL, 0u, replica, net.bin);
  for (var t = 0u; t < T; t += 1u) {
    store_vector(KIND_POS, MODEL, t, replica, pos[t]);
  }
  store_matrix(KIND_WQ, MODEL, MODEL, replica, net.Wq);
  store_matrix(KIND_WK, MODEL, MODEL, replica, net.Wk);
  store_matrix(KIND_WV, MODEL, MODEL, replica, net.Wv);
  store_matrix(KIND_WO, MODEL, MODEL, replica, net.Wo);
  store_matrix(KIND_W1, MLP, MODEL, replica, W1);
  store_vector(KIND_B1, MLP, 0u, replica, b1);
  store_matrix(KIND_W2, MODEL, MLP, replica, W2);
  store_vector(KIND_B2, MODEL, 0u, replica, b2);
  store_matrix(KIND_WOUT, OUT, MODEL, replica, Wout);
  store_vector(KIND_BOUT, OUT, 0u, replica, bout);
}
