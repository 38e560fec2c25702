// Batched matrix multiply for many small products: a 4×4 block of C per invocation, like
// matmul.wgsl, but the (replica, row block, column block) grid is flattened into one axis of
// WG-wide workgroups. Attention scores (T×T per sequence), per-sample gradients and other batches of
// tiny matrices would otherwise launch one mostly idle workgroup per replica.

//!include matmul_common.wgsl

override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let rowBlocks = (p.M + 3u) / 4u;
  let colBlocks = (p.N + 3u) / 4u;
  let perReplica = rowBlocks * colBlocks;
  // Row-major over dispatch rows of 65535 workgroups when the grid is 2-D.
  let index = gid.y * (65535u * WG) + gid.x;
  if ((index >= perReplica * p.batch)) {
    return;
  }
  let batch = index / perReplica;
  let tile = index % perReplica;
  let row0 = (tile / colBlocks) * 4u;
  let col0 = (tile % colBlocks) * 4u;
  // Clamped row/column starts keep loads in bounds; results outside C are dropped in finish().
  let lastRow = p.M - 1u;
  let lastCol = p.N - 1u;
  let a0 = batch * p.aBatch + min(row0, lastRow) * p.aRow;
  let a1 = batch * p.aBatch + min(row0 + 1u, lastRow) * p.aRow;
  let a2 = batch * p.aBatch + min(row0 + 2u, lastRow) * p.aRow;
  let a3 = batch * p.aBatch + min(row0 + 3u, lastRow) * p.aRow;
  let b0 = batch * p.bBatch + min(col0, lastCol) * p.bCol;
  let b1 = batch * p.bBatch + min(col0 + 1u, lastCol) * p.bCol;
  let b2 = batch * p.bBatch + min(col0 + 2u, lastCol) * p.bCol;
  let b3 = batch * p.bBatch + min(col0 + 3u, lastCol) * p.bCol;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var ka = 0u; // k · aCol
  var kb = 0u; // k · bRow
  for (var k = 0u; k < p.K; k += 1u) {
    let bk = vec4<f32>(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    acc0 += a[a0 + ka] * bk;
    acc1 += a[a1 + ka] * bk;
    acc2 += a[a2 + ka] * bk;
    acc3 += a[a3 + ka] * bk;
    ka += p.aCol;
    kb += p.bRow;
  }
  store4(batch, row0, col0, acc0);
  store4(batch, row0 + 1u, col0, acc1);
  store4(batch, row0 + 2u, col0, acc2);
  store4(batch, row0 + 3u, col0, acc3);
}
