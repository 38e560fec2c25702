//!fragment: compiled only inside the narrow fused kernels (fused_deep_linear_narrow.wgsl,
// fused_mlp_narrow.wgsl), after fused_common.wgsl (OUT).
//
// Softmax cross-entropy against soft targets for outputs held in a zero-padded vec4: the general
// path's softCrossEntropy (src/models/losses.ts), logsumexp(f) − ⟨p, f⟩ with p = softmax(y) the
// targets SoftmaxTargets makes of the noisy labels. Its gradient in f is softmax(f) − p.

// Softmax over the OUT valid lanes (the rest 0) and its log-normaliser, as (p, log Σ exp).
struct Softmax {
  p: vec4<f32>,
  logNormaliser: f32,
}

fn softmax_of(v: vec4<f32>) -> Softmax {
  let valid = vec4<bool>(0u < OUT, 1u < OUT, 2u < OUT, 3u < OUT);
  let top = select(vec4<f32>(-3.0e38), v, valid);
  let largest = max(max(top.x, top.y), max(top.z, top.w));
  let e = select(vec4<f32>(0.0), exp(v - largest), valid);
  let total = dot(e, vec4<f32>(1.0));
  return Softmax(e / total, largest + log(total));
}
