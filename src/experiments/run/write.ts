/** What a finished batch and a finished run add to the outcome. */
import { replicaTensors } from '../../models/weights.ts';
import type { ExperimentConfig } from '../config.ts';
import type { ResultRow } from '../results.ts';
import { theoryRows } from '../theory-rows.ts';
import type { PreparedBatch } from './batch.ts';
import { replicaNames } from './plan.ts';
import type { ReplicaRows } from './replica-rows.ts';
import type { RunState } from './resume.ts';

/**
 * The batch's final weights (diverged replicas have none: divergences were recorded at their log
 * points by `freezeDiverged`), and its groups' theory rows: a flat dashed line across the run, the
 * values SGD converges to.
 */
export async function writeBatch(state: RunState, prepared: PreparedBatch, out: ReplicaRows): Promise<void> {
  const { params, model, batch, resolved } = prepared;
  const finals = await Promise.all(params.map((p) => p.read()));
  replicaTensors(model, finals, replicaNames(batch)).forEach((tensor, k) => {
    if (!out.diverged.has(Math.floor(k / params.length))) state.finalWeights.push(tensor);
  });
  for (const m of batch.members) state.rows.push(...theoryRows(m.group, [0, resolved.train.steps]));
}

/**
 * relativeSharpness = T(group) / T(reference group), seed by seed and step by step, for groups that
 * name a reference (the paper's Fig. 3: anisotropic over isotropic noise).
 */
export function relativeSharpnessRows(config: ExperimentConfig, rows: readonly ResultRow[]): ResultRow[] {
  const key = (group: string, seed: number | 'theory', step: number) => `${group}|${seed}|${step}`;
  const sharpness = new Map<string, number>();
  for (const row of rows)
    if (row.metric === 'sharpness') sharpness.set(key(row.group, row.seed, row.step), row.value);
  const out: ResultRow[] = [];
  for (const group of config.groups) {
    if (!group.reference) continue;
    for (const row of rows) {
      if (row.group !== group.name || row.metric !== 'sharpness') continue;
      const reference = sharpness.get(key(group.reference, row.seed, row.step));
      if (reference === undefined) continue;
      out.push({ ...row, metric: 'relativeSharpness', value: row.value / reference });
    }
  }
  return out;
}
