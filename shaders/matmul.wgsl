// Batched matrix multiply, register-blocked: every invocation owns a 4×4 block of C.
//
//   C[b] = act(alpha · op(A[b]) · op(B[b]) + beta · C[b] + bias[b])
//
// Operands are read through element strides, so transposes and batch broadcasting (stride 0)
// cost nothing extra: A(b, i, k) = A[b·aBatch + i·aRow + k·aCol], B(b, k, j) = B[b·bBatch + k·bRow + j·bCol].
// C is contiguous [batch, M, N]. There is no workgroup memory: on CPU adapters (SwiftShader) a
// shared-memory tile costs more than it saves, while four loads of A and four of B feeding sixteen
// FMAs per k keep the arithmetic dense. Rows and columns past the edge are clamped for loading and
// masked for storing, so every shape works without padding.

//!include matmul_common.wgsl

// Workgroup shape is tunable; a workgroup covers a (4·WG_Y) × (4·WG_X) tile of C.
override WG_X: u32 = 8;
override WG_Y: u32 = 8;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col0 = gid.x * 4u;
  let row0 = gid.y * 4u;
  let batch = gid.z;
  if (col0 >= p.N || row0 >= p.M) {
    return;
  }
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
