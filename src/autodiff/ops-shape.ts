/**
 * Reductions, views and broadcasting, with their gradient rules: a sum's VJP broadcasts back
 * (`expand`), a broadcast's VJP sums back (`sumTo`, `reduceToBatch`), a view's VJP is the inverse view.
 */
import { InputError } from '../errors.ts';
import { broadcastTo } from '../kernels/elementwise.ts';
import { dot, reduce, reducedShape } from '../kernels/reduce.ts';
import { product, sameShape } from '../kernels/shapes.ts';
import type { Tape } from './tape.ts';
import { Var } from './value.ts';

/** Sum over one axis of the per-replica shape, or over everything (→ [1]); deferred while the tape defers. */
export function sum(t: Tape, x: Var, axis?: number): Var {
  const result = () => ({ shape: reducedShape(x.shape, axis), batch: x.batch });
  const compute = () => reduce(t.engine, 'sum', x.value, { axis });
  return t.deferrable(result, compute, [x], (g) => [expand(t, g, x, axis)]);
}

/** Mean over one axis of the per-replica shape, or over everything (→ [1]). */
export function mean(t: Tape, x: Var, axis?: number): Var {
  const len = axis === undefined ? product(x.shape) : x.shape[axis < 0 ? x.shape.length + axis : axis];
  return t.scale(t.sum(x, axis), 1 / len);
}

/** Per-replica ⟨x, y⟩ over all elements → [1]. */
export function dotOp(t: Tape, x: Var, y: Var): Var {
  const value = dot(t.engine, x.value, y.value);
  return t.node(value, [x, y], (g) => [
    t.needsGrad(x) ? sumTo(t, t.mul(y, g), x) : undefined,
    t.needsGrad(y) ? sumTo(t, t.mul(x, g), y) : undefined,
  ]);
}

/** Broadcasts g (the reduced value) back to x's shape: the VJP of a sum. */
function expand(t: Tape, g: Var, x: Var, axis: number | undefined): Var {
  let source = g;
  if (axis !== undefined) {
    const a = axis < 0 ? x.shape.length + axis : axis;
    // Reinsert the reduced axis as size 1 so numpy broadcasting lines the dimensions up.
    const withAxis = [...x.shape.slice(0, a), 1, ...x.shape.slice(a + 1)];
    source = t.reshape(g, withAxis);
  }
  const value = broadcastTo(t.engine, source.value, x.shape, x.batch);
  return t.node(value, [source], (h) => [sumTo(t, h, source)]);
}

/** Same memory, another per-replica shape. */
export function reshape(t: Tape, x: Var, shape: readonly number[]): Var {
  const view = () => t.engine.view(x.value, shape, x.batch);
  return new Var(
    x.pending ? { shape: [...shape], batch: x.batch, compute: view } : view(),
    [x],
    x.requiresGrad ? (g) => [t.reshape(g, x.shape)] : undefined,
    x.requiresGrad,
  );
}

/** Same memory with another replica count and shape. */
export function rebatch(t: Tape, x: Var, shape: readonly number[], batch: number): Var {
  const view = () => t.engine.view(x.value, shape, batch);
  return new Var(
    x.pending ? { shape: [...shape], batch, compute: view } : view(),
    [x],
    x.requiresGrad ? (g) => [t.rebatch(g, x.shape, x.batch)] : undefined,
    x.requiresGrad,
  );
}

/** Sums a broadcast gradient back to the shape and replica count of `target`. */
export function sumTo(t: Tape, g: Var, target: Var): Var {
  let result = reduceToBatch(t, g, target);
  if (sameShape(result.shape, target.shape)) return result;
  const size = product(target.shape);
  if (size === 1) return t.reshape(t.sum(result), target.shape);
  const trailing = result.shape.slice(result.shape.length - target.shape.length);
  const stripped = target.shape.slice(target.shape.findIndex((d) => d !== 1));
  const resultTrailing = result.shape.slice(result.shape.length - stripped.length);
  if (sameShape(resultTrailing, stripped)) {
    // Leading dimensions were broadcast: fold them into one axis and sum it.
    const rows = product(result.shape) / size;
    result = t.sum(t.reshape(result, [rows, size]), 0);
    return t.reshape(result, target.shape);
  }
  if (
    target.shape.length === result.shape.length &&
    target.shape[target.shape.length - 1] === 1 &&
    sameShape(target.shape.slice(0, -1), trailing.slice(0, -1))
  ) {
    // A column vector broadcast across the last axis.
    return t.reshape(t.sum(result, -1), target.shape);
  }
  throw new InputError('autodiff', `cannot sum a gradient of shape [${g.shape}] back to [${target.shape}]`);
}

/** Sums over replicas when the operand was shared (batch 1) by a batched result. */
export function reduceToBatch(t: Tape, g: Var, target: Var): Var {
  if (g.batch === target.batch) return g;
  if (target.batch !== 1)
    throw new InputError(
      'autodiff',
      `gradient batch ${g.batch} does not match operand batch ${target.batch}`,
    );
  return t.reshape(t.sum(t.rebatch(g, [g.batch, product(g.shape)], 1), 0), target.shape);
}
