/**
 * One measurement round of an experiment's log point for every replica: sharpness Tr H, λ_max and the
 * gradient fluctuation S, picking the cheapest exact method by model size — the dense Hessian (n HVPs
 * in one batched launch, float64 eigenvalues) for small models, the exact diagonal for medium ones and
 * Hutchinson's estimate beyond; Lanczos for λ_max when there is no dense Hessian. For dense models
 * everything, fluctuation included, is encoded into one result tensor and read back once.
 */

import { InputError, positiveInteger } from '../errors.ts';
import { withFittingCopies } from './copies.ts';
import { denseColumnsPerLaunch, encodeDenseHessian } from './dense.ts';
import { encodeFluctuation, fluctuationStatistics, gradientFluctuation } from './fluctuation.ts';
import { topEigenvalues } from './lanczos.ts';
import type { HessianOperator } from './operator.ts';
import { exactTrace, hessianTrace } from './trace.ts';
import { symmetricEigenvalues } from './tridiagonal.ts';

/** Up to this many parameters the dense Hessian gives trace and λ_max exactly. */
export const MEASURE_DENSE_MAX_PARAMETERS = 64;
/** Up to this many parameters the trace is exact (n unit-vector HVPs); beyond, Hutchinson's estimate. */
export const MEASURE_EXACT_TRACE_MAX_PARAMETERS = 256;
/** Hutchinson probes per replica beyond the exact-trace limit, unless the request says. */
export const MEASURE_DEFAULT_PROBES = 16;
/** Lanczos steps for λ_max without a dense Hessian (capped at n), unless the request says. */
export const MEASURE_DEFAULT_LANCZOS_STEPS = 30;

export interface CurvatureRequest {
  /** Tr H (the sharpness). */
  trace?: boolean;
  /** The largest eigenvalue of H. */
  lambdaMax?: boolean;
  /** S = mean over the evaluation samples of ‖∇ℓ_i‖². */
  fluctuation?: boolean;
  /** The k largest eigenvalues (k ≥ 1; includes λ_max). */
  top?: number;
  /** ‖∇L‖ of the loss on the evaluation set. */
  gradientNorm?: boolean;
  /** n ≤ this: dense Hessian (default MEASURE_DENSE_MAX_PARAMETERS). */
  denseMaxParameters?: number;
  /** n ≤ this (and above the dense limit): exact trace from unit vectors (default MEASURE_EXACT_TRACE_MAX_PARAMETERS). */
  exactTraceMaxParameters?: number;
  /** Hutchinson probes per replica beyond the exact limit (default MEASURE_DEFAULT_PROBES). */
  probes?: number;
  /** Lanczos steps for λ_max without a dense Hessian (default MEASURE_DEFAULT_LANCZOS_STEPS, capped at n). */
  lanczosSteps?: number;
  /** Seed of the Hutchinson probes and the Lanczos start vector (e.g. the step). */
  seed?: number;
  /** Global index of the operator's first replica (a shard of a larger run): keys the probe streams. */
  replicaOffset?: number;
}

export interface CurvatureMeasurement {
  /** Per replica, each present when requested. */
  trace?: number[];
  lambdaMax?: number[];
  fluctuation?: number[];
  /** Per replica: the `top` largest eigenvalues, descending. */
  top?: number[][];
  gradientNorm?: number[];
  /** How each quantity was obtained. */
  methods: { trace?: 'dense' | 'exact' | 'hutchinson'; lambdaMax?: 'dense' | 'lanczos' };
  /** Per replica: the dense Hessian's eigenvalues (ascending), when it was used. */
  eigenvalues?: number[][];
  /**
   * Per replica, the estimates' own standard errors where they have one: Hutchinson's trace (over its
   * probes) and S (over the evaluation samples).
   */
  standardError?: { trace?: number[]; fluctuation?: number[] };
}

/**
 * A request's limits, budgets and seeds with the defaults filled in, each checked against a model of
 * `parameters` parameters (a request for more top eigenvalues than the Hessian has is refused before
 * any GPU work).
 */
export function requestSettings(request: CurvatureRequest, parameters: number) {
  const top = request.top ?? 0;
  if (!Number.isInteger(top) || top < 0 || top > parameters)
    throw new InputError('top', `must be an integer in [0, ${parameters}] (the parameter count), got ${top}`);
  return {
    denseMax: positiveInteger(
      'denseMaxParameters',
      request.denseMaxParameters ?? MEASURE_DENSE_MAX_PARAMETERS,
    ),
    exactMax: positiveInteger(
      'exactTraceMaxParameters',
      request.exactTraceMaxParameters ?? MEASURE_EXACT_TRACE_MAX_PARAMETERS,
    ),
    probes: positiveInteger('probes', request.probes ?? MEASURE_DEFAULT_PROBES),
    lanczosSteps: positiveInteger('lanczosSteps', request.lanczosSteps ?? MEASURE_DEFAULT_LANCZOS_STEPS),
    seed: request.seed ?? 0,
    replicaOffset: request.replicaOffset ?? 0,
    top,
  };
}

/** Measures the requested quantities for every replica of an operator without copies. */
export async function measureCurvature(
  operator: HessianOperator,
  request: CurvatureRequest,
): Promise<CurvatureMeasurement> {
  if (operator.copies !== 1) throw new InputError('measureCurvature', 'expects an operator without copies');
  const n = operator.size;
  const { denseMax, exactMax, probes, lanczosSteps, seed, replicaOffset, top } = requestSettings(request, n);
  const curvature = Boolean(request.trace || request.lambdaMax || top > 0);
  if (curvature && n <= denseMax) return denseRound(operator, request);
  const result: CurvatureMeasurement = { methods: {} };
  if (request.trace) {
    if (n <= exactMax) {
      result.trace = (await exactTrace(operator)).trace;
      result.methods.trace = 'exact';
    } else {
      const hutchinson = await hessianTrace(operator, { probes, seed, replicaOffset });
      result.trace = hutchinson.estimate;
      result.methods.trace = 'hutchinson';
      result.standardError = { trace: hutchinson.standardError };
    }
  }
  if (request.lambdaMax || top > 0) {
    const steps = Math.min(n, lanczosSteps);
    const eigen = await topEigenvalues(operator, Math.min(n, Math.max(1, top)), {
      maxSteps: steps,
      seed,
      replicaOffset,
    });
    if (request.lambdaMax) result.lambdaMax = eigen.values.map((v) => v[0]);
    if (top > 0) result.top = eigen.values.map((v) => v.slice(0, top));
    result.methods.lambdaMax = 'lanczos';
  }
  if (request.fluctuation || request.gradientNorm) {
    const fluctuation = await gradientFluctuation(operator);
    if (request.fluctuation) {
      result.fluctuation = fluctuation.fluctuation;
      result.standardError = { ...result.standardError, fluctuation: fluctuation.standardError };
    }
    if (request.gradientNorm) result.gradientNorm = fluctuation.meanGradientSquared.map(Math.sqrt);
  }
  return result;
}

/**
 * Small models: the n HVP columns of the dense Hessian (a third of them per batched pass, all at one
 * taped point) and the per-sample squared gradients go into one tensor, read back once.
 */
async function denseRound(
  operator: HessianOperator,
  request: CurvatureRequest,
): Promise<CurvatureMeasurement> {
  const engine = operator.engine;
  const n = operator.size;
  const R = operator.replicas;
  const gradients = Boolean(request.fluctuation || request.gradientNorm);
  const samples = gradients ? (operator.samples ?? 0) : 0;
  // Per replica: H (n·n, row i = (H e_i)ᵀ), then ‖∇ℓ_i‖² for every sample and ‖ḡ‖².
  const width = n * n + (gradients ? samples + 1 : 0);
  const results = engine.empty([width], { batch: R });
  try {
    const all = await withFittingCopies(operator, denseColumnsPerLaunch(n), async (batched, copies) => {
      encodeDenseHessian(batched, copies, results, { outBatch: width });
      if (gradients) encodeFluctuation(operator, results, { outBatch: width, offset: n * n });
      return results.read();
    });
    const result: CurvatureMeasurement = { methods: {} };
    const eigenvalues = Array.from({ length: R }, (_, r) =>
      symmetricEigenvalues(
        Array.from({ length: n }, (_, i) => all.subarray(r * width + i * n, r * width + (i + 1) * n)),
      ),
    );
    result.eigenvalues = eigenvalues;
    if (request.trace) {
      result.trace = eigenvalues.map((values) => values.reduce((a, b) => a + b, 0));
      result.methods.trace = 'dense';
    }
    if (request.lambdaMax) {
      result.lambdaMax = eigenvalues.map((values) => values[values.length - 1]);
      result.methods.lambdaMax = 'dense';
    }
    if (request.top) {
      const k = request.top;
      result.top = eigenvalues.map((values) => values.slice(-k).reverse());
    }
    if (request.gradientNorm)
      result.gradientNorm = Array.from({ length: R }, (_, r) => Math.sqrt(all[r * width + n * n + samples]));
    if (request.fluctuation) {
      const stats = Array.from({ length: R }, (_, r) =>
        fluctuationStatistics(Array.from(all.subarray(r * width + n * n, r * width + n * n + samples))),
      );
      result.fluctuation = stats.map((s) => s.fluctuation);
      result.standardError = { fluctuation: stats.map((s) => s.standardError) };
    }
    return result;
  } finally {
    results.dispose();
  }
}
