/** Metric names: what a config may measure, and the row names and panel matching derived from them. */

/** Metrics an experiment can measure at its log points. */
export const METRICS = [
  'loss',
  'sharpness',
  'lambdaMax',
  'lambdaMaxAtMinimum',
  'fluctuation',
  'layerCondition',
  'topEigenvalues',
  'gradientNorm',
  'layerSharpness',
  'density',
  'accuracy',
  'heldOutLoss',
] as const;
export type MetricName = (typeof METRICS)[number];

/** Row metrics computed from other rows (the executor's `relativeSharpness` = T(group) / T(reference)). */
export const DERIVED_METRICS = ['relativeSharpness'] as const;

/**
 * Row name of the condition number σ_max/σ_min of one weight matrix (metric `layerCondition`), e.g.
 * `layerCondition.W1`. Panels that list `layerCondition` show every layer.
 */
export function layerConditionMetric(parameterName: string): string {
  return `layerCondition.${parameterName}`;
}

/** Whether a panel may show this metric: a measured one, a derived one, or `layerCondition.<layer>`. */
export function isKnownMetric(metric: string): boolean {
  if ((METRICS as readonly string[]).includes(metric)) return true;
  if ((DERIVED_METRICS as readonly string[]).includes(metric)) return true;
  return /^layerCondition\.[A-Za-z0-9_]+$/.test(metric);
}

/** Whether a row metric belongs to a panel metric (`layerCondition` covers `layerCondition.W1`, …). */
export function metricMatches(rowMetric: string, panelMetric: string): boolean {
  if (panelMetric === 'topEigenvalues') return /^lambda\d+$/.test(rowMetric);
  return rowMetric === panelMetric || rowMetric.startsWith(`${panelMetric}.`);
}

/** Row names of the `topEigenvalues` metric: lambda1 (the largest) … lambdak. */
export function topEigenvalueMetric(index: number): string {
  return `lambda${index + 1}`;
}

/** Row names of the `layerSharpness` metric: each layer's block trace and block λ_max. */
export function layerSharpnessMetrics(parameterName: string): { trace: string; lambdaMax: string } {
  return { trace: `layerSharpness.${parameterName}`, lambdaMax: `layerLambdaMax.${parameterName}` };
}
