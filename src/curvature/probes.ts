/** Random start and probe vectors of the curvature toolkit, drawn on the GPU (Philox). */
import { randomNormal, randomRademacher } from '../kernels/rng.ts';
import type { Tensor } from '../tensor/engine.ts';
import type { HessianOperator } from './operator.ts';

/** Random streams of the curvature probes (data uses 1, 2, 4; initialisation 3). */
export const STREAM_HUTCHINSON = 16;
export const STREAM_LANCZOS = 17;
export const STREAM_POWER = 18;
export const STREAM_SLQ = 19;

/**
 * Random start or probe vectors, flat [n] of batch R·copies: copy j of replica r is drawn from
 * (seed, stream, replica r + replicaOffset, counter), so a replica's vectors do not depend on how many
 * replicas run, nor on which shard runs it (`replicaOffset`: global index of the operator's replica 0).
 */
export function randomVectors(
  operator: HessianOperator,
  kind: 'normal' | 'rademacher',
  position: { seed: number; stream: number; counter: number; replicaOffset?: number },
): Tensor {
  const { engine, copies, replicas, size } = operator;
  const out = engine.empty([size], { batch: replicas * copies });
  // The same memory seen as [copies, n] per replica, so the RNG keys by the replica r.
  const view = engine.view(out, [copies, size], replicas);
  if (kind === 'normal') randomNormal(engine, view.shape, position, { out: view });
  else randomRademacher(engine, view.shape, position, { out: view });
  return out;
}
