//!fragment
// The 16×8 kernels' stores of their block of C (the end of main).
// Shared by matmul_16x8.wgsl and matmul_16x8_subgroup.wgsl (textual include: the kernels compile
// to the same code as when it was written out in each).
  // Stores. A whole block of a plain product (the common case) is written directly; anything else
  // (edges, alpha, beta, bias, activation) goes through finish() in a loop. Straight-line finish()
  // calls for all 128 values would compile for seconds on SwiftShader; the loop compiles in
  // milliseconds and costs little next to the k loop.
  if (row0 + 16u <= params.M && col0 + 8u <= params.N && params.alpha == 1.0 && params.beta == 0.0 && params.hasBias == 0u &&
      params.activation == 0u) {
    var o = (batch * params.M + row0) * params.N + col0;
    c[o + 0u] = acc0_0.x; c[o + 1u] = acc0_0.y; c[o + 2u] = acc0_0.z; c[o + 3u] = acc0_0.w;
    c[o + 4u] = acc0_1.x; c[o + 5u] = acc0_1.y; c[o + 6u] = acc0_1.z; c[o + 7u] = acc0_1.w;
    o += params.N;
    c[o + 0u] = acc1_0.x; c[o + 1u] = acc1_0.y; c[o + 2u] = acc1_0.z; c[o + 3u] = acc1_0.w;
    c[o + 4u] = acc1_1.x; c[o + 5u] = acc1_1.y; c[o + 6u] = acc1_1.z; c[o + 7u] = acc1_1.w;
    o += params.N;
    c[o + 0u] = acc2_0.x; c[o + 1u] = acc2_0.y; c[o + 2u] = acc2_0.z; c[o + 3u] = acc2_0.w;
    c[o + 4u] = acc2_1.x; c[o + 5u] = acc2_1.y; c[o + 6u] = acc2_1.z; c[o + 7u] = acc2_1.w;
    o += params.N;
    c[o + 0u] = acc3_0.x; c[o + 1u] = acc3_0.y; c[o + 2u] = acc3_0.z; c[o + 3u] = acc3_0.w;
    c[o + 4u] = acc3_1.x; c[o + 5u] = acc3_1.y; c[o + 6u] = acc3_1.z; c[o + 7u] = acc3_1.w;
    o += params.N;
    c[o + 0u] = acc4_0.x; c[o + 1u] = acc4_0.y; c[o + 2u] = acc4_0.z; c[o + 3u] = acc4_0.w;
    c[o + 4u] = acc4_1.x; c[o + 5u] = acc4_1.y; c[o + 6u] = acc4_1.z; c[o + 7u] = acc4_1.w;
    o += params.N;
    c[o + 0u] = acc5_0.x; c[o + 1u] = acc5_0.y; c[o + 2u] = acc5_0.z; c[o + 3u] = acc5_0.w;
    c[o + 4u] = acc5_1.x; c[o + 5u] = acc5_1.y; c[o + 6u] = acc5_1.z; c[o + 7u] = acc5_1.w;
    o += params.N;
    c[o + 0u] = acc6_0.x; c[o + 1u] = acc6_0.y; c[o + 2u] = acc6_0.z; c[o + 3u] = acc6_0.w;
    c[o + 4u] = acc6_1.x; c[o + 5u] = acc6_1.y; c[o + 6u] = acc6_1.z; c[o + 7u] = acc6_1.w;
    o += params.N;
    c[o + 0u] = acc7_0.x; c[o + 1u] = acc7_0.y; c[o + 2u] = acc7_0.z; c[o + 3u] = acc7_0.w;
    c[o + 4u] = acc7_1.x; c[o + 5u] = acc7_1.y; c[o + 6u] = acc7_1.z; c[o + 7u] = acc7_1.w;
    o += params.N;
    c[o + 0u] = acc8_0.x; c[o + 1u] = acc8_0.y; c[o + 2u] = acc8_0.z; c[o + 3u] = acc8_0.w;
    c[o + 4u] = acc8_1.x; c[o + 5u] = acc8_1.y; c[o + 6u] = acc8_1.z; c[o + 7u] = acc8_1.w;
    o += params.N;
    c[o + 0u] = acc9_0.x; c[o + 1u] = acc9_0.y; c[o + 2u] = acc9_0.z; c[o + 3u] = acc9_0.w;
    c[o + 4u] = acc9_1.x; c[o + 5u] = acc9_1.y; c[o + 6u] = acc9_1.z; c[o + 7u] = acc9_1.w;
    o += params.N;
    c[o + 0u] = acc10_0.x; c[o + 1u] = acc10_0.y; c[o + 2u] = acc10_0.z; c[o + 3u] = acc10_0.w;
    c[o + 4u] = acc10_1.x; c[o + 5u] = acc10_1.y; c[o + 6u] = acc10_1.z; c[o + 7u] = acc10_1.w;
    o += params.N;
    c[o + 0u] = acc11_0.x; c[o + 1u] = acc11_0.y; c[o + 2u] = acc11_0.z; c[o + 3u] = acc11_0.w;
    c[o + 4u] = acc11_1.x; c[o + 5u] = acc11_1.y; c[o + 6u] = acc11_1.z; c[o + 7u] = acc11_1.w;
    o += params.N;
    c[o + 0u] = acc12_0.x; c[o + 1u] = acc12_0.y; c[o + 2u] = acc12_0.z; c[o + 3u] = acc12_0.w;
    c[o + 4u] = acc12_1.x; c[o + 5u] = acc12_1.y; c[o + 6u] = acc12_1.z; c[o + 7u] = acc12_1.w;
    o += params.N;
    c[o + 0u] = acc13_0.x; c[o + 1u] = acc13_0.y; c[o + 2u] = acc13_0.z; c[o + 3u] = acc13_0.w;
    c[o + 4u] = acc13_1.x; c[o + 5u] = acc13_1.y; c[o + 6u] = acc13_1.z; c[o + 7u] = acc13_1.w;
    o += params.N;
    c[o + 0u] = acc14_0.x; c[o + 1u] = acc14_0.y; c[o + 2u] = acc14_0.z; c[o + 3u] = acc14_0.w;
    c[o + 4u] = acc14_1.x; c[o + 5u] = acc14_1.y; c[o + 6u] = acc14_1.z; c[o + 7u] = acc14_1.w;
    o += params.N;
    c[o + 0u] = acc15_0.x; c[o + 1u] = acc15_0.y; c[o + 2u] = acc15_0.z; c[o + 3u] = acc15_0.w;
    c[o + 4u] = acc15_1.x; c[o + 5u] = acc15_1.y; c[o + 6u] = acc15_1.z; c[o + 7u] = acc15_1.w;
    return;
  }
  var tile: array<vec4<f32>, 32>; // tile[2i + q] = acc{i}_{q}
  tile[0] = acc0_0; tile[1] = acc0_1;
  tile[2] = acc1_0; tile[3] = acc1_1;
  tile[4] = acc2_0; tile[5] = acc2_1;
  tile[6] = acc3_0; tile[7] = acc3_1;
  tile[8] = acc4_0; tile[9] = acc4_1;
  tile[10] = acc5_0; tile[11] = acc5_1;
  tile[12] = acc6_0; tile[13] = acc6_1;
  tile[14] = acc7_0; tile[15] = acc7_1;
  tile[16] = acc8_0; tile[17] = acc8_1;
  tile[18] = acc9_0; tile[19] = acc9_1;
  tile[20] = acc10_0; tile[21] = acc10_1;
  tile[22] = acc11_0; tile[23] = acc11_1;
  tile[24] = acc12_0; tile[25] = acc12_1;
  tile[26] = acc13_0; tile[27] = acc13_1;
  tile[28] = acc14_0; tile[29] = acc14_1;
  tile[30] = acc15_0; tile[31] = acc15_1;
  for (var t = 0u; t < 32u; t += 1u) {
    store4(batch, row0 + t / 2u, col0 + 4u * (t % 2u), tile[t]);
  }
