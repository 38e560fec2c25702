// Batched matrix multiply for SwiftShader with subgroups: matmul_16x8.wgsl (see there) with the loads
// of A shared across the subgroup.
//
//   C[b] = act(alpha · op(A[b]) · op(B[b]) + beta · C[b] + bias[b])   (bias: per column, or a whole [M, N] addend)
//
// SwiftShader's subgroup is the four SIMD lanes of consecutive invocations. With WG_X a multiple of 4
// those four invocations own neighbouring column blocks of the same 16 rows, so in the 16×8 kernel
// each of them loads the same 16 values of A per k: 16 of its 24 emulated gathers fetch copies. Here
// lane l loads rows row0 + l, row0 + 4 + l, row0 + 8 + l, row0 + 12 + l (4 gathers for the 16 rows)
// and subgroupBroadcast hands every lane each row's value: 12 gathers per k instead of 24 (about
// 1.2–1.8× the 16×8 kernel's GFLOP/s there, bench/README.md). The multiply-adds and their order are
// the 16×8 kernel's, so the results are bit for bit the same. src/kernels/matmul.ts picks it only on
// SwiftShader with the `subgroups` feature, with WG_X a multiple of 4 (matmulVariant).

enable subgroups;

//!include matmul_common.wgsl

// Workgroup shape is tunable; a workgroup covers a (16·WG_Y) × (8·WG_X) tile of C.
override WG_X: u32 = 8;
override WG_Y: u32 = 4;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let col0 = gid.x * 8u;
  let row0 = gid.y * 16u;
  let batch = gid.z;
  // No early return for blocks past the edge: every lane must reach the broadcasts (they compute on
  // clamped rows and columns and return before storing).
  // Clamped rows/columns keep loads in bounds; results outside C are dropped in finish().
  let lastRow = params.M - 1u;
  let lastCol = params.N - 1u;
  let aBase = batch * params.aBatch;
  let bBase = batch * params.bBatch;
  // This lane's rows of A: row0 + 4j + lane for j = 0…3.
  let a0 = aBase + min(row0 + 0u + lane, lastRow) * params.aRow;
  let a1 = aBase + min(row0 + 4u + lane, lastRow) * params.aRow;
  let a2 = aBase + min(row0 + 8u + lane, lastRow) * params.aRow;
  let a3 = aBase + min(row0 + 12u + lane, lastRow) * params.aRow;
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
  // Two k per iteration, each as 2 + 4 loads and 16 broadcasts followed by 32 vec4 multiply-adds.
  for (; k + 1u < params.K; k += 2u) {
    let bk0_0 = vec4<f32>(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    let bk1_0 = vec4<f32>(b[b4 + kb], b[b5 + kb], b[b6 + kb], b[b7 + kb]);
    let v0_0 = a[a0 + ka];
    let v1_0 = a[a1 + ka];
    let v2_0 = a[a2 + ka];
    let v3_0 = a[a3 + ka];
    let ak0_0 = subgroupBroadcast(v0_0, 0u);
    let ak1_0 = subgroupBroadcast(v0_0, 1u);
    let ak2_0 = subgroupBroadcast(v0_0, 2u);
    let ak3_0 = subgroupBroadcast(v0_0, 3u);
    let ak4_0 = subgroupBroadcast(v1_0, 0u);
    let ak5_0 = subgroupBroadcast(v1_0, 1u);
    let ak6_0 = subgroupBroadcast(v1_0, 2u);
    let ak7_0 = subgroupBroadcast(v1_0, 3u);
    let ak8_0 = subgroupBroadcast(v2_0, 0u);
    let ak9_0 = subgroupBroadcast(v2_0, 1u);
    let ak10_0 = subgroupBroadcast(v2_0, 2u);
    let ak11_0 = subgroupBroadcast(v2_0, 3u);
    let ak12_0 = subgroupBroadcast(v3_0, 0u);
    let ak13_0 = subgroupBroadcast(v3_0, 1u);
    let ak14_0 = subgroupBroadcast(v3_0, 2u);
    let ak15_0 = subgroupBroadcast(v3_0, 3u);
    acc0_0 += ak0_0 * bk0_0; acc0_1 += ak0_0 * bk1_0;
    acc1_0 += ak1_0 * bk0_0; acc1_1 += ak1_0 * bk1_0;
    acc2_0 += ak2_0 * bk0_0; acc2_1 += ak2_0 * bk1_0;
    acc3_0 += ak3_0 * bk0_0; acc3_1 += ak3_0 * bk1_0;
    acc4_0 += ak4_0 * bk0_0; acc4_1 += ak4_0 * bk1_0;
    acc5_0 += ak5_0 * bk0_0; acc5_1 += ak5_0 * bk1_0;
    acc6_0 += ak6_0 * bk0_0; acc6_1 += ak6_0 * bk1_0;
    acc7_0 += ak7_0 * bk0_0; acc7_1 += ak7_0 * bk1_0;
    acc8_0 += ak8_0 * bk0_0; acc8_1 += ak8_0 * bk1_0;
    acc9_0 += ak9_0 * bk0_0; acc9_1 += ak9_0 * bk1_0;
    acc10_0 += ak10_0 * bk0_0; acc10_1 += ak10_0 * bk1_0;
    acc11_0 += ak11_0 * bk0_0; acc11_1 += ak11_0 * bk1_0;
    acc12_0 += ak12_0 * bk0_0; acc12_1 += ak12_0 * bk1_0;
    acc13_0 += ak13_0 * bk0_0; acc13_1 += ak13_0 * bk1_0;
    acc14_0 += ak14_0 * bk0_0; acc14_1 += ak14_0 * bk1_0;
    acc15_0 += ak15_0 * bk0_0; acc15_1 += ak15_0 * bk1_0;
    let bk0_1 = vec4<f32>(b[b0 + kb + bStep], b[b1 + kb + bStep], b[b2 + kb + bStep], b[b3 + kb + bStep]);
    let bk1_1 = vec4<f32>(b[b4 + kb + bStep], b[b5 + kb + bStep], b[b6 + kb + bStep], b[b7 + kb + bStep]);
    let v0_1 = a[a0 + ka + aStep];
    let v1_1 = a[a1 + ka + aStep];
    let v2_1 = a[a2 + ka + aStep];
    let v3_1 = a[a3 + ka + aStep];
    let ak0_1 = subgroupBroadcast(v0_1, 0u);
    let ak1_1 = subgroupBroadcast(v0_1, 1u);
    let ak2_1 = subgroupBroadcast(v0_1, 2u);
    let ak3_1 = subgroupBroadcast(v0_1, 3u);
    let ak4_1 = subgroupBroadcast(v1_1, 0u);
    let ak5_1 = subgroupBroadcast(v1_1, 1u);
    let ak6_1 = subgroupBroadcast(v1_1, 2u);
    let ak7_1 = subgroupBroadcast(v1_1, 3u);
    let ak8_1 = subgroupBroadcast(v2_1, 0u);
    let ak9_1 = subgroupBroadcast(v2_1, 1u);
    let ak10_1 = subgroupBroadcast(v2_1, 2u);
    let ak11_1 = subgroupBroadcast(v2_1, 3u);
    let ak12_1 = subgroupBroadcast(v3_1, 0u);
    let ak13_1 = subgroupBroadcast(v3_1, 1u);
    let ak14_1 = subgroupBroadcast(v3_1, 2u);
    let ak15_1 = subgroupBroadcast(v3_1, 3u);
    acc0_0 += ak0_1 * bk0_1; acc0_1 += ak0_1 * bk1_1;
    acc1_0 += ak1_1 * bk0_1; acc1_1 += ak1_1 * bk1_1;
    acc2_0 += ak2_1 * bk0_1; acc2_1 += ak2_1 * bk1_1;
    acc3_0 += ak3_1 * bk0_1; acc3_1 += ak3_1 * bk1_1;
    acc4_0 += ak4_1 * bk0_1; acc4_1 += ak4_1 * bk1_1;
    acc5_0 += ak5_1 * bk0_1; acc5_1 += ak5_1 * bk1_1;
    acc6_0 += ak6_1 * bk0_1; acc6_1 += ak6_1 * bk1_1;
    acc7_0 += ak7_1 * bk0_1; acc7_1 += ak7_1 * bk1_1;
    acc8_0 += ak8_1 * bk0_1; acc8_1 += ak8_1 * bk1_1;
    acc9_0 += ak9_1 * bk0_1; acc9_1 += ak9_1 * bk1_1;
    acc10_0 += ak10_1 * bk0_1; acc10_1 += ak10_1 * bk1_1;
    acc11_0 += ak11_1 * bk0_1; acc11_1 += ak11_1 * bk1_1;
    acc12_0 += ak12_1 * bk0_1; acc12_1 += ak12_1 * bk1_1;
    acc13_0 += ak13_1 * bk0_1; acc13_1 += ak13_1 * bk1_1;
    acc14_0 += ak14_1 * bk0_1; acc14_1 += ak14_1 * bk1_1;
    acc15_0 += ak15_1 * bk0_1; acc15_1 += ak15_1 * bk1_1;
    ka += 2u * aStep;
    kb += 2u * bStep;
  }
  if (k < params.K) { // odd K: the last k on its own
    let bk0_0 = vec4<f32>(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    let bk1_0 = vec4<f32>(b[b4 + kb], b[b5 + kb], b[b6 + kb], b[b7 + kb]);
    let v0_0 = a[a0 + ka];
    let v1_0 = a[a1 + ka];
    let v2_0 = a[a2 + ka];
    let v3_0 = a[a3 + ka];
    let ak0_0 = subgroupBroadcast(v0_0, 0u);
    let ak1_0 = subgroupBroadcast(v0_0, 1u);
    let ak2_0 = subgroupBroadcast(v0_0, 2u);
    let ak3_0 = subgroupBroadcast(v0_0, 3u);
    let ak4_0 = subgroupBroadcast(v1_0, 0u);
    let ak5_0 = subgroupBroadcast(v1_0, 1u);
    let ak6_0 = subgroupBroadcast(v1_0, 2u);
    let ak7_0 = subgroupBroadcast(v1_0, 3u);
    let ak8_0 = subgroupBroadcast(v2_0, 0u);
    let ak9_0 = subgroupBroadcast(v2_0, 1u);
    let ak10_0 = subgroupBroadcast(v2_0, 2u);
    let ak11_0 = subgroupBroadcast(v2_0, 3u);
    let ak12_0 = subgroupBroadcast(v3_0, 0u);
    let ak13_0 = subgroupBroadcast(v3_0, 1u);
    let ak14_0 = subgroupBroadcast(v3_0, 2u);
    let ak15_0 = subgroupBroadcast(v3_0, 3u);
    acc0_0 += ak0_0 * bk0_0; acc0_1 += ak0_0 * bk1_0;
    acc1_0 += ak1_0 * bk0_0; acc1_1 += ak1_0 * bk1_0;
    acc2_0 += ak2_0 * bk0_0; acc2_1 += ak2_0 * bk1_0;
    acc3_0 += ak3_0 * bk0_0; acc3_1 += ak3_0 * bk1_0;
    acc4_0 += ak4_0 * bk0_0; acc4_1 += ak4_0 * bk1_0;
    acc5_0 += ak5_0 * bk0_0; acc5_1 += ak5_0 * bk1_0;
    acc6_0 += ak6_0 * bk0_0; acc6_1 += ak6_0 * bk1_0;
    acc7_0 += ak7_0 * bk0_0; acc7_1 += ak7_0 * bk1_0;
    acc8_0 += ak8_0 * bk0_0; acc8_1 += ak8_0 * bk1_0;
    acc9_0 += ak9_0 * bk0_0; acc9_1 += ak9_0 * bk1_0;
    acc10_0 += ak10_0 * bk0_0; acc10_1 += ak10_0 * bk1_0;
    acc11_0 += ak11_0 * bk0_0; acc11_1 += ak11_0 * bk1_0;
    acc12_0 += ak12_0 * bk0_0; acc12_1 += ak12_0 * bk1_0;
    acc13_0 += ak13_0 * bk0_0; acc13_1 += ak13_0 * bk1_0;
    acc14_0 += ak14_0 * bk0_0; acc14_1 += ak14_0 * bk1_0;
    acc15_0 += ak15_0 * bk0_0; acc15_1 += ak15_0 * bk1_0;
  }
  if (col0 >= params.N || row0 >= params.M) {
    return;
  }
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
}
