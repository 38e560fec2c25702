/**
 * How many probe vectors per replica go through one batched HVP. Copies repeat the parameters and any
 * per-replica evaluation data, and multiply every launch's batch (a Transformer's attention runs
 * replicas × rows sequences), so the count is capped by a memory budget and, when a launch still
 * exceeds the adapter's limits, halved until it fits.
 */
import { InputError, KernelError } from '../errors.ts';
import type { HessianOperator } from './operator.ts';

/** Floats of repeated parameters and per-replica data allowed across all copies (128 MiB). */
export const COPY_BUDGET_FLOATS = 2 ** 25;

/**
 * Replica·row·parameter products of one batched HVP past which more copies stop paying. A batched
 * HVP tapes the forward pass and first backward at R·c, so c copies repeat that work c times; what
 * they save is launches (n/c rounds instead of n), which only matter while a launch's work is
 * small. MNIST's MLP at its quick settings (4 replicas × 256 rows × 101,770 parameters) thus runs
 * its 8 Hutchinson probes as 8 HVPs at R (one taped point) instead of one at 8R, 30 % less work;
 * the RNN and Transformer of the anisotropy sweep (≤ 10⁶ per copy) keep 16–32 copies.
 */
export const COPY_WORK_TARGET = 2 ** 24;

/** The most copies whose batched HVP stays within `target` replica·row·parameter products (at least 1). */
export function copiesForWork(operator: HessianOperator, wanted: number, target = COPY_WORK_TARGET): number {
  const work = operator.replicas * (operator.samples ?? 1) * operator.size;
  return Math.max(1, Math.min(wanted, Math.floor(target / work)));
}

/** The most copies whose repeated inputs fit `budget` floats (at least 1). */
export function copiesWithinBudget(
  operator: HessianOperator,
  wanted: number,
  budget = COPY_BUDGET_FLOATS,
): number {
  let perCopy = operator.size;
  for (const t of Object.values(operator.data)) if (t.batch > 1) perCopy += t.size;
  return Math.max(1, Math.min(wanted, Math.floor(budget / (operator.replicas * perCopy))));
}

/** True for errors that mean "this batch is too large for the adapter", which fewer copies fix. */
export function isBatchLimitError(error: unknown): boolean {
  if (error instanceof KernelError)
    return /maxComputeWorkgroupsPerDimension|maxStorageBufferBindingSize/.test(error.message);
  return error instanceof InputError && error.field === 'shape' && /maxBufferSize/.test(error.message);
}

/**
 * Runs `body` on an operator with `wanted` copies per replica (capped by the memory budget and the
 * work per launch), halving the count and starting over while a launch exceeds the adapter's limits. The copies operator is
 * disposed afterwards; `body` must not have effects outside the GPU work it starts.
 */
export async function withFittingCopies<T>(
  operator: HessianOperator,
  wanted: number,
  body: (batched: HessianOperator, copies: number) => Promise<T>,
): Promise<T> {
  let copies = Math.min(copiesWithinBudget(operator, wanted), copiesForWork(operator, wanted));
  for (;;) {
    const batched = operator.withCopies(copies);
    try {
      // One taped forward pass and gradient serve every H·v of the body.
      return await batched.atPoint(() => body(batched, copies));
    } catch (error) {
      if (copies === 1 || !isBatchLimitError(error)) throw error;
      copies = Math.ceil(copies / 2);
    } finally {
      batched.dispose();
    }
  }
}
