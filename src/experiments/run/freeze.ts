/** Divergence at a log point: replicas whose loss or weights left the finite range are frozen. */
import type { Engine } from '../../tensor/engine.ts';
import { isDivergedLoss } from '../../train/trainer.ts';
import type { PreparedBatch } from './batch.ts';
import type { ReplicaRows } from './replica-rows.ts';

/** A log point's weights read back, one array per parameter tensor (replica-major). */
export type LogPointWeights = (Float32Array | Uint32Array)[];

/**
 * Marks replicas whose loss or weights left the finite range (or whose loss passed the divergence
 * bound) as diverged, records each once, and returns this log point's weights with every diverged
 * replica's zeroed, also on the GPU: curvature runs all replicas in lockstep, and a non-finite
 * weight would poison the shared eigen-solves. A frozen replica keeps training from zero (possibly
 * diverging again) but its values are never read.
 */
export async function freezeDiverged(
  engine: Engine,
  prepared: PreparedBatch,
  out: ReplicaRows,
  step: number,
  loss: Float32Array,
): Promise<LogPointWeights> {
  const { params } = prepared;
  const values = await Promise.all(params.map((p) => p.read()));
  for (let r = 0; r < prepared.batch.replicas; r++) {
    if (out.diverged.has(r)) continue;
    const weightsFinite = params.every((p, i) =>
      values[i].subarray(r * p.size, (r + 1) * p.size).every((v) => Number.isFinite(v)),
    );
    if (!isDivergedLoss(loss[r]) && weightsFinite) continue;
    out.markDiverged(r, step, loss[r]);
  }
  if (out.diverged.size === 0) return values;
  params.forEach((p, i) => {
    for (const r of out.diverged) values[i].fill(0, r * p.size, (r + 1) * p.size);
    engine.write(p, values[i]);
  });
  return values;
}
