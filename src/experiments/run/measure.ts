/**
 * The measurements of one log point: loss, curvature (by the batch's route: the population loss
 * exactly, the evaluation set's moments in float64, or GPU HVPs), the spectral density at the end,
 * held-out accuracy and loss, and layer condition numbers; rows go to the batch's `ReplicaRows`.
 */
import { deepLinearCurvature } from '../../curvature/deep-linear-exact.ts';
import { populationCurvature } from '../../curvature/deep-linear-population.ts';
import { broadenedDensity, spectralDensity } from '../../curvature/density.ts';
import {
  DEFAULT_EVALUATION_CHUNKS,
  measureSampleEstimates,
  type SampleEstimate,
} from '../../curvature/sample-estimates.ts';
import { layerWidths } from '../../models/model.ts';
import type { Engine } from '../../tensor/engine.ts';
import { layerConditionMetric, layerSharpnessMetrics, topEigenvalueMetric } from '../config.ts';
import {
  DENSITY_GRID_POINTS,
  DENSITY_RUNS,
  type MeasurementRoute,
  populationMoments,
} from '../definitions.ts';
import { conditionNumber } from '../theory-rows.ts';
import type { PreparedBatch } from './batch.ts';
import type { LogPointWeights } from './freeze.ts';
import { scoreHeldOut } from './held-out.ts';
import type { ReplicaRows } from './replica-rows.ts';
import { measurementRoute, topEigenvalueCount } from './route.ts';

/** What a batch measures and how, fixed for all its log points. */
export interface MeasurementPlan {
  prepared: PreparedBatch;
  out: ReplicaRows;
  metrics: Set<string>;
  route: MeasurementRoute;
  population: ReturnType<typeof populationMoments>;
  /** Layer widths of a deep linear model (input, hidden…, output); empty for other models. */
  widths: number[];
  /** k of topEigenvalues (0 when the metric is off). */
  topCount: number;
  /** The evaluation set on the CPU, read once when the moments route first needs it. */
  evaluationValues?: { x: ArrayLike<number>; y: ArrayLike<number> };
}

export function planMeasurement(prepared: PreparedBatch, out: ReplicaRows): MeasurementPlan {
  const { batch, resolved } = prepared;
  const metrics = new Set<string>(resolved.measure.metrics);
  const modelSpec = resolved.model;
  const route = measurementRoute(batch);
  return {
    prepared,
    out,
    metrics,
    route,
    population: route.kind === 'population' ? populationMoments(batch.members) : undefined,
    widths: modelSpec.kind === 'deep-linear' ? layerWidths(modelSpec) : [],
    topCount: metrics.has('topEigenvalues') ? topEigenvalueCount(resolved.measure) : 0,
  };
}

/** Metrics that need no curvature. */
const NON_CURVATURE_METRICS = ['loss', 'layerCondition', 'accuracy', 'heldOutLoss'];

/** Every metric of the log point at `step`; `weights` are its parameters, diverged replicas zeroed. */
export async function measureLogPoint(
  engine: Engine,
  plan: MeasurementPlan,
  step: number,
  loss: Float32Array,
  weights: LogPointWeights,
): Promise<void> {
  const { metrics, out, prepared } = plan;
  if (metrics.has('loss'))
    loss.forEach((v, r) => {
      out.add(r, step, 'loss', v);
    });
  const curvature = [...metrics].some((m) => !NON_CURVATURE_METRICS.includes(m));
  // Every eigenvalue of each replica's Hessian where a route computes them exactly (for `density`).
  const spectrum = curvature ? await measureCurvatureRows(plan, step, weights) : undefined;
  if (metrics.has('density') && step === prepared.resolved.train.steps)
    await densityRows(plan, step, spectrum);
  if (metrics.has('accuracy') || metrics.has('heldOutLoss')) await heldOutRows(engine, plan, step);
  if (metrics.has('layerCondition')) layerConditionRows(plan, step, weights);
}

/** The metrics beyond T, λ_max and S (topEigenvalues, gradientNorm, layerSharpness) of replica r. */
function addMore(
  plan: MeasurementPlan,
  r: number,
  step: number,
  more: { top?: number[]; gradientNorm?: number; layers?: { trace: number; lambdaMax: number }[] },
): void {
  const { metrics, out, topCount } = plan;
  if (metrics.has('topEigenvalues'))
    for (let k = 0; k < topCount; k++) out.add(r, step, topEigenvalueMetric(k), more.top?.[k] ?? Number.NaN);
  if (metrics.has('gradientNorm') && more.gradientNorm !== undefined)
    out.add(r, step, 'gradientNorm', more.gradientNorm);
  more.layers?.forEach((block, l) => {
    if (!metrics.has('layerSharpness')) return;
    const names = layerSharpnessMetrics(plan.prepared.model.parameters[l].name);
    out.add(r, step, names.trace, block.trace);
    out.add(r, step, names.lambdaMax, block.lambdaMax);
  });
}

/** The curvature rows by the batch's route; returns the exact spectra where the route has them. */
async function measureCurvatureRows(
  plan: MeasurementPlan,
  step: number,
  weights: LogPointWeights,
): Promise<number[][] | undefined> {
  const { metrics, out, prepared, route, population, widths, topCount } = plan;
  const { batch, resolved } = prepared;
  const replicas = batch.replicas;
  if (population) {
    // Deep linear + MSE on a linear teacher: the population loss's Hessian and S, exactly.
    const exact = populationCurvature({
      widths,
      weights,
      replicas,
      ...population,
      top: Math.max(1, topCount),
      atMinimum: metrics.has('lambdaMaxAtMinimum'),
    });
    for (let r = 0; r < replicas; r++) {
      if (metrics.has('sharpness')) out.add(r, step, 'sharpness', exact.trace[r]);
      if (metrics.has('lambdaMax')) out.add(r, step, 'lambdaMax', exact.top[r][0]);
      if (metrics.has('lambdaMaxAtMinimum'))
        out.add(r, step, 'lambdaMaxAtMinimum', exact.lambdaMaxAtMinimum?.[r] ?? Number.NaN);
      if (metrics.has('fluctuation')) out.add(r, step, 'fluctuation', exact.fluctuation[r]);
      addMore(plan, r, step, {
        top: exact.top[r],
        gradientNorm: exact.gradientNorm[r],
        layers: exact.layers[r],
      });
    }
    return exact.eigenvalues;
  }
  if (route.kind === 'sample-moments') {
    // Other deep linear MSE models: the exact float64 Hessian from the evaluation set's moments (n
    // small matrix chains per replica on the CPU), cheaper and more accurate than n f32 HVPs.
    plan.evaluationValues ??= {
      x: await prepared.evaluation.x.read(),
      y: await prepared.evaluation.y.read(),
    };
    const exact = deepLinearCurvature({
      widths,
      weights,
      ...plan.evaluationValues,
      samples: resolved.measure.evaluationSamples,
      replicas,
    });
    for (let r = 0; r < replicas; r++) {
      if (metrics.has('sharpness')) out.add(r, step, 'sharpness', exact.trace[r]);
      if (metrics.has('lambdaMax')) out.add(r, step, 'lambdaMax', exact.eigenvalues[r].at(-1) ?? Number.NaN);
      if (metrics.has('fluctuation')) out.add(r, step, 'fluctuation', exact.fluctuation[r]);
      addMore(plan, r, step, {
        top: exact.eigenvalues[r].slice(-topCount).reverse(),
        gradientNorm: exact.gradientNorm[r],
        layers: exact.layers[r],
      });
    }
    return exact.eigenvalues;
  }
  // No closed form: estimates on the evaluation set held as chunks, each with its standard error
  // (dense, exact or Hutchinson trace per chunk; Lanczos on the chunks' mean Hessian); probe streams
  // keyed by the global replica number.
  const chunks = prepared.chunks;
  if (!chunks) throw new Error('the GPU route needs the evaluation chunks (prepareBatch draws them)');
  const measured = await measureSampleEstimates(chunks, {
    trace: metrics.has('sharpness'),
    lambdaMax: metrics.has('lambdaMax'),
    fluctuation: metrics.has('fluctuation'),
    // k beyond the model's n parameters: NaN rows past its n eigenvalues.
    top: metrics.has('topEigenvalues') ? Math.min(topCount, route.parameters) : 0,
    gradientNorm: metrics.has('gradientNorm'),
    denseMaxParameters: route.denseMax,
    exactTraceMaxParameters: route.exactTraceMax,
    probes: route.probes,
    lanczosSteps: route.lanczosSteps,
    seed: step,
    replicaOffset: batch.offset,
    // Chunks sized by count, not memory: all their tapes together cost one tape over the whole set.
    holdTapes: chunks.chunks.length <= (resolved.measure.evaluationChunks ?? DEFAULT_EVALUATION_CHUNKS),
  });
  const missing = {
    value: new Array(replicas).fill(Number.NaN),
    standardError: new Array(replicas).fill(Number.NaN),
  };
  const estimates: [string, SampleEstimate | undefined][] = [
    ['sharpness', measured.trace],
    ['lambdaMax', measured.lambdaMax],
    ['fluctuation', measured.fluctuation],
    ['gradientNorm', measured.gradientNorm],
    ...Array.from(
      { length: metrics.has('topEigenvalues') ? topCount : 0 },
      (_, k): [string, SampleEstimate] => [topEigenvalueMetric(k), measured.top?.[k] ?? missing],
    ),
  ];
  for (const [metric, estimate] of estimates) {
    if (!estimate) continue;
    for (let r = 0; r < replicas; r++) {
      out.add(r, step, metric, estimate.value[r]);
      out.add(r, step, `${metric}StandardError`, estimate.standardError[r]);
    }
  }
  return undefined;
}

/** At the end of training only: the exact spectrum broadened, or SLQ on the evaluation set. */
async function densityRows(
  plan: MeasurementPlan,
  step: number,
  spectrum: number[][] | undefined,
): Promise<void> {
  const { prepared, route, out } = plan;
  const curves = spectrum
    ? spectrum.map((values) =>
        broadenedDensity(
          values,
          values.map(() => 1),
          { gridPoints: DENSITY_GRID_POINTS },
        ),
      )
    : await spectralDensity(prepared.operator, {
        runs: DENSITY_RUNS,
        steps: route.lanczosSteps,
        gridPoints: DENSITY_GRID_POINTS,
        seed: step,
        replicaOffset: prepared.batch.offset,
      }).then((result) => result.grid.map((grid, r) => ({ grid, density: result.density[r] })));
  curves.forEach(({ grid, density }, r) => {
    grid.forEach((eigenvalue, i) => {
      out.add(r, step, 'density', density[i], eigenvalue);
    });
  });
}

async function heldOutRows(engine: Engine, plan: MeasurementPlan, step: number): Promise<void> {
  const { metrics, out } = plan;
  (await scoreHeldOut(engine, plan.prepared)).forEach((m, r) => {
    if (metrics.has('accuracy')) {
      out.add(r, step, 'accuracy', m.accuracy);
      out.add(r, step, 'accuracyStandardError', m.accuracyStandardError);
    }
    if (metrics.has('heldOutLoss')) {
      out.add(r, step, 'heldOutLoss', m.loss);
      out.add(r, step, 'heldOutLossStandardError', m.lossStandardError);
    }
  });
}

/** κ of each weight matrix of each replica. */
function layerConditionRows(plan: MeasurementPlan, step: number, weights: LogPointWeights): void {
  const { out, prepared } = plan;
  for (const [i, spec] of prepared.model.parameters.entries()) {
    if (spec.role !== 'weight') continue;
    const values = weights[i];
    const [rows, columns] = spec.shape;
    const size = rows * columns;
    for (let r = 0; r < prepared.batch.replicas; r++) {
      const matrix = Array.from({ length: rows }, (_, row) =>
        Array.from(values.subarray(r * size + row * columns, r * size + (row + 1) * columns)),
      );
      out.add(r, step, layerConditionMetric(spec.name), conditionNumber(matrix));
    }
  }
}
