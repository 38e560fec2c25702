//!fragment: compiled only inside matmul.wgsl and matmul_flat.wgsl.
// One invocation's 4×4 block of C at (batch, row0, col0), shared by the tiled (matmul.wgsl) and the
// flattened (matmul_flat.wgsl) 4×4 kernels, which differ only in how they map invocations to blocks.

//!include matmul_common.wgsl

fn multiply_block4x4(batch: u32, row0: u32, col0: u32) {
  // Clamped row/column starts keep loads in bounds; results outside C are dropped in finish().
  let lastRow = params.M - 1u;
  let lastCol = params.N - 1u;
  let a0 = batch * params.aBatch + min(row0, lastRow) * params.aRow;
  let a1 = batch * params.aBatch + min(row0 + 1u, lastRow) * params.aRow;
  let a2 = batch * params.aBatch + min(row0 + 2u, lastRow) * params.aRow;
  let a3 = batch * params.aBatch + min(row0 + 3u, lastRow) * params.aRow;
  let b0 = batch * params.bBatch + min(col0, lastCol) * params.bCol;
  let b1 = batch * params.bBatch + min(col0 + 1u, lastCol) * params.bCol;
  let b2 = batch * params.bBatch + min(col0 + 2u, lastCol) * params.bCol;
  let b3 = batch * params.bBatch + min(col0 + 3u, lastCol) * params.bCol;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var ka = 0u; // k · aCol
  var kb = 0u; // k · bRow
  for (var k = 0u; k < params.K; k += 1u) {
    let bk = vec4<f32>(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    acc0 += a[a0 + ka] * bk;
    acc1 += a[a1 + ka] * bk;
    acc2 += a[a2 + ka] * bk;
    acc3 += a[a3 + ka] * bk;
    ka += params.aCol;
    kb += params.bRow;
  }
  store4(batch, row0, col0, acc0);
  store4(batch, row0 + 1u, col0, acc1);
  store4(batch, row0 + 2u, col0, acc2);
  store4(batch, row0 + 3u, col0, acc3);
}
