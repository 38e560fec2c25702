/**
 * Closed-form rows (seed = 'theory') for groups the theory covers: a deep linear network trained with
 * MSE on a linear teacher. Values are those of the minimum SGD selects (theory.md): T*, S*, λ_max* (beside
 * λ_max at the nearest minimum),
 * and the condition number σ_max/σ_min of each predicted weight matrix (when the hidden widths equal
 * rank V, so the predicted weights have the model's shapes; wider layers would pad zero rows and make
 * the condition number infinite).
 */
import { SingularValueDecomposition } from 'ml-matrix';
import { deepLinearTheory } from '../theory/deep-linear.ts';
import { toMl } from '../theory/linalg.ts';
import { layerConditionMetric, type ValidatedGroup } from './config.ts';
import type { ResultRow } from './results.ts';

/** Whether the closed form applies to this group. */
export function theoryApplies(group: ValidatedGroup): boolean {
  const { resolved } = group;
  return (
    resolved.model.kind === 'deep-linear' &&
    resolved.data.kind === 'linear-teacher' &&
    resolved.loss === 'mse'
  );
}

/** σ_max / σ_min over the min(rows, columns) singular values. */
export function conditionNumber(matrix: number[][]): number {
  const s = new SingularValueDecomposition(toMl(matrix), {
    computeLeftSingularVectors: false,
    computeRightSingularVectors: false,
    autoTranspose: true,
  }).diagonal;
  return Math.max(...s) / Math.min(...s);
}

/**
 * Theory rows of a group, one per measured metric the theory predicts, repeated at each of `steps`
 * (e.g. the first and last logged step: a flat dashed line across the run). Empty when the closed form
 * does not apply.
 */
export function theoryRows(group: ValidatedGroup, steps: readonly number[]): ResultRow[] {
  if (!theoryApplies(group)) return [];
  const { resolved, model, sigmaX, sigmaEps } = group;
  if (resolved.data.kind !== 'linear-teacher') return [];
  const theory = deepLinearTheory({ depth: model.parameters.length, V: resolved.data.V, sigmaX, sigmaEps });
  const metrics = new Set<string>(resolved.measure.metrics);
  const values: [string, number][] = [];
  if (metrics.has('sharpness')) values.push(['sharpness', theory.sharpness]);
  if (metrics.has('fluctuation')) values.push(['fluctuation', theory.fluctuation]);
  // λ_max* beside λ_max at the nearest minimum only: at SGD's iterate a degenerate λ_max* is split at
  // first order by the fluctuation about the manifold, so λ_max there is a different quantity.
  if (metrics.has('lambdaMaxAtMinimum')) values.push(['lambdaMaxAtMinimum', theory.lambdaMax]);
  const shapesMatch = model.parameters.every(
    (p, i) => p.shape.join() === [theory.weights[i].length, theory.weights[i][0].length].join(),
  );
  if (metrics.has('layerCondition') && shapesMatch) {
    model.parameters.forEach((p, i) => {
      values.push([layerConditionMetric(p.name), conditionNumber(theory.weights[i])]);
    });
  }
  const rows: ResultRow[] = [];
  for (const step of steps) {
    for (const [metric, value] of values) {
      rows.push({
        experiment: resolved.experiment,
        group: resolved.group,
        seed: 'theory',
        step,
        metric,
        value,
      });
    }
  }
  return rows;
}
