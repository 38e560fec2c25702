/**
 * Which replica rows a run of a config must hold: every replica × log point × metric, once. A replica
 * frozen as diverged (recorded in the results' divergences) legitimately stops having rows at the
 * step it diverged. `checkRowsComplete` is how `merge` refuses a shard that lost or repeated rows.
 */
import { InputError } from '../errors.ts';
import {
  type ExperimentConfig,
  layerConditionMetric,
  layerSharpnessMetrics,
  topEigenvalueMetric,
  validateExperiment,
} from './config.ts';
import { logSteps, replicaOffsets, topEigenvalueCount } from './executor.ts';
import type { Divergence, ResultRow } from './results.ts';

/**
 * The row metrics a group's replicas get at each log point: `required` always (`layerCondition` → one
 * per weight, `topEigenvalues` → lambda1 … lambdak), `optional` depending on the measurement route
 * (gradientNorm, the per-layer blocks of deep linear networks, the estimates' standard errors).
 */
function rowMetrics(group: ReturnType<typeof validateExperiment>[number]): {
  required: string[];
  optional: Set<string>;
} {
  const { measure } = group.resolved;
  const weights = group.model.parameters.filter((p) => p.role === 'weight');
  const required = measure.metrics.flatMap((metric) => {
    if (metric === 'layerCondition') return weights.map((p) => layerConditionMetric(p.name));
    if (metric === 'topEigenvalues')
      return Array.from({ length: topEigenvalueCount(measure) }, (_, k) => topEigenvalueMetric(k));
    // density: a curve (many rows, one per eigenvalue) at the end of training only; see below.
    if (metric === 'gradientNorm' || metric === 'layerSharpness' || metric === 'density') return [];
    return [metric];
  });
  const optional = new Set(
    measure.metrics.flatMap((metric) => {
      if (metric === 'gradientNorm') return [metric, `${metric}StandardError`];
      if (metric === 'layerSharpness')
        return weights.flatMap((p) => Object.values(layerSharpnessMetrics(p.name)));
      if (metric === 'topEigenvalues')
        return Array.from(
          { length: topEigenvalueCount(measure) },
          (_, k) => `${topEigenvalueMetric(k)}StandardError`,
        );
      if (['sharpness', 'lambdaMax', 'fluctuation', 'accuracy', 'heldOutLoss'].includes(metric))
        return [`${metric}StandardError`];
      return [];
    }),
  );
  return { required, optional };
}

/**
 * Checks that `rows` hold exactly the replica rows of the replicas [start, end) (global numbers,
 * group-major): each group's seeds × its log points × its metrics, once, a diverged replica's ending
 * at its divergence step. Theory and relativeSharpness rows are not replica rows and are ignored.
 * Errors are InputErrors on `where` naming the group, seed (replica) and step.
 */
export function checkRowsComplete(
  config: ExperimentConfig,
  rows: readonly ResultRow[],
  divergences: readonly Divergence[],
  range: { start: number; end: number },
  where: string,
): void {
  const groups = validateExperiment(config);
  const offsets = replicaOffsets(groups);
  const expected = new Map<string, { group: string; seed: number; step: number; metric: string }>();
  const allowed = new Set<string>();
  groups.forEach((group, g) => {
    const name = group.resolved.group;
    const metrics = rowMetrics(group);
    const steps = logSteps(group.resolved);
    for (let seed = 0; seed < group.resolved.seeds; seed++) {
      const replica = offsets[g] + seed;
      if (replica < range.start || replica >= range.end) continue;
      const stop = divergences.find((d) => d.group === name && d.replica === seed)?.step;
      const last = steps[steps.length - 1];
      if (group.resolved.measure.metrics.includes('density') && (stop === undefined || last < stop))
        expected.set(JSON.stringify([name, seed, last, 'density']), {
          group: name,
          seed,
          step: last,
          metric: 'density',
        });
      for (const step of steps) {
        if (stop !== undefined && step >= stop) break;
        for (const metric of metrics.required)
          expected.set(JSON.stringify([name, seed, step, metric]), { group: name, seed, step, metric });
        for (const metric of metrics.optional) allowed.add(JSON.stringify([name, seed, step, metric]));
      }
    }
  });
  const seen = new Set<string>();
  for (const row of rows) {
    if (row.seed === 'theory' || row.metric === 'relativeSharpness') continue;
    const key = JSON.stringify([row.group, row.seed, row.step, row.metric]);
    // A density curve has one row per eigenvalue: unique by eigenvalue, expected as a whole.
    const rowKey = row.eigenvalue === undefined ? key : JSON.stringify([key, row.eigenvalue]);
    const what = `group '${row.group}' seed ${row.seed} step ${row.step} (${row.metric}${row.eigenvalue === undefined ? '' : ` at λ = ${row.eigenvalue}`})`;
    if (seen.has(rowKey))
      throw new InputError(where, `holds the row of ${what} twice; the shard's results are damaged`);
    seen.add(rowKey);
    if (!expected.has(key) && !allowed.has(key))
      throw new InputError(
        where,
        `holds a row this run does not measure: ${what} (not a log point, a metric or a live replica of this shard)`,
      );
    seen.add(key);
  }
  for (const [key, missing] of expected)
    if (!seen.has(key))
      throw new InputError(
        where,
        `is incomplete: no row for group '${missing.group}' seed ${missing.seed} at step ${missing.step} (${missing.metric}); rerun this shard`,
      );
}
