import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';
import { broadcastBatch, outputTensor, product } from './shapes.ts';

/** Codes match the constants in shaders/elementwise.wgsl. */
export const UNARY_OPS = {
  affine: 0,
  relu: 1,
  step: 2,
  tanh: 3,
  exp: 4,
  log: 5,
  sqrt: 6,
  square: 7,
  abs: 8,
  sign: 9,
  reciprocal: 10,
  fill: 11,
  sigmoid: 12,
} as const;

export const BINARY_OPS = {
  add: 0,
  mul: 1,
  div: 2,
  max: 3,
  min: 4,
  reluBackward: 5,
  tanhBackward: 6,
  greater: 7,
} as const;

export type UnaryOp = keyof typeof UNARY_OPS;
export type BinaryOp = keyof typeof BINARY_OPS;

export interface ElementwiseOptions {
  /** Unary affine: alpha·x + beta; fill: beta. Binary add: alpha·x + beta·y; mul/div: alpha·(x∘y). */
  alpha?: number;
  beta?: number;
  out?: Tensor;
}

const WORKGROUP = 256;

/**
 * How an operand of per-replica shape `shape` is read against the output shape `outShape`, as
 * numpy-style broadcasting restricted to one contiguous run of kept dimensions: index = (i / div) % mod.
 */
export function broadcastIndexing(
  field: string,
  shape: readonly number[],
  outShape: readonly number[],
): { div: number; mod: number } {
  const rank = outShape.length;
  if (shape.length > rank)
    throw new InputError(field, `shape [${shape}] has more dimensions than the result [${outShape}]`);
  const padded = [...Array(rank - shape.length).fill(1), ...shape];
  const kept: number[] = [];
  for (let d = 0; d < rank; d++) {
    if (padded[d] === outShape[d]) {
      if (padded[d] !== 1) kept.push(d);
    } else if (padded[d] !== 1) {
      throw new InputError(field, `shape [${shape}] does not broadcast to [${outShape}]`);
    }
  }
  if (kept.length === 0) return { div: 1, mod: 1 };
  const first = kept[0];
  const last = kept[kept.length - 1];
  for (let d = first; d <= last; d++) {
    if (padded[d] !== outShape[d])
      throw new InputError(
        field,
        `shape [${shape}] broadcasts in the middle of [${outShape}]; only a contiguous run of kept dimensions is supported`,
      );
  }
  return { div: product(outShape.slice(last + 1)), mod: product(outShape.slice(first, last + 1)) };
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const pa = [...Array(rank - a.length).fill(1), ...a];
  const pb = [...Array(rank - b.length).fill(1), ...b];
  return pa.map((d, i) => {
    if (d === pb[i] || pb[i] === 1) return d;
    if (d === 1) return pb[i];
    throw new InputError('elementwise', `shapes [${a}] and [${b}] do not broadcast`);
  });
}

type Entry = 'unary' | 'binary' | 'accumulate' | 'fill';

function launchElementwise(
  engine: Engine,
  entry: Entry,
  op: number,
  x: Tensor | undefined,
  y: Tensor | undefined,
  outShape: number[],
  options: ElementwiseOptions,
): Tensor {
  const operands = [x, y, options.out].filter((t): t is Tensor => t !== undefined);
  const batch = broadcastBatch(entry, ...operands);
  const out = outputTensor(engine, entry, outShape, batch, options.out);
  for (const [name, operand] of [
    ['x', x],
    ['y', y],
  ] as const) {
    if (operand && operand.buffer === out.buffer) {
      throw new InputError(`${entry}.out`, `aliases input ${name}; use accumulate() for in-place updates`);
    }
  }
  const n = product(outShape);
  const xi = x ? broadcastIndexing('x', x.shape, outShape) : { div: 1, mod: 1 };
  const yi = y ? broadcastIndexing('y', y.shape, outShape) : { div: 1, mod: 1 };
  const { workgroups, rowStride } = grid1d(
    n * batch,
    WORKGROUP,
    engine.limits.maxComputeWorkgroupsPerDimension,
  );
  const buffers: Parameters<Engine['launch']>[0]['buffers'] = { out: { tensor: out } };
  if (x) buffers.x = { tensor: x };
  if (y) buffers.y = { tensor: y };
  engine.launch({
    kernel: entry === 'unary' || entry === 'binary' ? `${entry}.${opName(entry, op)}` : entry,
    shader: 'elementwise.wgsl',
    entry,
    constants: {
      OP: op,
      WG: WORKGROUP,
      X_DIRECT: x !== undefined && x.batch === batch && xi.div === 1 && xi.mod === n ? 1 : 0,
      Y_DIRECT: y !== undefined && y.batch === batch && yi.div === 1 && yi.mod === n ? 1 : 0,
    },
    buffers,
    uniforms: {
      n,
      total: n * batch,
      rowStride,
      xBatch: x && x.batch > 1 ? x.size : 0,
      xDiv: xi.div,
      xMod: xi.mod,
      yBatch: y && y.batch > 1 ? y.size : 0,
      yDiv: yi.div,
      yMod: yi.mod,
      alpha: options.alpha ?? 1,
      beta: options.beta ?? 0,
    },
    workgroups,
  });
  return out;
}

function opName(entry: 'unary' | 'binary', code: number): string {
  const table: Record<string, number> = entry === 'unary' ? UNARY_OPS : BINARY_OPS;
  return Object.keys(table).find((name) => table[name] === code) ?? String(code);
}

/** out = op(x) elementwise, per replica. */
export function unary(engine: Engine, op: UnaryOp, x: Tensor, options: ElementwiseOptions = {}): Tensor {
  return launchElementwise(engine, 'unary', UNARY_OPS[op], x, undefined, [...x.shape], options);
}

/** out = op(x, y) elementwise with numpy-style broadcasting of shapes and of replica batches. */
export function binary(
  engine: Engine,
  op: BinaryOp,
  x: Tensor,
  y: Tensor,
  options: ElementwiseOptions = {},
): Tensor {
  return launchElementwise(engine, 'binary', BINARY_OPS[op], x, y, broadcastShape(x.shape, y.shape), options);
}

/** Copies x broadcast to `shape` (numpy rules) and to `batch` replicas. */
export function broadcastTo(engine: Engine, x: Tensor, shape: readonly number[], batch = x.batch): Tensor {
  const out = engine.empty(shape, { batch });
  return launchElementwise(engine, 'unary', UNARY_OPS.affine, x, undefined, [...shape], {
    out,
    alpha: 1,
    beta: 0,
  });
}

/** In place: out ← alpha·out + beta·y, with y broadcast to out (SGD steps, axpy). */
export function accumulate(engine: Engine, out: Tensor, y: Tensor, alpha: number, beta: number): Tensor {
  return launchElementwise(engine, 'accumulate', 0, undefined, y, [...out.shape], { out, alpha, beta });
}

/** In place: every element of `out` becomes `value`. */
export function fill(engine: Engine, out: Tensor, value: number): Tensor {
  return launchElementwise(engine, 'fill', 0, undefined, undefined, [...out.shape], { out, beta: value });
}
