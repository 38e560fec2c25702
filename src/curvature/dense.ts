/**
 * The dense Hessian of every replica from n HVPs with unit vectors (small models: tests and theory
 * comparisons), and its eigenvalues in float64 (ml-matrix).
 */

import { InputError, positiveInteger } from '../errors.ts';
import { stridedCopy, unitVectors } from '../kernels/vectors.ts';
import type { Tensor } from '../tensor/engine.ts';
import { withFittingCopies } from './copies.ts';
import type { HessianOperator } from './operator.ts';
import { symmetricEigenvalues } from './tridiagonal.ts';

/**
 * Columns per batched HVP for a dense Hessian: about a third of n (at most 32), so three launches at
 * one taped point (forward and gradient once, for copies·R replicas) — on SwiftShader this beats one
 * launch of n copies, whose forward pass and gradient are repeated n times (n = 12: 60 → 47 ms).
 */
export function denseColumnsPerLaunch(n: number): number {
  return Math.max(1, Math.min(32, Math.ceil(n / 3)));
}

/** Above this many parameters a dense Hessian is refused (n² floats per replica). */
export const DENSE_HESSIAN_MAX_PARAMETERS = 4096;

/**
 * Writes every replica's dense Hessian into `out` without reading back: row i = (H e_i)ᵀ at
 * out[r·outBatch + outOffset + i·n …], `copies` unit-vector columns per HVP of `batched` (an
 * operator with that many copies, at its taped point).
 */
export function encodeDenseHessian(
  batched: HessianOperator,
  copies: number,
  out: Tensor,
  placement: { outBatch: number; outOffset?: number },
): void {
  const { engine, replicas, size: n } = batched;
  const outOffset = placement.outOffset ?? 0;
  for (let start = 0; start < n; start += copies) {
    const e = unitVectors(engine, n, batched.batch, copies, start);
    const he = batched.applyFlat(e);
    // Replica r's copies hold columns start … start + copies − 1 back to back: one copy moves them all.
    stridedCopy(engine, he, out, {
      length: Math.min(copies, n - start) * n,
      batch: replicas,
      xBatch: copies * n,
      outBatch: placement.outBatch,
      outOffset: outOffset + start * n,
    });
    e.dispose();
    he.dispose();
  }
}

/**
 * H per replica as n rows of n values (row i = (H e_i)ᵀ, flat parameter order), `perLaunch` columns
 * per batched HVP (default `denseColumnsPerLaunch(n)`); f32 values, so H is symmetric only up to
 * rounding.
 */
export async function denseHessian(
  operator: HessianOperator,
  options: { perLaunch?: number } = {},
): Promise<number[][][]> {
  if (operator.copies !== 1) throw new InputError('denseHessian', 'expects an operator without copies');
  const n = operator.size;
  if (n > DENSE_HESSIAN_MAX_PARAMETERS)
    throw new InputError(
      'denseHessian',
      `the model has ${n} parameters; a dense Hessian is for at most ${DENSE_HESSIAN_MAX_PARAMETERS} (use topEigenvalues or spectralDensity)`,
    );
  const perLaunch = options.perLaunch ?? denseColumnsPerLaunch(n);
  positiveInteger('perLaunch', perLaunch);
  const R = operator.replicas;
  const engine = operator.engine;
  return withFittingCopies(operator, Math.min(n, perLaunch), async (batched, copies) => {
    const dense = engine.empty([n, n], { batch: R });
    try {
      encodeDenseHessian(batched, copies, dense, { outBatch: n * n });
      const all = await dense.read();
      return Array.from({ length: R }, (_, r) =>
        Array.from({ length: n }, (_, i) => Array.from(all.subarray((r * n + i) * n, (r * n + i + 1) * n))),
      );
    } finally {
      dense.dispose();
    }
  });
}

/** Eigenvalues (ascending, float64) of each replica's dense Hessian, symmetrised first. */
export async function denseHessianEigenvalues(
  operator: HessianOperator,
  options: { perLaunch?: number } = {},
): Promise<number[][]> {
  return (await denseHessian(operator, options)).map(symmetricEigenvalues);
}
