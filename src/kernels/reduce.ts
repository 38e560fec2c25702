import { InputError } from '../errors.ts';
import { isSwiftShader } from '../gpu/context.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';
import { broadcastBatch, outputTensor, product, sameShape } from './shapes.ts';

/** Codes match the REDUCE_* constants in shaders/reduce.wgsl. */
export const REDUCE_OPS = { sum: 0, sumSquares: 1, max: 2, min: 3, sumAbs: 4 } as const;
export type ReduceOp = keyof typeof REDUCE_OPS | 'mean';

export interface ReduceOptions {
  /** Axis of the per-replica shape; negative counts from the end. Omitted: all axes (one value per replica). */
  axis?: number;
  /** Multiply the result (after mean's 1/len). */
  scale?: number;
  /** Square root of the (scaled) result: sumSquares + sqrt is the 2-norm. */
  sqrt?: boolean;
  out?: Tensor;
  /** Force a strategy: 'rows' (an invocation per output) or 'tree' (a workgroup per output). */
  strategy?: 'rows' | 'tree';
}

const TREE_WORKGROUP = 64;
const ROWS_WORKGROUP = 64;

/**
 * Reduction strategy: a workgroup per output pays off once each output sums many elements and outputs
 * are few. On a CPU adapter (SwiftShader) a workgroup's barriers cost more than the serial loop they
 * split, so only a handful of long outputs go to trees: measured there, 512 column sums of 256 rows
 * (MNIST's bias gradients at 4 replicas) took 194 ms as trees and 19 ms as rows, 16 sums of 4096
 * 5.4 ms and 2.7 ms, while 4 sums of 101,770 took 29 ms and 40 ms.
 */
export function chooseReduceStrategy(outputs: number, length: number, cpuAdapter = false): 'rows' | 'tree' {
  if (cpuAdapter) return length >= 256 && outputs <= 8 ? 'tree' : 'rows';
  return length >= 256 && outputs < 4096 ? 'tree' : 'rows';
}

/** Reduces each replica over one axis (or all), e.g. sum over the batch axis of per-sample losses. */
/** A reduction axis (negative counts from the end) as an index into `shape`, or an input error. */
function reducedAxis(shape: readonly number[], axis: number): number {
  const a = axis < 0 ? shape.length + axis : axis;
  if (!Number.isInteger(a) || a < 0 || a >= shape.length)
    throw new InputError('reduce.axis', `${axis} is not an axis of [${shape}]`);
  return a;
}

/** The per-replica shape of a reduction over `axis` (all axes when undefined): [1] when nothing is left. */
export function reducedShape(shape: readonly number[], axis?: number): number[] {
  if (axis === undefined) return [1];
  const a = reducedAxis(shape, axis);
  const left = shape.filter((_, d) => d !== a);
  return left.length > 0 ? left : [1];
}

/** `op` (sum, mean, sumSquares, sumAbs, max, min) per replica over one axis of the per-replica shape, or all of it (→ [1]). */
export function reduce(engine: Engine, op: ReduceOp, x: Tensor, options: ReduceOptions = {}): Tensor {
  let outer: number;
  let len: number;
  let inner: number;
  let outShape: number[];
  if (options.axis === undefined) {
    [outer, len, inner] = [1, x.size, 1];
    outShape = [1];
  } else {
    const axis = reducedAxis(x.shape, options.axis);
    outer = product(x.shape.slice(0, axis));
    len = x.shape[axis];
    inner = product(x.shape.slice(axis + 1));
    outShape = reducedShape(x.shape, axis);
  }
  const out = outputTensor(engine, 'reduce', outShape, x.batch, options.out);
  const code = REDUCE_OPS[op === 'mean' ? 'sum' : op];
  const alpha = (options.scale ?? 1) * (op === 'mean' ? 1 / len : 1);
  const outputs = outer * inner * x.batch;
  const strategy = options.strategy ?? chooseReduceStrategy(outputs, len, isSwiftShader(engine.context));
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  const uniforms = {
    outer,
    len,
    inner,
    batch: x.batch,
    xBatch: x.size,
    yBatch: 0,
    alpha,
    finalSqrt: options.sqrt ? 1 : 0,
  };
  const tree = strategy === 'tree';
  // tree: one workgroup per output; rows: one invocation per output.
  const { workgroups, rowStride } = tree ? grid1d(outputs, 1, max) : grid1d(outputs, ROWS_WORKGROUP, max);
  engine.launch({
    kernel: `reduce.${op}`,
    shader: 'reduce.wgsl',
    entry: strategy,
    constants: { OP: code, WG: tree ? TREE_WORKGROUP : ROWS_WORKGROUP },
    buffers: { x: { tensor: x }, out: { tensor: out } },
    uniforms: { ...uniforms, rowStride },
    workgroups,
  });
  return out;
}

/** Per-replica dot product Σ x·y over all elements → [batch, 1]; a batch-1 operand is shared. */
export function dot(
  engine: Engine,
  x: Tensor,
  y: Tensor,
  options: { scale?: number; sqrt?: boolean; out?: Tensor } = {},
): Tensor {
  if (!sameShape(x.shape, y.shape) && x.size !== y.size)
    throw new InputError('dot', `sizes differ: ${x} and ${y}`);
  const batch = broadcastBatch('dot', x, y);
  const out = outputTensor(engine, 'dot', [1], batch, options.out);
  engine.launch({
    kernel: 'dot',
    shader: 'reduce.wgsl',
    entry: 'dot',
    constants: { WG: TREE_WORKGROUP },
    buffers: { x: { tensor: x }, y: { tensor: y }, out: { tensor: out } },
    uniforms: {
      outer: 1,
      len: x.size,
      inner: 1,
      batch,
      xBatch: x.batch > 1 ? x.size : 0,
      yBatch: y.batch > 1 ? y.size : 0,
      alpha: options.scale ?? 1,
      finalSqrt: options.sqrt ? 1 : 0,
      rowStride: 0,
    },
    workgroups: [batch],
  });
  return out;
}

/** Per-replica Euclidean norm ‖x‖ → [batch, 1]. */
export function norm(engine: Engine, x: Tensor, options: { out?: Tensor } = {}): Tensor {
  return dot(engine, x, x, { sqrt: true, out: options.out });
}
