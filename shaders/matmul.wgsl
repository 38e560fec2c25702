// Batched matrix multiply, register-blocked: every invocation owns a 4×4 block of C.
//
//   C[b] = act(alpha · op(A[b]) · op(B[b]) + beta · C[b] + bias[b])   (bias: per column, or a whole [M, N] addend)
//
// Operands are read through element strides, so transposes and batch broadcasting (stride 0)
// cost nothing extra: A(b, i, k) = A[b·aBatch + i·aRow + k·aCol], B(b, k, j) = B[b·bBatch + k·bRow + j·bCol].
// C is contiguous [batch, M, N]. There is no workgroup memory: on CPU adapters (SwiftShader) a
// shared-memory tile costs more than it saves, while four loads of A and four of B feeding sixteen
// FMAs per k keep the arithmetic dense. Rows and columns past the edge are clamped for loading and
// masked for storing, so every shape works without padding.

//!include matmul_block4x4.wgsl

// Workgroup shape is tunable; a workgroup covers a (4·WG_Y) × (4·WG_X) tile of C.
override WG_X: u32 = 8;
override WG_Y: u32 = 8;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col0 = gid.x * 4u;
  let row0 = gid.y * 4u;
  let batch = gid.z;
  if (col0 >= params.N || row0 >= params.M) {
    return;
  }
  multiply_block4x4(batch, row0, col0);
}
