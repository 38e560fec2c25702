// Optimizer updates in place over every element of one parameter tensor, all replicas at once
// (element i of the flattened [batch, n] layout; parameter, gradient and state share it).
//
// g is the minibatch gradient and η this step's scheduled learning rate (both from the host).
// Weight decay λ is either L2 (coupled: g ← g + λθ before the update) or decoupled (θ ← θ − ηλθ
// before the update, AdamW's form); DECOUPLED picks which. Plain SGD without weight decay does not
// come here: the trainer keeps its `accumulate` launch (the paper's runs stay bit for bit the same).

struct Params {
  total: u32,           // batch · n
  rowStride: u32,       // invocations per dispatch row (2-D dispatch when total exceeds one axis)
  learningRate: f32,    // η at this step
  weightDecay: f32,     // λ
  momentum: f32,        // μ
  beta1: f32,
  beta2: f32,
  epsilon: f32,
  biasCorrection1: f32, // 1 − β1^t, t = updates applied including this one
  biasCorrection2: f32, // 1 − β2^t
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
// Momentum buffer b, or Adam's first moment m.
@group(0) @binding(2) var<storage, read_write> first: array<f32>;
// Adam's second moment v.
@group(0) @binding(3) var<storage, read_write> second: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 256u;
override DECOUPLED: bool = false;
override NESTEROV: bool = false;

fn element_index(gid: vec3<u32>) -> u32 {
  return gid.y * params.rowStride + gid.x;
}

// The gradient the update sees (L2 decay folded in) and θ after decoupled decay.
fn decayed_gradient(i: u32, theta: f32) -> f32 {
  if (DECOUPLED) {
    return grad[i];
  }
  return grad[i] + params.weightDecay * theta;
}

fn decayed_param(theta: f32) -> f32 {
  if (DECOUPLED) {
    return theta - params.learningRate * params.weightDecay * theta;
  }
  return theta;
}

// θ ← θ − η g.
@compute @workgroup_size(WG, 1, 1)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = element_index(gid);
  if (i >= params.total) {
    return;
  }
  let theta = param[i];
  let g = decayed_gradient(i, theta);
  param[i] = decayed_param(theta) - params.learningRate * g;
}

// b ← μ b + g; heavy-ball θ ← θ − η b, Nesterov θ ← θ − η (g + μ b) (PyTorch's SGD, dampening 0).
@compute @workgroup_size(WG, 1, 1)
fn momentum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = element_index(gid);
  if (i >= params.total) {
    return;
  }
  let theta = param[i];
  let g = decayed_gradient(i, theta);
  let b = params.momentum * first[i] + g;
  first[i] = b;
  var direction = b;
  if (NESTEROV) {
    direction = g + params.momentum * b;
  }
  param[i] = decayed_param(theta) - params.learningRate * direction;
}

// m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², θ ← θ − η m̂ / (√v̂ + ε) with m̂ = m / (1 − β1^t),
// v̂ = v / (1 − β2^t) (Kingma and Ba; decoupled decay gives AdamW).
@compute @workgroup_size(WG, 1, 1)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = element_index(gid);
  if (i >= params.total) {
    return;
  }
  let theta = param[i];
  let g = decayed_gradient(i, theta);
  let m = params.beta1 * first[i] + (1.0 - params.beta1) * g;
  let v = params.beta2 * second[i] + (1.0 - params.beta2) * g * g;
  first[i] = m;
  second[i] = v;
  let mHat = m / params.biasCorrection1;
  let vHat = v / params.biasCorrection2;
  param[i] = decayed_param(theta) - params.learningRate * mHat / (sqrt(vHat) + params.epsilon);
}
