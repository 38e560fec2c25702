// Elementwise maps over [batch, n] with broadcasting. The operation is an override constant, so
// each op compiles to its own branch-free pipeline.
//
// An operand is addressed as x[b · xBatch + (i / xDiv) % xMod]: xBatch = 0 shares one replica
// with all, (xDiv, xMod) = (1, n) is a full operand, (1, N) a row vector repeated down the rows,
// (N, M) a column vector repeated across the columns, (1, 1) a scalar.

struct Params {
  n: u32,      // elements per replica of the output
  total: u32,  // batch · n
  rowStride: u32, // invocations per dispatch row (2-D dispatch when total exceeds one axis)
  xBatch: u32,
  xDiv: u32,
  xMod: u32,
  yBatch: u32,
  yDiv: u32,
  yMod: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override OP: u32 = 0u;
override WG: u32 = 256u;
// An operand laid out exactly like the output (same shape and replica batch) is read at the
// output's own index: no integer division or modulo, which CPU adapters pay dearly for per element.
override X_DIRECT: bool = false;
override Y_DIRECT: bool = false;

// Unary ops (entry `unary`).
const AFFINE = 0u;       // alpha·x + beta
const RELU = 1u;
const STEP = 2u;         // 1 where x > 0 else 0 (ReLU derivative)
const TANH = 3u;
const EXP = 4u;
const LOG = 5u;
const SQRT = 6u;
const SQUARE = 7u;
const ABS = 8u;
const SIGN = 9u;
const RECIPROCAL = 10u;
const FILL = 11u;        // beta
const SIGMOID = 12u;

// Binary ops (entry `binary`).
const ADD = 0u;          // alpha·x + beta·y
const MUL = 1u;          // alpha·x·y
const DIV = 2u;          // alpha·x / y
const MAX = 3u;
const MIN = 4u;
const RELU_BACKWARD = 5u;  // x where y > 0 else 0
const TANH_BACKWARD = 6u;  // x · (1 − y²), y = tanh output
const GREATER = 7u;        // 1 where x > y else 0

fn element_index(gid: vec3<u32>) -> u32 {
  return gid.y * params.rowStride + gid.x;
}

fn x_at(index: u32) -> f32 {
  if (X_DIRECT) {
    return x[index];
  }
  let b = index / params.n;
  let i = index - b * params.n;
  return x[b * params.xBatch + (i / params.xDiv) % params.xMod];
}

fn y_at(index: u32) -> f32 {
  if (Y_DIRECT) {
    return y[index];
  }
  let b = index / params.n;
  let i = index - b * params.n;
  return y[b * params.yBatch + (i / params.yDiv) % params.yMod];
}

fn unary_op(v: f32) -> f32 {
  switch OP {
    case RELU: { return max(v, 0.0); }
    case STEP: { return select(0.0, 1.0, v > 0.0); }
    case TANH: { return tanh(v); }
    case EXP: { return exp(v); }
    case LOG: { return log(v); }
    case SQRT: { return sqrt(v); }
    case SQUARE: { return v * v; }
    case ABS: { return abs(v); }
    case SIGN: { return sign(v); }
    case RECIPROCAL: { return 1.0 / v; }
    case FILL: { return params.beta; }
    case SIGMOID: { return 1.0 / (1.0 + exp(-v)); }
    default: { return params.alpha * v + params.beta; }
  }
}

fn binary_op(u: f32, v: f32) -> f32 {
  switch OP {
    case MUL: { return params.alpha * u * v; }
    case DIV: { return params.alpha * u / v; }
    case MAX: { return max(u, v); }
    case MIN: { return min(u, v); }
    case RELU_BACKWARD: { return select(0.0, u, v > 0.0); }
    case TANH_BACKWARD: { return u * (1.0 - v * v); }
    case GREATER: { return select(0.0, 1.0, u > v); }
    default: { return params.alpha * u + params.beta * v; }
  }
}

@compute @workgroup_size(WG, 1, 1)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = element_index(gid);
  if (index >= params.total) {
    return;
  }
  out[index] = unary_op(x_at(index));
}

@compute @workgroup_size(WG, 1, 1)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = element_index(gid);
  if (index >= params.total) {
    return;
  }
  out[index] = binary_op(x_at(index), y_at(index));
}

// In place: out = alpha · out + beta · y (SGD updates, gradient accumulation, Lanczos axpy).
@compute @workgroup_size(WG, 1, 1)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = element_index(gid);
  if (index >= params.total) {
    return;
  }
  out[index] = params.alpha * out[index] + params.beta * y_at(index);
}

// In place: out = value (beta) everywhere.
@compute @workgroup_size(WG, 1, 1)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = element_index(gid);
  if (index < params.total) {
    out[index] = params.beta;
  }
}
