/**
 * Gradient fluctuation on the evaluation set, exactly, for every replica: S = mean over samples i of
 * ‖∇_θ ℓ_i‖² (per-sample loss ℓ_i, e.g. ½‖f(x_i) − y_i‖²), and the minibatch form E‖ḡ_B‖².
 *
 * Per-sample gradients treat samples as extra replicas: the parameters are materialised once per
 * sample (replica r·s + i holds replica r's parameters and sample i alone), the loss closure runs on
 * one row per replica, and one backward pass gives all R·s per-sample gradients as a batch. (Sharing
 * batch-1 parameters would not do: the gradient of a broadcast operand sums over replicas.) Samples go
 * in chunks of s so memory stays bounded; nothing is read back until the end.
 */
import { Tape } from '../autodiff/tape.ts';
import { InputError, positiveInteger } from '../errors.ts';
import { groupSum, replicaDots } from '../kernels/curvature-sums.ts';
import { unary } from '../kernels/elementwise.ts';
import { repeatReplicas, stridedCopy } from '../kernels/vectors.ts';
import { meanAndStandardError } from '../statistics.ts';
import type { Tensor } from '../tensor/engine.ts';
import type { HessianOperator } from './operator.ts';

export interface FluctuationOptions {
  /** Samples per batched backward pass (default: up to 2^22 parameter copies, at most 65535/R). */
  samplesPerLaunch?: number;
  /**
   * One tensor per parameter (its shape, batch R) that receives the per-parameter second moment of
   * the per-sample gradients, (1/n) Σ_i (∂ℓ_i/∂θ)² elementwise; the same backward passes.
   */
  secondMoments?: readonly Tensor[];
}

export interface FluctuationResult {
  /** Per replica: S = (1/n) Σ_i ‖∇ℓ_i‖² (per sample, not divided by a batch size). */
  fluctuation: number[];
  /** Per replica: sample standard deviation of ‖∇ℓ_i‖² over √n (the sampling error of S). */
  standardError: number[];
  /** Per replica: ‖ḡ‖² of the mean gradient ḡ = (1/n) Σ_i ∇ℓ_i (the full-batch gradient). */
  meanGradientSquared: number[];
  /** n: samples in the evaluation set. */
  samples: number;
  /** Per replica: ‖∇ℓ_i‖² for every sample. */
  values: number[][];
  /** Batched backward passes made. */
  launches: number;
}

/**
 * E‖ḡ_B‖² for a minibatch of B samples drawn from the evaluation set: ‖ḡ‖² + (S − ‖ḡ‖²)/B with
 * replacement, times (n − B)/(n − 1) on the second term without. At a global minimum of the population
 * loss ḡ → 0 and this is S/B.
 */
export function minibatchGradientSquared(
  result: FluctuationResult,
  batchSize: number,
  options: { replacement?: boolean } = {},
): number[] {
  const n = result.samples;
  const replacement = options.replacement ?? true;
  if (!Number.isInteger(batchSize) || batchSize < 1 || (!replacement && batchSize > n))
    throw new InputError(
      'batchSize',
      `must be an integer in [1, ${replacement ? '∞' : n}), got ${batchSize}`,
    );
  const finite = replacement ? 1 : n === 1 ? 0 : (n - batchSize) / (n - 1);
  return result.fluctuation.map((s, r) => {
    const g2 = result.meanGradientSquared[r];
    return g2 + ((s - g2) / batchSize) * finite;
  });
}

/** One row per replica-sample for rows [start, start + count) of a data tensor (batch 1 or R). */
function sampleRows(data: Tensor, start: number, count: number, replicas: number, n: number): Tensor {
  const engine = data.engine;
  const rowShape = [1, ...data.shape.slice(1)];
  const rowSize = data.size / n;
  if (data.batch > 1 && count === n) return engine.view(data, rowShape, replicas * n);
  const out = engine.empty(rowShape, { batch: replicas * count });
  if (data.batch === 1) {
    // Replica-sample b = r·count + i reads row start + (b mod count).
    stridedCopy(engine, data, out, {
      length: rowSize,
      batch: replicas * count,
      xBatch: rowSize,
      xOffset: start * rowSize,
      xMod: count,
    });
  } else {
    for (let r = 0; r < replicas; r++) {
      stridedCopy(engine, data, out, {
        length: rowSize,
        batch: count,
        xBatch: rowSize,
        xOffset: (r * n + start) * rowSize,
        outBatch: rowSize,
        outOffset: r * count * rowSize,
      });
    }
  }
  return out;
}

/** Checks an operator for per-sample work and returns its sample count n. */
function fluctuationSamples(operator: HessianOperator): number {
  if (operator.copies !== 1)
    throw new InputError('gradientFluctuation', 'expects an operator without copies');
  const n = operator.samples;
  if (n === undefined)
    throw new InputError('evaluation', 'gradient fluctuation needs evaluation data with rows');
  for (const [name, t] of Object.entries(operator.data)) {
    if (t.shape[0] !== n)
      throw new InputError(`evaluation.data.${name}`, `has ${t.shape[0]} rows; the other data have ${n}`);
  }
  return n;
}

/** Samples per batched backward pass: up to 2^22 parameter copies, at most 65535/R. */
function samplesPerLaunch(operator: HessianOperator, n: number, options: FluctuationOptions): number {
  const R = operator.replicas;
  const maxPerLaunch = Math.max(
    1,
    Math.min(n, Math.floor(2 ** 22 / (R * operator.size)), Math.floor(65535 / R)),
  );
  const perLaunch = options.samplesPerLaunch ?? maxPerLaunch;
  positiveInteger('samplesPerLaunch', perLaunch);
  return perLaunch;
}

/**
 * Encodes the per-sample squared gradient norms ‖∇ℓ_i‖² of every replica r into
 * out[r·outBatch + offset + i] (i < n) and ‖ḡ‖² into out[r·outBatch + offset + n], reading nothing
 * back. ḡ (the gradient of the mean loss) is the sum of the per-sample gradients over n when they
 * come in one launch (small models: no second pass over the evaluation set), else one gradient pass of
 * the mean loss (summing large per-sample gradients chunk by chunk would cost more). Returns the
 * per-sample backward passes made.
 */
export function encodeFluctuation(
  operator: HessianOperator,
  out: Tensor,
  placement: { outBatch: number; offset: number },
  options: FluctuationOptions = {},
): number {
  const n = fluctuationSamples(operator);
  const perLaunch = samplesPerLaunch(operator, n, options);
  const R = operator.replicas;
  const engine = operator.engine;
  const { outBatch, offset } = placement;
  // Σ_i ∇ℓ_i per parameter tensor and replica, when all samples go in one launch.
  const sums = perLaunch >= n ? operator.params.map((p) => engine.empty(p.shape, { batch: R })) : [];
  let launches = 0;
  try {
    for (let start = 0; start < n; start += perLaunch) {
      const count = Math.min(perLaunch, n - start);
      const params = operator.params.map((p) => repeatReplicas(engine, p, count));
      const data: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(operator.data)) data[name] = sampleRows(t, start, count, R, n);
      const tape = new Tape(engine);
      try {
        const vars = params.map((p) => tape.param(p));
        const constants = Object.fromEntries(Object.entries(data).map(([k, t]) => [k, tape.constant(t)]));
        const loss = operator.loss(tape, vars, constants);
        if (loss.batch !== R * count || loss.value.size !== 1)
          throw new InputError('loss', `the closure must return one value per replica, got ${loss.value}`);
        const grads = tape.grad(loss, vars);
        grads.forEach((g, i) => {
          // Replica-sample b = r·count + j writes sample start + j of replica r.
          const length = operator.layout.sizes[i];
          replicaDots(engine, g.value, g.value, out, {
            length,
            batch: R * count,
            outGroup: count,
            outBatch,
            outOffset: offset + start,
            beta: i === 0 ? 0 : 1,
          });
          if (sums.length > 0) groupSum(engine, g.value, sums[i], { length, groups: count, replicas: R });
          const moment = options.secondMoments?.[i];
          if (moment) {
            const squares = unary(engine, 'square', g.value);
            const spec = { length, groups: count, replicas: R, alpha: 1 / n, beta: start === 0 ? 0 : 1 };
            groupSum(engine, squares, moment, spec);
            squares.dispose(); // launches already encoded still read it
          }
        });
        launches++;
      } finally {
        tape.dispose();
        for (const t of [...params, ...Object.values(data)]) t.dispose();
      }
    }
    // ‖ḡ‖² = ‖Σ_i ∇ℓ_i‖² / n², or from the gradient of the mean loss.
    const squareInto = (gradients: readonly Tensor[], alpha: number) => {
      gradients.forEach((g, i) => {
        replicaDots(engine, g, g, out, {
          length: operator.layout.sizes[i],
          batch: R,
          outBatch,
          outOffset: offset + n,
          alpha,
          beta: i === 0 ? 0 : 1,
        });
      });
    };
    if (sums.length > 0) squareInto(sums, 1 / (n * n));
    else {
      const tape = new Tape(engine);
      try {
        const { params, loss } = operator.build(tape);
        squareInto(
          tape.grad(loss, params).map((g) => g.value),
          1,
        );
      } finally {
        tape.dispose();
      }
    }
  } finally {
    for (const t of sums) t.dispose();
  }
  return launches;
}

/** Sample mean of per-sample values and its standard error (NaN for one sample; see `meanAndStandardError`). */
export function fluctuationStatistics(values: readonly number[]): {
  fluctuation: number;
  standardError: number;
} {
  const { mean, standardError } = meanAndStandardError(values);
  return { fluctuation: mean, standardError };
}

/** Per-sample gradient fluctuation of an operator's loss, parameters and evaluation set (no copies); one readback. */
export async function gradientFluctuation(
  operator: HessianOperator,
  options: FluctuationOptions = {},
): Promise<FluctuationResult> {
  const n = fluctuationSamples(operator);
  const R = operator.replicas;
  // Per replica: the n per-sample squares, then ‖ḡ‖².
  const results = operator.engine.empty([n + 1], { batch: R });
  try {
    const launches = encodeFluctuation(operator, results, { outBatch: n + 1, offset: 0 }, options);
    const all = await results.read();
    const perReplica = Array.from({ length: R }, (_, r) =>
      Array.from(all.subarray(r * (n + 1), r * (n + 1) + n)),
    );
    const stats = perReplica.map(fluctuationStatistics);
    return {
      fluctuation: stats.map((s) => s.fluctuation),
      standardError: stats.map((s) => s.standardError),
      meanGradientSquared: Array.from({ length: R }, (_, r) => all[r * (n + 1) + n]),
      samples: n,
      values: perReplica,
      launches,
    };
  } finally {
    results.dispose();
  }
}
