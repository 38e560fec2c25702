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
 * small, and past a few thousand rows per launch the working set leaves the CPU's caches and every
 * kernel slows. Measured on SwiftShader (log points of the quick presets' models, 8 replicas, 200
 * rows, bench/log-point.ts): the RNN's exact trace (n = 92) took 5.0–6.3 s with 32 copies and
 * 1.5–1.8 s with 7; the Transformer's 8 Hutchinson probes (n = 508) 7.5–9.4 s with 8 copies and
 * 1.7–3.0 s with 1; MNIST's MLP (4 × 256 × 101,770) runs its 8 probes as 8 HVPs at R.
 */
export const COPY_WORK_TARGET = 2 ** 20;

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

/** The largest divisor of n that is at most limit (at least 1). */
export function largestDivisorAtMost(n: number, limit: number): number {
  for (let d = Math.min(n, limit); d > 1; d--) if (n % d === 0) return d;
  return 1;
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
 * disposed afterwards (one copy runs on `operator` itself, within its taped point when inside `atPoint`); `body` must not have effects outside the GPU work it starts.
 */
export async function withFittingCopies<T>(
  operator: HessianOperator,
  wanted: number,
  body: (batched: HessianOperator, copies: number) => Promise<T>,
  options: { divisorOfWanted?: boolean } = {},
): Promise<T> {
  // With divisorOfWanted the count divides `wanted`: launches never straddle two blocks of
  // `wanted` probes (Hutchinson draws its probes in such blocks, whatever the launch size).
  const fit = (c: number) => (options.divisorOfWanted ? largestDivisorAtMost(wanted, c) : c);
  let copies = fit(Math.min(copiesWithinBudget(operator, wanted), copiesForWork(operator, wanted)));
  for (;;) {
    // One copy is the operator itself: inside its own atPoint the body shares that taped point.
    const batched = copies === 1 ? operator : operator.withCopies(copies);
    try {
      // One taped forward pass and gradient serve every H·v of the body.
      return await batched.atPoint(() => body(batched, copies));
    } catch (error) {
      if (copies === 1 || !isBatchLimitError(error)) throw error;
      copies = fit(Math.ceil(copies / 2));
    } finally {
      if (batched !== operator) batched.dispose();
    }
  }
}
