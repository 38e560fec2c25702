/**
 * What each measured number is. A deep linear network trained with MSE on a linear teacher has its
 * curvature measured on the population loss, exactly (src/curvature/deep-linear-population.ts): the
 * same quantities the theory predicts, so only these groups get theory lines (`theoryApplies`). Every
 * other model is measured on an evaluation set of n samples, and says so.
 */
import { POPULATION_DENSE_MAX_PARAMETERS } from '../curvature/deep-linear-population.ts';
import { deepLinearTheory } from '../theory/deep-linear.ts';
import type { ValidatedGroup } from './config.ts';
import { theoryApplies } from './theory-rows.ts';

/** Grid points of the `density` metric's curve (rows per replica). */
export const DENSITY_GRID_POINTS = 256;
/** Stochastic Lanczos quadrature runs of the `density` metric where no exact spectrum exists. */
export const DENSITY_RUNS = 10;

/** One metric of one group, in words: "population, exact" or "sample of n = …". */
export interface MetricDefinition {
  group: string;
  metric: string;
  definition: string;
}

/** Σ_x, Σ_ε per replica and V: what the population curvature of a batch needs. */
export interface PopulationMoments {
  V: number[][];
  sigmaX: number[][][];
  sigmaEps: number[][][];
}

/**
 * The population moments of a batch of replicas (each group's seeds in order), when every group is a
 * deep linear network on a linear teacher under MSE; undefined otherwise.
 */
export function populationMoments(
  members: readonly { group: ValidatedGroup; seeds: number }[],
): PopulationMoments | undefined {
  if (!members.every((m) => theoryApplies(m.group))) return undefined;
  const data = members[0].group.resolved.data;
  if (data.kind !== 'linear-teacher') return undefined;
  const repeat = <T>(value: (group: ValidatedGroup) => T) =>
    members.flatMap((m) => Array.from({ length: m.seeds }, () => value(m.group)));
  const d = data.V[0].length;
  const identity = Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)),
  );
  return {
    V: data.V,
    sigmaX: repeat((g) => g.sigmaX ?? identity),
    sigmaEps: repeat((g) => g.sigmaEps),
  };
}

/** How the curvature of a group is obtained (chosen by run/route.ts, followed by run/measure.ts). */
export interface MeasurementRoute {
  /** Population moments (exact), the evaluation set's moments (deep linear, float64), or GPU HVPs. */
  kind: 'population' | 'sample-moments' | 'sample-gpu';
  /** Parameters of the model. */
  parameters: number;
  /** GPU route thresholds: dense Hessian and exact trace up to these parameter counts. */
  denseMax: number;
  exactTraceMax: number;
  probes: number;
  lanczosSteps: number;
  /** GPU route: chunks of the evaluation set (the batch means behind the standard errors). */
  chunks?: number;
}

/** How many eigenvalues equal λ_max* at the predicted minimum (a degenerate one splits when the weights move). */
function lambdaMaxMultiplicity(group: ValidatedGroup): number | undefined {
  const { resolved, model, sigmaX, sigmaEps } = group;
  if (resolved.data.kind !== 'linear-teacher') return undefined;
  return deepLinearTheory({ depth: model.parameters.length, V: resolved.data.V, sigmaX, sigmaEps })
    .lambdaMaxMultiplicity;
}

/** Why λ_max at SGD's iterate is not compared with λ_max*. */
function iterateCaveat(group: ValidatedGroup): string {
  const multiplicity = lambdaMaxMultiplicity(group);
  if (multiplicity === undefined) return 'the theory does not apply';
  return multiplicity > 1
    ? `λ_max* is ${multiplicity}-fold degenerate at the minimum, and SGD's fluctuation about the minimum manifold splits it at first order, so λ_max at the iterate lies above it (compare lambdaMaxAtMinimum)`
    : "λ_max* is the minimum's, and the iterate fluctuates about the minimum manifold (compare lambdaMaxAtMinimum)";
}

/** What remains between λ_max at the nearest minimum and λ_max*. */
function minimumCaveat(group: ValidatedGroup): string {
  const multiplicity = lambdaMaxMultiplicity(group) ?? 1;
  if (multiplicity <= 1) return '';
  return `; λ_max* is ${multiplicity}-fold degenerate, so the iterate's spread along the manifold (about the point SGD selects) still splits it at first order: this sits above λ_max* by a fraction of that spread`;
}

/** The definition of every metric a group measures, for results.json and the report. */
export function metricDefinitions(group: ValidatedGroup, route: MeasurementRoute): MetricDefinition[] {
  const { resolved } = group;
  const n = resolved.measure.evaluationSamples;
  const sample = `sample of n = ${n} (evaluation set)`;
  // GPU route: every estimate with its own standard error, written beside it.
  const chunked =
    route.kind === 'sample-gpu' ? `sample of n = ${n} (evaluation set, ${route.chunks ?? 1} chunks)` : sample;
  const own = (metric: string, how: string) => `± s.e. (${how}) in ${metric}StandardError`;
  const spread = 'the ± of a final value is over seeds';
  const population = 'population, exact (float64 from Σ_x, Σ_ε, V)';
  const out: MetricDefinition[] = [];
  const define = (metric: string, definition: string) =>
    out.push({ group: resolved.group, metric, definition });
  for (const metric of resolved.measure.metrics) {
    switch (metric) {
      case 'loss':
        define(
          'loss',
          `minibatch of ${resolved.train.batchSize} at the current weights (the next step's minibatch); ${spread}`,
        );
        break;
      case 'sharpness':
        if (route.kind === 'population') define('sharpness', `Tr H, ${population}`);
        else if (route.kind === 'sample-moments')
          define('sharpness', `Tr H of the loss on a ${sample}, exact; ${spread}`);
        else
          define(
            'sharpness',
            `Tr H of the loss on a ${chunked}, ${route.parameters <= route.exactTraceMax ? "each chunk's trace exact" : `Hutchinson, ${route.probes} probes spread over the chunks (at least one each)`}; ${own('sharpness', 'batch means over the chunks: sampling and probes')}; ${spread}`,
          );
        break;
      case 'lambdaMax':
        if (route.kind === 'population')
          define(
            'lambdaMax',
            `${route.parameters <= POPULATION_DENSE_MAX_PARAMETERS ? `λ_max at the iterate, ${population}` : 'λ_max at the iterate, population (float64 Lanczos from Σ_x, Σ_ε, V)'}; no theory line: ${iterateCaveat(group)}`,
          );
        else if (route.kind === 'sample-moments')
          define('lambdaMax', `λ_max of the Hessian on a ${sample}, dense eigen-solve; ${spread}`);
        else
          define(
            'lambdaMax',
            `λ_max of the Hessian on a ${chunked}, ${route.parameters <= route.denseMax ? "dense eigen-solve of the mean of the chunks' Hessians" : `Lanczos (${route.lanczosSteps} steps, H·v summed over the chunks)`}; ${own('lambdaMax', "delta method: the top eigenvector's Rayleigh quotients over the chunks")}; ${spread}`,
          );
        break;
      case 'lambdaMaxAtMinimum':
        define(
          'lambdaMaxAtMinimum',
          `λ_max at the nearest global minimum (the iterate projected onto the manifold W_D⋯W_1 = V by least-norm Gauss–Newton steps), ${population}; the theory's λ_max* is drawn beside this one${minimumCaveat(group)}`,
        );
        break;
      case 'fluctuation':
        if (route.kind === 'population') define('fluctuation', `S = E‖∇ℓ‖², ${population}`);
        else if (route.kind === 'sample-moments')
          define('fluctuation', `S = mean ‖∇ℓ_i‖² over a ${sample}; ${spread}`);
        else
          define(
            'fluctuation',
            `S = mean ‖∇ℓ_i‖² over a ${chunked}; ${own('fluctuation', 's/√n over the samples')}; ${spread}`,
          );
        break;
      case 'layerCondition':
        define('layerCondition', 'σ_max / σ_min of each weight matrix, exact');
        break;
      case 'topEigenvalues':
        if (route.kind === 'population')
          define('topEigenvalues', `the largest eigenvalues λ1 ≥ λ2 ≥ … of H, ${population}`);
        else if (route.kind === 'sample-moments')
          define(
            'topEigenvalues',
            `the largest eigenvalues of the Hessian on a ${sample}, dense eigen-solve; ${spread}`,
          );
        else
          define(
            'topEigenvalues',
            `the largest eigenvalues of the Hessian on a ${chunked}, ${route.parameters <= route.denseMax ? 'dense eigen-solve' : `Lanczos (${route.lanczosSteps} steps)`}; ± s.e. (delta method over the chunks) in lambda<k>StandardError; ${spread}`,
          );
        break;
      case 'gradientNorm':
        define(
          'gradientNorm',
          route.kind === 'population'
            ? `‖∇L‖ of the expected loss, ${population}`
            : route.kind === 'sample-moments'
              ? `‖∇L‖ of the loss on a ${sample}; ${spread}`
              : `‖∇L‖ of the loss on a ${chunked}; ${own('gradientNorm', "the chunks' mean gradients projected on ∇L/‖∇L‖")}; ${spread}`,
        );
        break;
      case 'layerSharpness':
        define(
          'layerSharpness',
          route.kind === 'population'
            ? `each layer's diagonal Hessian block: trace (layerSharpness.W) and λ_max (layerLambdaMax.W), ${population}`
            : route.kind === 'sample-moments'
              ? `each layer's diagonal Hessian block: trace and λ_max on a ${sample}, exact; ${spread}`
              : 'not measured: per-layer blocks are computed for deep linear networks under MSE only',
        );
        break;
      case 'accuracy':
      case 'heldOutLoss': {
        const set =
          resolved.data.kind === 'mnist'
            ? `the first ${n} MNIST test digits (clean labels)`
            : `a held-out ${sample}`;
        define(
          metric,
          metric === 'accuracy'
            ? `fraction of ${set} whose predicted class (argmax) is the target's; each replica's binomial s.e. in accuracyStandardError; ${spread}`
            : `mean loss over ${set}; each replica's s.e. (s/√n) in heldOutLossStandardError; ${spread}`,
        );
        break;
      }
      case 'density': {
        const curve = 'spectral density of H at the end of training (rows per eigenvalue, integral 1)';
        if (route.kind === 'population' && route.parameters <= POPULATION_DENSE_MAX_PARAMETERS)
          define(
            'density',
            `${curve}: every eigenvalue broadened by a Gaussian of 1 % of their range, ${population}`,
          );
        else if (route.kind === 'sample-moments')
          define(
            'density',
            `${curve}: every eigenvalue, exact, broadened by a Gaussian of 1 % of their range, on a ${sample}`,
          );
        else
          define(
            'density',
            `${curve}: stochastic Lanczos quadrature (${DENSITY_RUNS} runs of ${route.lanczosSteps} steps, Gaussian broadening 1 % of the node range) on a ${sample}`,
          );
        break;
      }
    }
  }
  return out;
}
