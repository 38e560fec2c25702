/**
 * How a batch's curvature is measured, and what each (group, metric) of a run therefore is. The size
 * limits and defaults are measureCurvature's own (src/curvature/measure.ts), so the route and the
 * measurement agree.
 */
import {
  MEASURE_DEFAULT_LANCZOS_STEPS,
  MEASURE_DEFAULT_PROBES,
  MEASURE_DENSE_MAX_PARAMETERS,
  MEASURE_EXACT_TRACE_MAX_PARAMETERS,
} from '../../curvature/measure.ts';
import { chunkSamples, DEFAULT_EVALUATION_CHUNKS } from '../../curvature/sample-estimates.ts';
import type { ExperimentConfig, ValidatedGroup } from '../config.ts';
import {
  type MeasurementRoute,
  type MetricDefinition,
  metricDefinitions,
  populationMoments,
} from '../definitions.ts';
import { type ExperimentShard, planRun, type ReplicaBatch } from './plan.ts';

/** k of the topEigenvalues metric when the config does not say. */
export const DEFAULT_TOP_EIGENVALUES = 3;

/** k of a group's topEigenvalues metric (its rows lambda1 … lambdak). */
export function topEigenvalueCount(measure: { topEigenvalues?: number }): number {
  return measure.topEigenvalues ?? DEFAULT_TOP_EIGENVALUES;
}

/**
 * How a batch's curvature is measured: the population loss exactly (deep linear, MSE, linear teacher),
 * the evaluation set's moments in float64 (other deep linear MSE models up to the dense limit: beyond
 * it the n × n eigen-solve per replica costs more than the GPU's trace and Lanczos), or GPU HVPs.
 */
export function measurementRoute(batch: ReplicaBatch): MeasurementRoute {
  const { resolved, model } = batch.members[0].group;
  const parameters = model.parameters.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
  const moments =
    resolved.model.kind === 'deep-linear' &&
    resolved.loss === 'mse' &&
    parameters <= MEASURE_DENSE_MAX_PARAMETERS;
  const kind = populationMoments(batch.members) ? 'population' : moments ? 'sample-moments' : 'sample-gpu';
  const samples = resolved.measure.evaluationSamples;
  return {
    kind,
    parameters,
    denseMax: MEASURE_DENSE_MAX_PARAMETERS,
    exactTraceMax: MEASURE_EXACT_TRACE_MAX_PARAMETERS,
    probes: resolved.measure.hutchinsonProbes ?? MEASURE_DEFAULT_PROBES,
    lanczosSteps: Math.min(parameters, resolved.measure.lanczosIterations ?? MEASURE_DEFAULT_LANCZOS_STEPS),
    ...(kind === 'sample-gpu' && {
      chunks: Math.ceil(samples / evaluationChunkSamples(batch.members[0].group, batch.replicas)),
    }),
  };
}

/**
 * Rows per chunk of the evaluation set on the GPU route: `measure.evaluationChunks` (default 8)
 * chunks, smaller ones when a chunk's activations (one row ≈ the widest layer, a Transformer's
 * attention scores) would not fit the chunk budget.
 */
export function evaluationChunkSamples(group: ValidatedGroup, replicas: number): number {
  const { resolved, model } = group;
  const spec = resolved.model;
  const widest = Math.max(model.inputFeatures, model.outputDim, ...model.parameters.map((p) => p.shape[0]));
  const perRow =
    spec.kind === 'transformer' ? Math.max(widest, spec.heads * spec.sequenceLength ** 2) : widest;
  return chunkSamples(
    resolved.measure.evaluationSamples,
    resolved.measure.evaluationChunks ?? DEFAULT_EVALUATION_CHUNKS,
    replicas,
    perRow,
  );
}

/** What each (group, metric) of these batches is. */
export function batchDefinitions(batches: readonly ReplicaBatch[]): MetricDefinition[] {
  return batches.flatMap((batch) =>
    batch.members.flatMap((m) => metricDefinitions(m.group, measurementRoute(batch))),
  );
}

/** What each (group, metric) of a run (or of one shard) is, before it runs: pure CPU. */
export function experimentDefinitions(config: ExperimentConfig, shard?: ExperimentShard): MetricDefinition[] {
  return batchDefinitions(planRun(config, shard));
}
