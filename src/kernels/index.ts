export {
  accumulate,
  BINARY_OPS,
  type BinaryOp,
  binary,
  fill,
  UNARY_OPS,
  type UnaryOp,
  unary,
} from './elementwise.ts';
export { gatherRows } from './gather.ts';
export { type Activation, MATMUL_DEFAULT_WORKGROUP, type MatmulOptions, matmul } from './matmul.ts';
export { dot, norm, type ReduceOp, reduce } from './reduce.ts';
export { type RandomPosition, randomIntegers, randomNormal, randomRademacher, randomUniform } from './rng.ts';
