import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

/** Batch of a result from operand batches: equal, or 1 broadcasting against the other. */
export function broadcastBatch(kernel: string, ...tensors: { readonly batch: number }[]): number {
  let batch = 1;
  for (const t of tensors) {
    if (t.batch === 1 || t.batch === batch) continue;
    if (batch !== 1)
      throw new InputError(
        kernel,
        `replica batches ${tensors.map((x) => x.batch).join(' and ')} do not broadcast (equal, or 1)`,
      );
    batch = t.batch;
  }
  return batch;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function product(shape: readonly number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

const placeholders = new WeakMap<Engine, Tensor>();

/** A tiny buffer to bind where a kernel's optional input is absent. */
export function placeholder(engine: Engine): Tensor {
  let t = placeholders.get(engine);
  if (!t || t.isDisposed) {
    t = engine.tensor([0, 0, 0, 0], [4], { label: 'placeholder' });
    placeholders.set(engine, t);
  }
  return t;
}

/** Output tensor: the given one after checking its shape, or a fresh one. */
export function outputTensor(
  engine: Engine,
  kernel: string,
  shape: readonly number[],
  batch: number,
  out?: Tensor,
): Tensor {
  if (!out) return engine.empty(shape, { batch });
  if (!sameShape(out.shape, shape) || out.batch !== batch) {
    throw new InputError(`${kernel}.out`, `expected batch ${batch} of [${shape.join(', ')}], got ${out}`);
  }
  return out;
}

export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}
