/**
 * Hessian traces for every replica: Hutchinson's estimator Tr H ≈ mean_p z_pᵀ H z_p with Rademacher
 * probes drawn on the GPU (estimate and standard error, by probe budget or target relative error), and
 * the exact trace and diagonal from HVPs with basis vectors (n HVPs; for small models).
 */

import { InputError, positiveInteger } from '../errors.ts';
import { replicaDots } from '../kernels/curvature-sums.ts';
import { randomRademacher } from '../kernels/rng.ts';
import { stridedCopy, unitVectors } from '../kernels/vectors.ts';
import { meanAndStandardError } from '../statistics.ts';
import type { Tensor } from '../tensor/engine.ts';
import { withFittingCopies } from './copies.ts';
import type { HessianOperator } from './operator.ts';
import { randomVectors, STREAM_HUTCHINSON } from './probes.ts';

export interface TraceOptions {
  /** Probe budget per replica (default 100 without a target). */
  probes?: number;
  /** Stop once SE ≤ target · |estimate| for every replica (checked after each launch of probes). */
  targetRelativeError?: number;
  /** With a target: fewest and most probes per replica (defaults 16 and 4096). */
  minProbes?: number;
  maxProbes?: number;
  /**
   * Probes per replica drawn together (default min(probes, 32)), and the most that go through one
   * batched HVP: fewer (a divisor) when the repeated inputs would exceed 128 MiB, a launch the
   * adapter's limits or the work per launch that pays (see COPY_WORK_TARGET). The probes drawn
   * depend on it, not on how many share a launch.
   */
  probesPerLaunch?: number;
  seed?: number;
  /** Global index of the operator's first replica (a shard of a larger run): keys the probe streams. */
  replicaOffset?: number;
}

export interface TraceResult {
  /** Per replica: mean of z_pᵀ H z_p over its probes (an unbiased estimate of Tr H). */
  estimate: number[];
  /** Sample standard deviation of z_pᵀ H z_p over √probes (NaN with one probe; see `meanAndStandardError`). */
  standardError: number[];
  /** Probes used per replica. */
  probes: number[];
  /** HVP launches (each covers probesPerLaunch probes of every replica). */
  hvps: number;
  /** Per replica, every probe's z_pᵀ H z_p. */
  samples: number[][];
}

/**
 * Hutchinson's trace estimate per replica of an operator without copies: Rademacher probes z (±1
 * entries, E zzᵀ = I) from (seed, replica, launch), probesPerLaunch of them per batched HVP.
 */
export async function hessianTrace(
  operator: HessianOperator,
  options: TraceOptions = {},
): Promise<TraceResult> {
  if (operator.copies !== 1) throw new InputError('hessianTrace', 'expects an operator without copies');
  const target = options.targetRelativeError;
  if (target !== undefined && !(target > 0))
    throw new InputError('targetRelativeError', `must be positive, got ${target}`);
  if (target !== undefined && options.probes !== undefined)
    throw new InputError('probes', 'give a probe budget or a target relative error, not both');
  const minProbes = target === undefined ? 0 : positiveInteger('minProbes', options.minProbes ?? 16);
  const budget =
    target === undefined
      ? positiveInteger('probes', options.probes ?? 100)
      : positiveInteger('maxProbes', options.maxProbes ?? 4096);
  if (minProbes > budget) throw new InputError('minProbes', `${minProbes} exceeds maxProbes ${budget}`);
  const wanted = Math.min(budget, positiveInteger('probesPerLaunch', options.probesPerLaunch ?? 32));
  const R = operator.replicas;
  const engine = operator.engine;
  const n = operator.size;
  const position = (counter: number) => ({
    seed: options.seed ?? 0,
    stream: STREAM_HUTCHINSON,
    counter,
    replicaOffset: options.replicaOffset,
  });
  const drawn = await withFittingCopies(
    operator,
    wanted,
    async (batched, perLaunch) => {
      const rounds = Math.ceil(budget / perLaunch);
      const capacity = rounds * perLaunch;
      const values = engine.empty([capacity], { batch: R });
      // Probes come in blocks of `wanted` per replica (block k from counter k); a launch of fewer
      // copies takes its slice of the current block.
      const block = perLaunch < wanted ? engine.empty([wanted * n], { batch: R }) : undefined;
      const samples: number[][] = Array.from({ length: R }, () => []);
      const done = new Array<boolean>(R).fill(false);
      let hvps = 0;
      try {
        for (let round = 0; round < rounds; round++) {
          let z: Tensor;
          if (!block) z = randomVectors(batched, 'rademacher', position(round));
          else {
            const first = (round * perLaunch) % wanted;
            if (first === 0) {
              const view = engine.view(block, [wanted, n], R);
              randomRademacher(engine, view.shape, position((round * perLaunch) / wanted), { out: view });
            }
            z = engine.empty([n], { batch: R * perLaunch });
            stridedCopy(engine, block, z, {
              length: perLaunch * n,
              batch: R,
              xBatch: wanted * n,
              xOffset: first * n,
              outBatch: perLaunch * n,
            });
          }
          const hz = batched.applyFlat(z);
          hvps++;
          // z_pᵀ H z_p of replica-probe b = r·perLaunch + j lands at values[r, round·perLaunch + j].
          replicaDots(engine, z, hz, values, {
            length: batched.size,
            batch: R * perLaunch,
            outGroup: perLaunch,
            outBatch: capacity,
            outOffset: round * perLaunch,
          });
          for (const t of [z, hz]) t.dispose();
          const used = (round + 1) * perLaunch;
          const last = round === rounds - 1 || used >= budget;
          if (target === undefined && !last) continue;
          const all = await values.read();
          for (let r = 0; r < R; r++) {
            if (done[r]) continue;
            samples[r] = Array.from(all.subarray(r * capacity, r * capacity + Math.min(used, budget)));
            if (target === undefined) continue;
            const { mean, standardError } = meanAndStandardError(samples[r]);
            if (samples[r].length >= minProbes && standardError <= target * Math.abs(mean)) done[r] = true;
          }
          if (last || done.every(Boolean)) break;
        }
      } finally {
        values.dispose();
        block?.dispose();
      }
      return { samples, hvps };
    },
    { divisorOfWanted: true },
  );
  const { samples, hvps } = drawn;
  const stats = samples.map(meanAndStandardError);
  return {
    estimate: stats.map((s) => s.mean),
    standardError: stats.map((s) => s.standardError),
    probes: samples.map((s) => s.length),
    hvps,
    samples,
  };
}

export interface ExactTraceResult {
  /** Per replica: Tr H = Σ_i e_iᵀ H e_i. */
  trace: number[];
  /** Per replica: the diagonal H_ii in flat parameter order. */
  diagonal: number[][];
  hvps: number;
}

/**
 * Exact trace and diagonal per replica from n HVPs with unit vectors, `perLaunch` per batched HVP.
 * A unit vector lies in one parameter, and only that parameter's part of H e_i holds H_ii: each
 * parameter's vectors go through `applyBlock`, whose pass skips what leads only to the others (an
 * output layer's block costs a few launches instead of a full H·v).
 */
export async function exactTrace(
  operator: HessianOperator,
  options: { perLaunch?: number } = {},
): Promise<ExactTraceResult> {
  if (operator.copies !== 1) throw new InputError('exactTrace', 'expects an operator without copies');
  const n = operator.size;
  const wanted = Math.min(n, positiveInteger('perLaunch', options.perLaunch ?? 32));
  const R = operator.replicas;
  const engine = operator.engine;
  const { sizes } = operator.layout;
  const fused = operator.fusedDiagonal();
  if (fused) {
    // A small RNN: the whole diagonal from one fused launch (src/kernels/fused-hvp.ts).
    try {
      const all = await fused.read();
      const diagonals = Array.from({ length: R }, (_, r) => Array.from(all.subarray(r * n, (r + 1) * n)));
      return { trace: diagonals.map((d) => d.reduce((a, b) => a + b, 0)), diagonal: diagonals, hvps: 0 };
    } finally {
      fused.dispose();
    }
  }
  return withFittingCopies(operator, wanted, async (batched, perLaunch) => {
    // Each parameter's diagonal with room for whole launches: the unit vectors past its end are
    // zero and their entries are dropped.
    const capacities = sizes.map((size) => Math.ceil(size / perLaunch) * perLaunch);
    const starts = capacities.map((_, p) => capacities.slice(0, p).reduce((a, b) => a + b, 0));
    const capacity = capacities.reduce((a, b) => a + b, 0);
    const diagonal = engine.empty([capacity], { batch: R });
    let hvps = 0;
    try {
      for (const [p, size] of sizes.entries()) {
        for (let start = 0; start < size; start += perLaunch) {
          const e = unitVectors(engine, size, batched.batch, perLaunch, start);
          const he = batched.applyBlock(p, e);
          hvps++;
          replicaDots(engine, e, he, diagonal, {
            length: size,
            batch: R * perLaunch,
            outGroup: perLaunch,
            outBatch: capacity,
            outOffset: starts[p] + start,
          });
          for (const t of [e, he]) t.dispose();
        }
      }
      const all = await diagonal.read();
      const diagonals = Array.from({ length: R }, (_, r) =>
        sizes.flatMap((size, p) =>
          Array.from(all.subarray(r * capacity + starts[p], r * capacity + starts[p] + size)),
        ),
      );
      return { trace: diagonals.map((d) => d.reduce((a, b) => a + b, 0)), diagonal: diagonals, hvps };
    } finally {
      diagonal.dispose();
    }
  });
}
