/** Building blocks shared by the presets: the paper's deep linear setup (its Appendix B) and helpers. */
import type { ModelSpec } from '../../models/model.ts';
import type { ExperimentConfigInput, MetricName } from '../config.ts';

/** V = I₂ and Σ_x = I₂: the deep linear teacher of Figs 1, 2, 4–7. */
export const IDENTITY_2 = [
  [1, 0],
  [0, 1],
];

/** Deep linear f(x) = W_D ⋯ W_1 x from R² to R², hidden widths 2 (= rank V, so the theory's weights are exact). */
export function deepLinear(depth: number, width = 2): ModelSpec {
  return { kind: 'deep-linear', inputDim: 2, hidden: new Array(depth - 1).fill(width), outputDim: 2 };
}

/** √Σ_ε with every other entry `small`: diag(big, small, big, small, …) of length m. */
export function alternatingStd(m: number, big: number, small: number): number[] {
  return Array.from({ length: m }, (_, i) => (i % 2 === 0 ? big : small));
}

/** √Σ_ε whose condition number κ(Σ_ε) = (big / small)² is `kappa`: the small entries are big/√κ. */
export function stdForKappa(m: number, big: number, kappa: number): number[] {
  return alternatingStd(m, big, big / Math.sqrt(kappa));
}

/** Loss, T, λ_max and S: what the paper measures of every model. */
export const LINEAR_METRICS = ['loss', 'sharpness', 'lambdaMax', 'fluctuation'] as const;

/**
 * A deep linear network on a linear teacher measures them on the population loss, plus λ_max at the
 * nearest minimum: the quantity λ_max* is (at SGD's iterate a degenerate λ_max* splits).
 */
export const DEEP_LINEAR_METRICS = [
  'loss',
  'sharpness',
  'lambdaMax',
  'lambdaMaxAtMinimum',
  'fluctuation',
] as const;

/** The paper's online SGD for the deep linear net and the teacher–student MLP: 10⁵ steps. */
export function paperTraining(learningRate: number, batchSize: number) {
  return { learningRate, batchSize, steps: 100_000 };
}

/** The paper's log points: every 1000 steps, curvature on 200 fresh samples. */
export function paperMeasure(metrics: readonly MetricName[]) {
  return { every: 1000, evaluationSamples: 200, metrics: [...metrics] };
}

/** The paper's estimator budgets beyond the exact limits: Hutchinson probes and Lanczos steps. */
export const PAPER_ESTIMATORS = { hutchinsonProbes: 32, lanczosIterations: 20 };
/** Quick forms' estimator budgets. */
export const QUICK_ESTIMATORS = { hutchinsonProbes: 8, lanczosIterations: 10 };

/**
 * A deep linear preset's run (the paper's Appendix B): D = 3, V = I₂, MSE, label noise √Σ_ε =
 * diag(noiseStd), online SGD with batch 10 for 10⁵ steps, measured every 1000 steps on 200 fresh
 * samples, five seeds from base seed 1.
 */
export function deepLinearRun(options: {
  noiseStd: number[];
  init: ExperimentConfigInput['init'];
  learningRate: number;
  metrics: readonly MetricName[];
  /** Extra measure fields (e.g. topEigenvalues). */
  measure?: Partial<ExperimentConfigInput['measure']>;
}) {
  return {
    model: deepLinear(3),
    loss: 'mse' as const,
    data: { kind: 'linear-teacher' as const, V: IDENTITY_2, noiseStd: options.noiseStd },
    init: options.init,
    train: paperTraining(options.learningRate, 10),
    measure: { ...paperMeasure(options.metrics), ...options.measure },
    seeds: 5,
    seed: 1,
  };
}

/** A group that differs from the base only in its label noise √Σ_ε = diag(noiseStd); `value` is κ(Σ_ε). */
export function noiseGroup(name: string, value: number, noiseStd: number[]) {
  return { name, value, overrides: { data: { noiseStd } } };
}

/**
 * √Σ_ε = diag(big, big/√κ, …, big/√κ) of length m: one large noise direction. With cross-entropy
 * only the sum-zero part of the noise reaches the loss (softmax is shift-invariant); for m = 3 its
 * covariance has eigenvalues (2·big² + small²)/3 and small², so it stays anisotropic, growing with κ
 * (alternating entries would cap that ratio at 3, and m = 2 leaves one isotropic direction).
 */
export function oneLargeStdForKappa(m: number, big: number, kappa: number): number[] {
  return Array.from({ length: m }, (_, i) => (i === 0 ? big : big / Math.sqrt(kappa)));
}
