// Batched matrix multiply for many small products: a 4×4 block of C per invocation, like
// matmul.wgsl, but the (replica, row block, column block) grid is flattened into one axis of
// WG-wide workgroups. Attention scores (T×T per sequence), per-sample gradients and other batches of
// tiny matrices would otherwise launch one mostly idle workgroup per replica.

//!include matmul_block4x4.wgsl

override WG: u32 = 64;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let rowBlocks = (params.M + 3u) / 4u;
  let colBlocks = (params.N + 3u) / 4u;
  let perReplica = rowBlocks * colBlocks;
  // Row-major over dispatch rows of 65535 workgroups when the grid is 2-D.
  let index = gid.y * (65535u * WG) + gid.x;
  if ((index >= perReplica * params.batch)) {
    return;
  }
  let batch = index / perReplica;
  let tile = index % perReplica;
  let row0 = (tile / colBlocks) * 4u;
  let col0 = (tile % colBlocks) * 4u;
  multiply_block4x4(batch, row0, col0);
}
