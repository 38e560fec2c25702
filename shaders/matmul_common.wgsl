//!fragment: compiled only inside the matmul kernels that include it.
// The interface and epilogue every matmul kernel shares (`//!include matmul_common.wgsl`): the
// uniform struct, the bindings, and `finish`, which applies alpha, beta, bias and the activation and
// stores one element of C if it lies inside the matrix.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  aBatch: u32,
  aRow: u32,
  aCol: u32,
  bBatch: u32,
  bRow: u32,
  bCol: u32,
  biasBatch: u32,
  biasRow: u32,    // 0: bias is per column ([N]); N: it is a whole addend D ([M, N]), C = A·B + D
  hasBias: u32,
  activation: u32, // 0 identity, 1 relu, 2 tanh
  alpha: f32,
  beta: f32,
  batch: u32, // replicas of C (the flattened kernel's bound)
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// Activation codes (Params.activation); src/kernels/matmul.ts keeps the same table, tests compare them.
const ACTIVATION_NONE = 0u;
const ACTIVATION_RELU = 1u;
const ACTIVATION_TANH = 2u;

fn activate(x: f32) -> f32 {
  switch params.activation {
    case ACTIVATION_RELU: { return max(x, 0.0); }
    case ACTIVATION_TANH: { return tanh(x); }
    default: { return x; }
  }
}

fn finish(batch: u32, row: u32, col: u32, value: f32) {
  if (row >= params.M || col >= params.N) {
    return;
  }
  let index = (batch * params.M + row) * params.N + col;
  var result = params.alpha * value;
  if (params.beta != 0.0) {
    result += params.beta * c[index];
  }
  if (params.hasBias != 0u) {
    result += bias[batch * params.biasBatch + row * params.biasRow + col];
  }
  c[index] = activate(result);
}

fn store4(batch: u32, row: u32, col0: u32, acc: vec4<f32>) {
  finish(batch, row, col0, acc.x);
  finish(batch, row, col0 + 1u, acc.y);
  finish(batch, row, col0 + 2u, acc.z);
  finish(batch, row, col0 + 3u, acc.w);
}
