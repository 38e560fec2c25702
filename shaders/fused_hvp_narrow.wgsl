// Hessian-vector products of small fully connected networks, one invocation per replica (or probe
// copy) over the whole evaluation set: H·v of the mean loss over the rows by forward-over-reverse
// differentiation written out, with no intermediate tensors. The general path (autodiff tape: a
// forward pass, a backward pass and its directional derivative, each a launch per operation over
// [replicas · copies, rows, width] tensors) spends almost all its time in launches and memory traffic
// for models this small; here each sample's activations live in registers.
//
// Network: L ≤ 4 dense layers of widths ≤ 4 (deep linear networks, MLPs), z_l = W_l a_l + b_l
// (b_l absent for deep linear layers), a_{l+1} = σ(z_l) between layers (σ = identity, ReLU or
// tanh), f = z_{L−1}. Loss per row: MSE ½‖f − y‖², or cross-entropy logsumexp(f) − ⟨y, f⟩ against
// soft targets y; the mean over rows, as src/models/losses.ts. For a direction v = (V_l, c_l):
//   forward tangents  ż_l = V_l a_l + W_l ȧ_l + c_l,  ȧ_{l+1} = σ'(z_l) ż_l  (ȧ_0 = 0)
//   output gradient   g = ∂ℓ/∂f (f − y, or s − y with s = softmax f) and its tangent
//                     ġ = ḟ (MSE) or s ⊙ ḟ − s ⟨s, ḟ⟩ (cross-entropy)
//   backward          H_W l += ġ_l a_lᵀ + g_l ȧ_lᵀ,  H_b l += ġ_l, then through layer l:
//                     g_{l−1} = σ'(z_{l−1}) ⊙ W_lᵀ g_l,
//                     ġ_{l−1} = σ'(z_{l−1}) ⊙ (V_lᵀ g_l + W_lᵀ ġ_l) + σ''(z_{l−1}) ⊙ ż_{l−1} ⊙ W_lᵀ g_l.
//
// Buffers (flat parameter vectors [n] per replica, parameters in the model's order, each row-major
// [out, in]): `theta` the parameters, `direction` v, `product` H·v; `inputs` [rows, d] and
// `targets` [rows, m] per replica (stride 0: one set shared by every replica). Widths are zero-
// padded to vec4 / mat4x4 (column-major: column k of a layer's matrix is its input k's weights);
// padded units stay zero and padded outputs are left out of the softmax.

// SwiftShader keeps neither dynamically indexed private arrays nor loop-carried matrices in
// registers (an indexed access is an emulated gather, and Subzero does not unroll): the layers are
// written out one by one as separate variables, and the layer count, activation, loss and widths are
// pipeline constants, so the unused layers and branches fold away.

const NO_BIAS = 0xffffffffu;
const ACTIVATION_IDENTITY = 0u;
const ACTIVATION_RELU = 1u;
const ACTIVATION_TANH = 2u;

struct Params {
  replicas: u32,       // B: invocations (replicas × copies)
  rows: u32,
  size: u32,           // n: parameters per replica
  inputStride: u32,    // rows · d per replica, 0 when shared
  targetStride: u32,   // rows · m per replica, 0 when shared
  weightAt: vec4<u32>, // offset of W_l in the flat vector, layers 0–3
  biasAt: vec4<u32>,   // offset of b_l, or NO_BIAS
}

@group(0) @binding(0) var<storage, read> theta: array<f32>;
@group(0) @binding(1) var<storage, read> direction: array<f32>;
@group(0) @binding(2) var<storage, read> inputs: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;
@group(0) @binding(4) var<storage, read_write> product: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 64u;
override LAYERS: u32 = 2u;       // L (1–4)
override ACTIVATION: u32 = 0u;   // σ between layers
override CROSS_ENTROPY: bool = false;
// Widths h_0 = d, …, h_L = m (unused ones 0).
override W0: u32 = 4u;
override W1: u32 = 4u;
override W2: u32 = 0u;
override W3: u32 = 0u;
override W4: u32 = 0u;

// Layer l's [rows, cols] row-major matrix of `theta` (which = 0) or `direction` (1) as a mat4x4
// whose column k holds input k's weights.
fn load_matrix(which: u32, base: u32, l: u32, rows: u32, cols: u32) -> mat4x4<f32> {
  let at = base + params.weightAt[l];
  var m = mat4x4<f32>();
  for (var i = 0u; i < rows; i += 1u) {
    for (var k = 0u; k < cols; k += 1u) {
      let value = select(theta[at + i * cols + k], direction[at + i * cols + k], which == 1u);
      m[k][i] = value;
    }
  }
  return m;
}

fn load_vector(which: u32, base: u32, l: u32, count: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  let at = params.biasAt[l];
  if (at == NO_BIAS) {
    return v;
  }
  for (var i = 0u; i < count; i += 1u) {
    v[i] = select(theta[base + at + i], direction[base + at + i], which == 1u);
  }
  return v;
}

fn store_layer(base: u32, l: u32, rows: u32, cols: u32, scale: f32, w: mat4x4<f32>, b: vec4<f32>) {
  let at = base + params.weightAt[l];
  for (var i = 0u; i < rows; i += 1u) {
    for (var k = 0u; k < cols; k += 1u) {
      product[at + i * cols + k] = scale * w[k][i];
    }
  }
  let biasAt = params.biasAt[l];
  if (biasAt != NO_BIAS) {
    for (var i = 0u; i < rows; i += 1u) {
      product[base + biasAt + i] = scale * b[i];
    }
  }
}

fn activate(z: vec4<f32>) -> vec4<f32> {
  if (ACTIVATION == ACTIVATION_RELU) {
    return max(z, vec4<f32>(0.0));
  }
  if (ACTIVATION == ACTIVATION_TANH) {
    return tanh(z);
  }
  return z;
}

// σ'(z) given z and a = σ(z) (ReLU: 1 where z > 0, as the tape's step).
fn slope(z: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
  if (ACTIVATION == ACTIVATION_RELU) {
    return select(vec4<f32>(0.0), vec4<f32>(1.0), z > vec4<f32>(0.0));
  }
  if (ACTIVATION == ACTIVATION_TANH) {
    return vec4<f32>(1.0) - a * a;
  }
  return vec4<f32>(1.0);
}

// σ''(z) given a = σ(z): zero for identity and ReLU, −2a(1 − a²) for tanh.
fn curvature(a: vec4<f32>) -> vec4<f32> {
  if (ACTIVATION == ACTIVATION_TANH) {
    return -2.0 * a * (vec4<f32>(1.0) - a * a);
  }
  return vec4<f32>(0.0);
}

fn outer(u: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(u * w.x, u * w.y, u * w.z, u * w.w);
}

// `count` ≤ 4 consecutive values of a storage array from `at`, zero-padded (loads past the end are
// clamped by the runtime and their values dropped).
fn load_inputs(at: u32, count: u32) -> vec4<f32> {
  let v = vec4<f32>(inputs[at], inputs[at + 1u], inputs[at + 2u], inputs[at + 3u]);
  return select(vec4<f32>(0.0), v, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(count));
}

fn load_targets(at: u32, count: u32) -> vec4<f32> {
  let v = vec4<f32>(targets[at], targets[at + 1u], targets[at + 2u], targets[at + 3u]);
  return select(vec4<f32>(0.0), v, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(count));
}

// The error signal through a layer's input, back to the layer below: g_{l−1}, ġ_{l−1} from g_l, ġ_l,
// the layer's W and V, the lower layer's z and ż, and a = σ(z).
struct Signal {
  g: vec4<f32>,
  gDot: vec4<f32>,
}

fn back_through(W: mat4x4<f32>, V: mat4x4<f32>, z: vec4<f32>, zDot: vec4<f32>, a: vec4<f32>, s: Signal) -> Signal {
  let back = transpose(W) * s.g;
  let backDot = transpose(V) * s.g + transpose(W) * s.gDot;
  let sl = slope(z, a);
  return Signal(sl * back, sl * backDot + curvature(a) * zDot * back);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let base = replica * params.size;
  let m = select(select(select(W1, W2, LAYERS >= 2u), W3, LAYERS >= 3u), W4, LAYERS >= 4u);

  let Wt0 = load_matrix(0u, base, 0u, W1, W0);
  let Vt0 = load_matrix(1u, base, 0u, W1, W0);
  let b0 = load_vector(0u, base, 0u, W1);
  let c0 = load_vector(1u, base, 0u, W1);
  var Wt1 = mat4x4<f32>();
  var Vt1 = mat4x4<f32>();
  var b1 = vec4<f32>(0.0);
  var c1 = vec4<f32>(0.0);
  var Wt2 = mat4x4<f32>();
  var Vt2 = mat4x4<f32>();
  var b2 = vec4<f32>(0.0);
  var c2 = vec4<f32>(0.0);
  var Wt3 = mat4x4<f32>();
  var Vt3 = mat4x4<f32>();
  var b3 = vec4<f32>(0.0);
  var c3 = vec4<f32>(0.0);
  if (LAYERS >= 2u) {
    Wt1 = load_matrix(0u, base, 1u, W2, W1);
    Vt1 = load_matrix(1u, base, 1u, W2, W1);
    b1 = load_vector(0u, base, 1u, W2);
    c1 = load_vector(1u, base, 1u, W2);
  }
  if (LAYERS >= 3u) {
    Wt2 = load_matrix(0u, base, 2u, W3, W2);
    Vt2 = load_matrix(1u, base, 2u, W3, W2);
    b2 = load_vector(0u, base, 2u, W3);
    c2 = load_vector(1u, base, 2u, W3);
  }
  if (LAYERS >= 4u) {
    Wt3 = load_matrix(0u, base, 3u, W4, W3);
    Vt3 = load_matrix(1u, base, 3u, W4, W3);
    b3 = load_vector(0u, base, 3u, W4);
    c3 = load_vector(1u, base, 3u, W4);
  }

  var hW0 = mat4x4<f32>();
  var hW1 = mat4x4<f32>();
  var hW2 = mat4x4<f32>();
  var hW3 = mat4x4<f32>();
  var hB0 = vec4<f32>(0.0);
  var hB1 = vec4<f32>(0.0);
  var hB2 = vec4<f32>(0.0);
  var hB3 = vec4<f32>(0.0);
  // Outputs past m: excluded from the softmax.
  let outputMask = vec4<f32>(vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(m));

  for (var row = 0u; row < params.rows; row += 1u) {
    // Forward with tangents: layer l's input a_l (ȧ_0 = 0), pre-activation z_l and ż_l.
    let a0 = load_inputs(replica * params.inputStride + row * W0, W0);
    let z0 = Wt0 * a0 + b0;
    let zDot0 = Vt0 * a0 + c0;
    var f = z0;
    var fDot = zDot0;
    var a1 = vec4<f32>(0.0);
    var aDot1 = vec4<f32>(0.0);
    var z1 = vec4<f32>(0.0);
    var zDot1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var aDot2 = vec4<f32>(0.0);
    var z2 = vec4<f32>(0.0);
    var zDot2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var aDot3 = vec4<f32>(0.0);
    if (LAYERS >= 2u) {
      a1 = activate(z0);
      aDot1 = slope(z0, a1) * zDot0;
      z1 = Wt1 * a1 + b1;
      zDot1 = Vt1 * a1 + Wt1 * aDot1 + c1;
      f = z1;
      fDot = zDot1;
    }
    if (LAYERS >= 3u) {
      a2 = activate(z1);
      aDot2 = slope(z1, a2) * zDot1;
      z2 = Wt2 * a2 + b2;
      zDot2 = Vt2 * a2 + Wt2 * aDot2 + c2;
      f = z2;
      fDot = zDot2;
    }
    if (LAYERS >= 4u) {
      a3 = activate(z2);
      aDot3 = slope(z2, a3) * zDot2;
      f = Wt3 * a3 + b3;
      fDot = Vt3 * a3 + Wt3 * aDot3 + c3;
    }

    // The loss's gradient in the outputs and its tangent.
    let y = load_targets(replica * params.targetStride + row * m, m);
    var s: Signal;
    if (CROSS_ENTROPY) {
      // Softmax over the first m outputs, shifted by their maximum.
      let masked = select(vec4<f32>(-3.0e38), f, outputMask > vec4<f32>(0.0));
      let top = max(max(masked.x, masked.y), max(masked.z, masked.w));
      let e = exp(masked - vec4<f32>(top)) * outputMask;
      let p = e / dot(e, vec4<f32>(1.0));
      s = Signal(p - y, p * fDot - p * dot(p, fDot));
    } else {
      s = Signal((f - y) * outputMask, fDot * outputMask);
    }

    // Backward, top layer first: H_W l += ġ a_lᵀ + g ȧ_lᵀ, H_b l += ġ, then down through W_l.
    if (LAYERS >= 4u) {
      hW3 += outer(s.gDot, a3) + outer(s.g, aDot3);
      hB3 += s.gDot;
      s = back_through(Wt3, Vt3, z2, zDot2, a3, s);
    }
    if (LAYERS >= 3u) {
      hW2 += outer(s.gDot, a2) + outer(s.g, aDot2);
      hB2 += s.gDot;
      s = back_through(Wt2, Vt2, z1, zDot1, a2, s);
    }
    if (LAYERS >= 2u) {
      hW1 += outer(s.gDot, a1) + outer(s.g, aDot1);
      hB1 += s.gDot;
      s = back_through(Wt1, Vt1, z0, zDot0, a1, s);
    }
    hW0 += outer(s.gDot, a0);
    hB0 += s.gDot;
  }

  let scale = 1.0 / f32(params.rows);
  store_layer(base, 0u, W1, W0, scale, hW0, hB0);
  if (LAYERS >= 2u) {
    store_layer(base, 1u, W2, W1, scale, hW1, hB1);
  }
  if (LAYERS >= 3u) {
    store_layer(base, 2u, W3, W2, scale, hW2, hB2);
  }
  if (LAYERS >= 4u) {
    store_layer(base, 3u, W4, W3, scale, hW3, hB3);
  }
}
