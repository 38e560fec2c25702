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
  //!include matmul_16x8_setup.wgsl
  // Two k per iteration, each as 2 + 4 loads and 16 broadcasts followed by 32 vec4 multiply-adds.
  for (; k + 1u < params.K; k += 2u) {
    //!include matmul_16x8_subgroup_step.wgsl
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
    //!include matmul_16x8_fma_odd.wgsl
    ka += 2u * aStep;
    kb += 2u * bStep;
  }
  if (k < params.K) { // odd K: the last k on its own
    //!include matmul_16x8_subgroup_step.wgsl
  }
  if (col0 >= params.N || row0 >= params.M) {
    return;
  }
  //!include matmul_16x8_store.wgsl
}
