// The Hessian's diagonal of an Elman RNN's mean loss over the evaluation rows, one invocation per
// (replica, parameter): ∂²L/∂θ_i² by second-order forward differentiation along the unit vector e_i,
// with no backward pass. The exact trace of a sequence model of ~100 parameters otherwise costs one
// H·v per parameter on the autodiff tape (a launch per operation, per time step).
//
// Model (src/models/model.ts): h_t = tanh(Wx x_t + Wh h_{t−1} + b), h_0 = 0, f = Wo h_T + bo, with
// x_t the t-th d features of a row's T·d inputs. Parameters in the flat order Wx [h, d], Wh [h, h],
// b [h], Wo [m, h], bo [m], each row-major. Along e_i, with ḣ and ḧ the first and second
// derivatives of the state (both 0 at t = 0) and u_t = Wx x_t + Wh h_{t−1} + b:
//   u̇_t = Wh ḣ_{t−1} + (x_t[k] e_j for Wx[j][k]; h_{t−1}[k] e_j for Wh[j][k]; e_j for b[j])
//   ü_t = Wh ḧ_{t−1} + (2 ḣ_{t−1}[k] e_j for Wh[j][k])
//   ḣ_t = (1 − h_t²) u̇_t,  ḧ_t = (1 − h_t²) ü_t − 2 h_t (1 − h_t²) u̇_t²
//   ḟ = Wo ḣ_T (+ h_T[k] e_j for Wo[j][k]; e_j for bo[j]),  f̈ = Wo ḧ_T
// and per row ∂²ℓ = ḟᵀ M ḟ + gᵀ f̈ with g = ∂ℓ/∂f and M = ∂²ℓ/∂f²: MSE g = f − y, M = I;
// cross-entropy against soft targets y, g = s − y, M = diag(s) − s sᵀ (s = softmax f).
//
// Hidden state ≤ 4 units (a vec4); inputs and outputs ≤ 8 (pairs of vec4: lanes 0–3 and 4–7).

struct Params {
  invocations: u32,  // replicas · n
  rows: u32,
  size: u32,         // n
  inputStride: u32,  // rows · T · d per replica, 0 when shared
  targetStride: u32, // rows · m per replica, 0 when shared
}

@group(0) @binding(0) var<storage, read> theta: array<f32>;
@group(0) @binding(1) var<storage, read> inputs: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> diagonal: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 64u;
override IN: u32 = 8u;        // d
override HIDDEN: u32 = 4u;    // h
override OUT: u32 = 8u;       // m
override SEQUENCE: u32 = 4u;  // T
override CROSS_ENTROPY: bool = false;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

struct Pair {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

// Entries first … first + count − 1 (count ≤ 8) of `theta` from `at`, as a zero-padded pair.
fn theta_pair(at: u32, count: u32) -> Pair {
  var p = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var i = 0u; i < count; i += 1u) {
    if (i < 4u) {
      p.lo[i] = theta[at + i];
    } else {
      p.hi[i - 4u] = theta[at + i];
    }
  }
  return p;
}

fn load_pair(which: u32, at: u32, count: u32) -> Pair {
  // `which` 0: inputs, 1: targets; loads past a row are clamped by the runtime and masked here.
  var lo: vec4<f32>;
  var hi: vec4<f32>;
  if (which == 0u) {
    lo = vec4<f32>(inputs[at], inputs[at + 1u], inputs[at + 2u], inputs[at + 3u]);
    hi = vec4<f32>(inputs[at + 4u], inputs[at + 5u], inputs[at + 6u], inputs[at + 7u]);
  } else {
    lo = vec4<f32>(targets[at], targets[at + 1u], targets[at + 2u], targets[at + 3u]);
    hi = vec4<f32>(targets[at + 4u], targets[at + 5u], targets[at + 6u], targets[at + 7u]);
  }
  let count4 = vec4<u32>(count);
  return Pair(
    select(vec4<f32>(0.0), lo, LANES < count4),
    select(vec4<f32>(0.0), hi, LANES + vec4<u32>(4u) < count4),
  );
}

// One-hot masks of lane j within a vec4 or a pair.
fn unit4(j: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(1.0), LANES == vec4<u32>(j));
}

fn unit_pair(j: u32) -> Pair {
  return Pair(unit4(j), unit4(j - 4u));
}

fn pair_dot(a: Pair, b: Pair) -> f32 {
  return dot(a.lo, b.lo) + dot(a.hi, b.hi);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // Row-major over dispatch rows of 65,535 workgroups.
  let index = gid.y * (65535u * WG) + gid.x;
  if (index >= params.invocations) {
    return;
  }
  let n = params.size;
  let replica = index / n;
  let i = index % n;
  let base = replica * n;
  let d = IN;
  let h = HIDDEN;
  let m = OUT;
  let whAt = h * d;
  let bAt = whAt + h * h;
  let woAt = bAt + h;
  let boAt = woAt + m * h;

  // Weights as column-major matrices: column k of wxLo/wxHi is input k's (k < 4 / k ≥ 4) weights,
  // column c of wh is state unit c's, column c of woLo/woHi holds unit c's weights to outputs 0–3/4–7.
  var wxLo = mat4x4<f32>();
  var wxHi = mat4x4<f32>();
  var wh = mat4x4<f32>();
  var woLo = mat4x4<f32>();
  var woHi = mat4x4<f32>();
  for (var j = 0u; j < h; j += 1u) {
    for (var k = 0u; k < d; k += 1u) {
      let w = theta[base + j * d + k];
      if (k < 4u) {
        wxLo[k][j] = w;
      } else {
        wxHi[k - 4u][j] = w;
      }
    }
    for (var c = 0u; c < h; c += 1u) {
      wh[c][j] = theta[base + whAt + j * h + c];
    }
  }
  for (var a = 0u; a < m; a += 1u) {
    for (var c = 0u; c < h; c += 1u) {
      let w = theta[base + woAt + a * h + c];
      if (a < 4u) {
        woLo[c][a] = w;
      } else {
        woHi[c][a - 4u] = w;
      }
    }
  }
  var bias = vec4<f32>(0.0);
  for (var j = 0u; j < h; j += 1u) {
    bias[j] = theta[base + bAt + j];
  }
  let outputBias = theta_pair(base + boAt, m);
  let outputMask = Pair(
    select(vec4<f32>(0.0), vec4<f32>(1.0), LANES < vec4<u32>(m)),
    select(vec4<f32>(0.0), vec4<f32>(1.0), LANES + vec4<u32>(4u) < vec4<u32>(m)),
  );

  // Which parameter e_i perturbs: its kind and its (row j, column k).
  var kind = 0u; // 0 Wx, 1 Wh, 2 b, 3 Wo, 4 bo
  var j = 0u;
  var k = 0u;
  if (i < whAt) {
    j = i / d;
    k = i % d;
  } else if (i < bAt) {
    kind = 1u;
    j = (i - whAt) / h;
    k = (i - whAt) % h;
  } else if (i < woAt) {
    kind = 2u;
    j = i - bAt;
  } else if (i < boAt) {
    kind = 3u;
    j = (i - woAt) / h;
    k = (i - woAt) % h;
  } else {
    kind = 4u;
    j = i - boAt;
  }
  let unitJ = unit4(j);
  let unitK = unit4(k);
  let inputK = unit_pair(k);
  let outputJ = unit_pair(j);
  let recurrent = kind < 3u;

  var total = 0.0;
  for (var row = 0u; row < params.rows; row += 1u) {
    let inputAt = replica * params.inputStride + row * SEQUENCE * d;
    var state = vec4<f32>(0.0);
    var stateDot = vec4<f32>(0.0);
    var stateDdot = vec4<f32>(0.0);
    for (var t = 0u; t < SEQUENCE; t += 1u) {
      let x = load_pair(0u, inputAt + t * d, d);
      let u = wxLo * x.lo + wxHi * x.hi + wh * state + bias;
      var uDot = wh * stateDot;
      var uDdot = wh * stateDdot;
      if (kind == 0u) {
        uDot += pair_dot(x, inputK) * unitJ;
      } else if (kind == 1u) {
        uDot += dot(state, unitK) * unitJ;
        uDdot += 2.0 * dot(stateDot, unitK) * unitJ;
      } else if (kind == 2u) {
        uDot += unitJ;
      }
      state = tanh(u);
      let slope = vec4<f32>(1.0) - state * state;
      stateDdot = slope * uDdot - 2.0 * state * slope * uDot * uDot;
      stateDot = slope * uDot;
    }
    let f = Pair(woLo * state + outputBias.lo, woHi * state + outputBias.hi);
    var fDot = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
    var fDdot = Pair(vec4<f32>(0.0), vec4<f32>(0.0));
    if (recurrent) {
      fDot = Pair(woLo * stateDot, woHi * stateDot);
      fDdot = Pair(woLo * stateDdot, woHi * stateDdot);
    } else if (kind == 3u) {
      let hk = dot(state, unitK);
      fDot = Pair(hk * outputJ.lo, hk * outputJ.hi);
    } else {
      fDot = outputJ;
    }
    let y = load_pair(1u, replica * params.targetStride + row * m, m);
    if (CROSS_ENTROPY) {
      let masked = Pair(
        select(vec4<f32>(-3.0e38), f.lo, outputMask.lo > vec4<f32>(0.0)),
        select(vec4<f32>(-3.0e38), f.hi, outputMask.hi > vec4<f32>(0.0)),
      );
      let top = max(max(max(masked.lo.x, masked.lo.y), max(masked.lo.z, masked.lo.w)),
                    max(max(masked.hi.x, masked.hi.y), max(masked.hi.z, masked.hi.w)));
      let e = Pair(exp(masked.lo - vec4<f32>(top)) * outputMask.lo, exp(masked.hi - vec4<f32>(top)) * outputMask.hi);
      let total_e = dot(e.lo, vec4<f32>(1.0)) + dot(e.hi, vec4<f32>(1.0));
      let s = Pair(e.lo / total_e, e.hi / total_e);
      let sDot = pair_dot(s, fDot);
      let curvatureTerm =
        dot(s.lo, fDot.lo * fDot.lo) + dot(s.hi, fDot.hi * fDot.hi) - sDot * sDot;
      let gradient = Pair(s.lo - y.lo, s.hi - y.hi);
      total += curvatureTerm + pair_dot(gradient, fDdot);
    } else {
      let gradient = Pair((f.lo - y.lo) * outputMask.lo, (f.hi - y.hi) * outputMask.hi);
      let fDotMasked = Pair(fDot.lo * outputMask.lo, fDot.hi * outputMask.hi);
      total += pair_dot(fDotMasked, fDotMasked) + pair_dot(gradient, fDdot);
    }
  }
  diagonal[index] = total / f32(params.rows);
}
