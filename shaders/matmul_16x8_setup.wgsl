//!fragment
// The 16×8 kernels' B column offsets, 32 accumulators and k counters (inside main).
// Shared by matmul_16x8.wgsl and matmul_16x8_subgroup.wgsl (textual include: the kernels compile
// to the same code as when it was written out in each).
  let b0 = bBase + min(col0 + 0u, lastCol) * params.bCol;
  let b1 = bBase + min(col0 + 1u, lastCol) * params.bCol;
  let b2 = bBase + min(col0 + 2u, lastCol) * params.bCol;
  let b3 = bBase + min(col0 + 3u, lastCol) * params.bCol;
  let b4 = bBase + min(col0 + 4u, lastCol) * params.bCol;
  let b5 = bBase + min(col0 + 5u, lastCol) * params.bCol;
  let b6 = bBase + min(col0 + 6u, lastCol) * params.bCol;
  let b7 = bBase + min(col0 + 7u, lastCol) * params.bCol;
  // acc{i}_{q}: row row0 + i, columns col0 + 4q … col0 + 4q + 3.
  var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0);
  var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0);
  var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0);
  var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0);
  var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0);
  var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0);
  var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0);
  var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0);
  var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0);
  var acc9_0 = vec4<f32>(0.0); var acc9_1 = vec4<f32>(0.0);
  var acc10_0 = vec4<f32>(0.0); var acc10_1 = vec4<f32>(0.0);
  var acc11_0 = vec4<f32>(0.0); var acc11_1 = vec4<f32>(0.0);
  var acc12_0 = vec4<f32>(0.0); var acc12_1 = vec4<f32>(0.0);
  var acc13_0 = vec4<f32>(0.0); var acc13_1 = vec4<f32>(0.0);
  var acc14_0 = vec4<f32>(0.0); var acc14_1 = vec4<f32>(0.0);
  var acc15_0 = vec4<f32>(0.0); var acc15_1 = vec4<f32>(0.0);
  let aStep = params.aCol;
  let bStep = params.bRow;
  var ka = 0u; // k · aCol
  var kb = 0u; // k · bRow
  var k = 0u;
