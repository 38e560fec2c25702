// Many online-SGD steps per dispatch of a deep linear network with input and output width 2 and
// hidden widths ≤ 2, one invocation per replica: the paper's setting (d = 2), and most presets'.
// Same bindings, uniforms and random streams as fused_deep_linear_narrow.wgsl; three things make it
// 1.4–1.6× faster than that kernel at 64 replicas on SwiftShader (Philox is then ~4/5 of the time):
//
// - Layers are mat2x2, a quarter of the arithmetic of zero-padded mat4x4s.
// - Under ½‖f − y‖² a linear network's minibatch gradient sees the batch only through two 2×2
//   moments. With x = S_x z, y = V x + S_ε e and f = W x (W = W_{D−1} ⋯ W_0):
//     r_b = f_b − y_b = A z_b − S_ε e_b,          A = (W − V) S_x,
//     Σ_b r_b x_bᵀ = (A Σ_b z_b z_bᵀ − S_ε Σ_b e_b z_bᵀ) S_xᵀ,
//     ∇W_l = Q_lᵀ (Σ_b r_b x_bᵀ) P_lᵀ / B,          P_l = W_{l−1} ⋯ W_0,  Q_l = W_{D−1} ⋯ W_{l+1}.
//   So a sample costs two outer products, and forward and backward run once per step on 2×2 matrices.
// - Element i of the general path's normal tensor is lane i % 4 of Philox block i / 4; with both
//   widths 2 a block holds two whole samples of each stream, so a step reads ⌈B/2⌉ blocks per stream
//   straight, with no cursor.
//
// The numbers equal the general path's up to float rounding (sums are associated differently); the
// loss reported is the last step's minibatch loss, from its residuals. Packing: fused_common.wgsl.

//!include fused_common.wgsl

alias Layer = mat2x2<f32>;
//!include fused_layers.wgsl

// A row-major 2×2 matrix from four consecutive floats (WGSL matrices are column-major).
fn rows_2x2(m00: f32, m01: f32, m10: f32, m11: f32) -> mat2x2<f32> {
  return mat2x2<f32>(m00, m10, m01, m11);
}

fn outer_2x2(column: vec2<f32>, row: vec2<f32>) -> mat2x2<f32> {
  return mat2x2<f32>(column * row.x, column * row.y);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let streamReplica = replica + params.replicaOffset;

  // Data-generating matrices: x = S_x z, y = V x + S_ε e.
  let ox = replica * params.rootXStride;
  let sx = rows_2x2(rootX[ox], rootX[ox + 1u], rootX[ox + 2u], rootX[ox + 3u]);
  let oe = replica * params.rootEpsStride;
  let se = rows_2x2(rootEps[oe], rootEps[oe + 1u], rootEps[oe + 2u], rootEps[oe + 3u]);
  let v = rows_2x2(teacher[0], teacher[1], teacher[2], teacher[3]);

  load_layers(replica); // zero-padded to 2×2 (a hidden width may be 1)

  let scale = 1.0 / f32(params.batchSize);
  let pairs = (params.batchSize + 1u) / 2u;
  var loss = 0.0;
  for (var s = 0u; s < params.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = params.stepLo + s;
    let step = vec2<u32>(lo, params.stepHi + select(0u, 1u, lo < params.stepLo));

    // Forward, once per step: prefix products P_{l+1} = W_l P_l (h_l = P_l x), f = P_DEPTH.
    let P1 = W0;
    var f = P1;
    var P2 = mat2x2<f32>(); var P3 = mat2x2<f32>(); var P4 = mat2x2<f32>(); var P5 = mat2x2<f32>();
    var P6 = mat2x2<f32>(); var P7 = mat2x2<f32>(); var P8 = mat2x2<f32>(); var P9 = mat2x2<f32>();
    if (DEPTH > 1u) { P2 = W1 * P1; f = P2; }
    if (DEPTH > 2u) { P3 = W2 * P2; f = P3; }
    if (DEPTH > 3u) { P4 = W3 * P3; f = P4; }
    if (DEPTH > 4u) { P5 = W4 * P4; f = P5; }
    if (DEPTH > 5u) { P6 = W5 * P5; f = P6; }
    if (DEPTH > 6u) { P7 = W6 * P6; f = P7; }
    if (DEPTH > 7u) { P8 = W7 * P7; f = P8; }
    if (DEPTH > 8u) { P9 = W8 * P8; f = P9; }
    if (DEPTH > 9u) { f = W9 * P9; }
    let A = (f - v) * sx;

    // The batch: Σ z zᵀ and Σ e zᵀ, two samples per Philox block of each stream. An odd batch uses
    // only the first sample of its last blocks. The loss is only reported for the last step.
    var zz = mat2x2<f32>();
    var ez = mat2x2<f32>();
    let last = s + 1u == params.steps;
    for (var pair = 0u; pair < pairs; pair += 1u) {
      let counter = vec4<u32>(pair, streamReplica, step.x, step.y);
      let z = box_muller(philox(counter, vec2<u32>(params.seed, STREAM_INPUTS)));
      let e = box_muller(philox(counter, vec2<u32>(params.seed, STREAM_LABEL_NOISE)));
      let second = select(1.0, 0.0, 2u * pair + 1u == params.batchSize);
      zz += outer_2x2(z.xy, z.xy) + outer_2x2(second * z.zw, z.zw);
      ez += outer_2x2(e.xy, z.xy) + outer_2x2(second * e.zw, z.zw);
      if (last) {
        let r0 = A * z.xy - se * e.xy;
        let r1 = A * z.zw - se * e.zw;
        loss += 0.5 * (dot(r0, r0) + second * dot(r1, r1));
      }
    }

    // Backward, once per step: T_D = Σ_b r_b x_bᵀ / B, ∇W_l = T_{l+1} P_lᵀ, T_l = W_lᵀ T_{l+1}.
    // Each layer is updated once T has passed through it; the P_l were made before any update.
    var t = (A * zz - se * ez) * transpose(sx) * scale;
    if (DEPTH > 9u) { let g = t * transpose(P9); t = transpose(W9) * t; W9 -= params.learningRate * g; }
    if (DEPTH > 8u) { let g = t * transpose(P8); t = transpose(W8) * t; W8 -= params.learningRate * g; }
    if (DEPTH > 7u) { let g = t * transpose(P7); t = transpose(W7) * t; W7 -= params.learningRate * g; }
    if (DEPTH > 6u) { let g = t * transpose(P6); t = transpose(W6) * t; W6 -= params.learningRate * g; }
    if (DEPTH > 5u) { let g = t * transpose(P5); t = transpose(W5) * t; W5 -= params.learningRate * g; }
    if (DEPTH > 4u) { let g = t * transpose(P4); t = transpose(W4) * t; W4 -= params.learningRate * g; }
    if (DEPTH > 3u) { let g = t * transpose(P3); t = transpose(W3) * t; W3 -= params.learningRate * g; }
    if (DEPTH > 2u) { let g = t * transpose(P2); t = transpose(W2) * t; W2 -= params.learningRate * g; }
    if (DEPTH > 1u) { let g = t * transpose(P1); t = transpose(W1) * t; W1 -= params.learningRate * g; }
    W0 -= params.learningRate * t;
  }
  lastLoss[replica] = loss * scale;
  store_layers(replica);
}
