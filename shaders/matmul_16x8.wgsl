// Batched matrix multiply for CPU adapters (SwiftShader): every invocation owns a 16×8 block of C.
//
//   C[b] = act(alpha · op(A[b]) · op(B[b]) + beta · C[b] + bias[b])   (bias: per column, or a whole [M, N] addend)
//
// Same contract, bindings, uniforms and overrides as matmul.wgsl (the 4×4 kernel, see there for the
// stride scheme); src/kernels/matmul.ts picks between them (matmulVariant).
//
// Why a 16×8 block: SwiftShader runs four invocations in the lanes of one SIMD register, and every
// storage-buffer load whose index is not a constant becomes an emulated gather (a bounds mask, then
// four masked scalar loads). Loads, not multiply-adds, bound the kernel, so what counts is the
// multiply-adds per load: per k a 4×4 block loads 4 + 4 values for 16 of them, a 16×8 block 16 + 8
// for 128. Larger blocks (16×16, 32×8, 24×8) measured no better: their accumulators spill.
// The code is straight-line on purpose: SwiftShader's Subzero JIT neither unrolls loops nor keeps a
// dynamically indexed array in registers, so the accumulators are 32 named vec4s and k is unrolled
// by hand, by two (by four measured slower). Each step loads everything first, then multiplies.

//!include matmul_common.wgsl

// Workgroup shape is tunable; a workgroup covers a (16·WG_Y) × (8·WG_X) tile of C.
override WG_X: u32 = 8;
override WG_Y: u32 = 4;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col0 = gid.x * 8u;
  let row0 = gid.y * 16u;
  let batch = gid.z;
  if (col0 >= params.N || row0 >= params.M) {
    return;
  }
  // Clamped rows/columns keep loads in bounds; results outside C are dropped in finish().
  let lastRow = params.M - 1u;
  let lastCol = params.N - 1u;
  let aBase = batch * params.aBatch;
  let bBase = batch * params.bBatch;
  let a0 = aBase + min(row0 + 0u, lastRow) * params.aRow;
  let a1 = aBase + min(row0 + 1u, lastRow) * params.aRow;
  let a2 = aBase + min(row0 + 2u, lastRow) * params.aRow;
  let a3 = aBase + min(row0 + 3u, lastRow) * params.aRow;
  let a4 = aBase + min(row0 + 4u, lastRow) * params.aRow;
  let a5 = aBase + min(row0 + 5u, lastRow) * params.aRow;
  let a6 = aBase + min(row0 + 6u, lastRow) * params.aRow;
  let a7 = aBase + min(row0 + 7u, lastRow) * params.aRow;
  let a8 = aBase + min(row0 + 8u, lastRow) * params.aRow;
  let a9 = aBase + min(row0 + 9u, lastRow) * params.aRow;
  let a10 = aBase + min(row0 + 10u, lastRow) * params.aRow;
  let a11 = aBase + min(row0 + 11u, lastRow) * params.aRow;
  let a12 = aBase + min(row0 + 12u, lastRow) * params.aRow;
  let a13 = aBase + min(row0 + 13u, lastRow) * params.aRow;
  let a14 = aBase + min(row0 + 14u, lastRow) * params.aRow;
  let a15 = aBase + min(row0 + 15u, lastRow) * params.aRow;
  //!include matmul_16x8_setup.wgsl
  // Two k per iteration, each as 2 + 16 loads followed by 32 vec4 multiply-adds.
  for (; k + 1u < params.K; k += 2u) {
    //!include matmul_16x8_step.wgsl
    let bk0_1 = vec4<f32>(b[b0 + kb + bStep], b[b1 + kb + bStep], b[b2 + kb + bStep], b[b3 + kb + bStep]);
    let bk1_1 = vec4<f32>(b[b4 + kb + bStep], b[b5 + kb + bStep], b[b6 + kb + bStep], b[b7 + kb + bStep]);
    let ak0_1 = a[a0 + ka + aStep];
    let ak1_1 = a[a1 + ka + aStep];
    let ak2_1 = a[a2 + ka + aStep];
    let ak3_1 = a[a3 + ka + aStep];
    let ak4_1 = a[a4 + ka + aStep];
    let ak5_1 = a[a5 + ka + aStep];
    let ak6_1 = a[a6 + ka + aStep];
    let ak7_1 = a[a7 + ka + aStep];
    let ak8_1 = a[a8 + ka + aStep];
    let ak9_1 = a[a9 + ka + aStep];
    let ak10_1 = a[a10 + ka + aStep];
    let ak11_1 = a[a11 + ka + aStep];
    let ak12_1 = a[a12 + ka + aStep];
    let ak13_1 = a[a13 + ka + aStep];
    let ak14_1 = a[a14 + ka + aStep];
    let ak15_1 = a[a15 + ka + aStep];
    //!include matmul_16x8_fma_odd.wgsl
    ka += 2u * aStep;
    kb += 2u * bStep;
  }
  if (k < params.K) { // odd K: the last k on its own
    //!include matmul_16x8_step.wgsl
  }
  //!include matmul_16x8_store.wgsl
}
