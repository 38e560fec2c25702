// Many online-SGD steps of a narrow deep linear network (every width ≤ 4) per dispatch, one
// invocation per replica: the specialisation of fused_deep_linear.wgsl that most experiments use.
//
// Each layer is a zero-padded mat4x4 and each activation a vec4, so a layer is one matrix–vector
// product and a gradient one outer product, with no per-element index arithmetic. Padding stays
// exactly zero: padded rows of W give zero outputs, zero inputs and zero residuals give zero
// gradient there. On CPU adapters (SwiftShader) this removes the scalar gathers of the generic
// kernel's private arrays; on GPUs it keeps a replica's whole state in registers.
//
// Random numbers, loss and update equal the general path's (same Philox streams and Box–Muller
// pairing); only the order of floating-point additions differs. The loss, minibatch mean, is
// ½‖f − y‖² (MSE) or, with CROSS_ENTROPY, logsumexp(f) − ⟨softmax(y), f⟩: cross-entropy against
// the softmax of the noisy label, as SoftmaxTargets around a LinearTeacher gives the general path.
// Softmax is not linear, so unlike the 2×2 kernel's moments this per-sample loop carries it as is.
// Packing: see fused_common.wgsl.

//!include fused_common.wgsl
//!include fused_softmax.wgsl

override CROSS_ENTROPY: bool = false;

alias Layer = mat4x4<f32>;
//!include fused_layers.wgsl

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let streamReplica = replica + params.replicaOffset;

  // Data-generating matrices, padded: x = S_x z, y = V x + S_ε e.
  var scratch: array<f32, 16>;
  let sx = root_x(replica);
  let se = root_eps(replica);
  for (var k = 0u; k < OUT * IN; k += 1u) {
    scratch[k] = teacher[k];
  }
  let v = load_rows(OUT, IN, &scratch);

  load_layers(replica);

  let scale = 1.0 / f32(params.batchSize);
  var loss = 0.0;
  for (var s = 0u; s < params.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = params.stepLo + s;
    let step = vec2<u32>(lo, params.stepHi + select(0u, 1u, lo < params.stepLo));
    // Gradients of this step, per layer.
    var g0 = mat4x4<f32>(); var g1 = mat4x4<f32>(); var g2 = mat4x4<f32>(); var g3 = mat4x4<f32>(); var g4 = mat4x4<f32>();
    var g5 = mat4x4<f32>(); var g6 = mat4x4<f32>(); var g7 = mat4x4<f32>(); var g8 = mat4x4<f32>(); var g9 = mat4x4<f32>();
    // New step, new blocks (block indices restart at 0).
    cachedInputBlock = 0xFFFFFFFFu;
    cachedNoiseBlock = 0xFFFFFFFFu;
    var inputs = NormalCursor(0u, 0u, vec4<f32>());
    var noise = NormalCursor(0u, 0u, vec4<f32>());
    loss = 0.0;
    for (var b = 0u; b < params.batchSize; b += 1u) {
      let x = sx * sample_normals(STREAM_INPUTS, step, streamReplica, b, IN, &inputs);
      let y = v * x + se * sample_normals(STREAM_LABEL_NOISE, step, streamReplica, b, OUT, &noise);
      // Forward: h_{l+1} = W_l h_l; f = h_DEPTH.
      let h0 = x;
      let h1 = W0 * h0;
      var f = h1;
      var h2 = vec4<f32>();
      if (DEPTH > 1u) { h2 = W1 * h1; f = h2; }
      var h3 = vec4<f32>();
      if (DEPTH > 2u) { h3 = W2 * h2; f = h3; }
      var h4 = vec4<f32>();
      if (DEPTH > 3u) { h4 = W3 * h3; f = h4; }
      var h5 = vec4<f32>();
      if (DEPTH > 4u) { h5 = W4 * h4; f = h5; }
      var h6 = vec4<f32>();
      if (DEPTH > 5u) { h6 = W5 * h5; f = h6; }
      var h7 = vec4<f32>();
      if (DEPTH > 6u) { h7 = W6 * h6; f = h7; }
      var h8 = vec4<f32>();
      if (DEPTH > 7u) { h8 = W7 * h7; f = h8; }
      var h9 = vec4<f32>();
      if (DEPTH > 8u) { h9 = W8 * h8; f = h9; }
      var h10 = vec4<f32>();
      if (DEPTH > 9u) { h10 = W9 * h9; f = h10; }
      // δ = ∂(loss / B)/∂f: (f − y)/B for MSE, (softmax(f) − softmax(y))/B for cross-entropy (the
      // padded lanes of f and both softmaxes are 0). Then ∇W_l += δ_{l+1} h_lᵀ and δ_l = W_lᵀ δ_{l+1}.
      var delta: vec4<f32>;
      if (CROSS_ENTROPY) {
        let targets = softmax_of(y).p;
        let predicted = softmax_of(f);
        loss += predicted.logNormaliser - dot(targets, f);
        delta = (predicted.p - targets) * scale;
      } else {
        let r = f - y;
        loss += 0.5 * dot(r, r);
        delta = r * scale;
      }
      if (DEPTH > 9u) { g9 += outer(delta, h9); delta = delta * W9; }
      if (DEPTH > 8u) { g8 += outer(delta, h8); delta = delta * W8; }
      if (DEPTH > 7u) { g7 += outer(delta, h7); delta = delta * W7; }
      if (DEPTH > 6u) { g6 += outer(delta, h6); delta = delta * W6; }
      if (DEPTH > 5u) { g5 += outer(delta, h5); delta = delta * W5; }
      if (DEPTH > 4u) { g4 += outer(delta, h4); delta = delta * W4; }
      if (DEPTH > 3u) { g3 += outer(delta, h3); delta = delta * W3; }
      if (DEPTH > 2u) { g2 += outer(delta, h2); delta = delta * W2; }
      if (DEPTH > 1u) { g1 += outer(delta, h1); delta = delta * W1; }
      g0 += outer(delta, h0);
    }
    W0 -= params.learningRate * g0;
    if (DEPTH > 1u) { W1 -= params.learningRate * g1; }
    if (DEPTH > 2u) { W2 -= params.learningRate * g2; }
    if (DEPTH > 3u) { W3 -= params.learningRate * g3; }
    if (DEPTH > 4u) { W4 -= params.learningRate * g4; }
    if (DEPTH > 5u) { W5 -= params.learningRate * g5; }
    if (DEPTH > 6u) { W6 -= params.learningRate * g6; }
    if (DEPTH > 7u) { W7 -= params.learningRate * g7; }
    if (DEPTH > 8u) { W8 -= params.learningRate * g8; }
    if (DEPTH > 9u) { W9 -= params.learningRate * g9; }
  }
  lastLoss[replica] = loss * scale;
  store_layers(replica);
}
