/**
 * Spectral density of the Hessian by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani,
 * Krishnan & Xiao 2019): `runs` Lanczos runs from Rademacher start vectors, each giving Gauss quadrature
 * nodes θ_k (Ritz values) and weights τ_k = (first component of the Ritz vector)², averaged over runs
 * and broadened with a Gaussian of width σ. The density is per parameter: it integrates to one.
 */
import { InputError, positiveInteger } from '../errors.ts';
import { withFittingCopies } from './copies.ts';
import { lanczosRecurrence } from './lanczos.ts';
import type { HessianOperator } from './operator.ts';
import { STREAM_SLQ } from './probes.ts';
import { tridiagonalEigen } from './tridiagonal.ts';

export interface DensityOptions {
  /** Independent Lanczos runs per replica, all in one batched launch (default 10). */
  runs?: number;
  /** Lanczos steps per run (default min(n, 80)). */
  steps?: number;
  /** Gaussian broadening σ in eigenvalue units; default `relativeSigma` of the node range. */
  sigma?: number;
  /** σ as a fraction of max θ − min θ when `sigma` is not given (default 0.01). */
  relativeSigma?: number;
  /** Points of the grid, which spans the nodes ± 5σ (default 512). */
  gridPoints?: number;
  seed?: number;
  /** Global index of the operator's first replica (a shard of a larger run): keys the start vectors. */
  replicaOffset?: number;
}

export interface DensityResult {
  /** Per replica: the evaluation grid (ascending, evenly spaced). */
  grid: number[][];
  /** Per replica: the density on the grid, normalised so its trapezoid integral is exactly 1. */
  density: number[][];
  /** Per replica: the broadening used. */
  sigma: number[];
  /** Per replica: quadrature nodes of all runs and their weights (weights sum to 1). */
  nodes: number[][];
  weights: number[][];
  /** HVP launches (each covers every run of every replica). */
  hvps: number;
}

/**
 * A spectrum given as nodes θ_k with weights τ_k (normalised here to sum to 1), broadened with a Gaussian
 * of width σ onto an even grid over the nodes ± 5σ; the density is normalised so its trapezoid integral
 * is exactly 1. With every eigenvalue as a node of weight 1/n this is the exact density of a spectrum.
 */
export function broadenedDensity(
  nodes: readonly number[],
  weights: readonly number[],
  options: Pick<DensityOptions, 'sigma' | 'relativeSigma' | 'gridPoints'> = {},
): { grid: number[]; density: number[]; sigma: number; weights: number[] } {
  const gridPoints = positiveInteger('gridPoints', options.gridPoints ?? 512);
  if (gridPoints < 2) throw new InputError('gridPoints', 'must be at least 2');
  const relativeSigma = options.relativeSigma ?? 0.01;
  const total = weights.reduce((a, b) => a + b, 0);
  const normalised = weights.map((w) => w / total);
  const lo = Math.min(...nodes);
  const hi = Math.max(...nodes);
  const range = hi - lo;
  const sigma =
    options.sigma ?? (range > 0 ? relativeSigma * range : relativeSigma * Math.max(Math.abs(hi), 1));
  const a = lo - 5 * sigma;
  const step = (hi + 5 * sigma - a) / (gridPoints - 1);
  const grid = Array.from({ length: gridPoints }, (_, i) => a + i * step);
  const norm = 1 / (sigma * Math.sqrt(2 * Math.PI));
  const d = grid.map((t) =>
    nodes.reduce(
      (acc, theta, k) => acc + normalised[k] * norm * Math.exp(-0.5 * ((t - theta) / sigma) ** 2),
      0,
    ),
  );
  // Trapezoid normalisation: the tails beyond ±5σ and the grid spacing lose < 1e-6 of the mass.
  let integral = 0;
  for (let i = 1; i < gridPoints; i++) integral += 0.5 * (d[i] + d[i - 1]) * step;
  return { grid, density: d.map((v) => v / integral), sigma, weights: normalised };
}

/** Mass ∫ρ and mean ∫λρ of a density on an even or uneven grid (trapezoid rule). */
export function densityMoments(
  grid: readonly number[],
  density: readonly number[],
): { mass: number; mean: number } {
  let mass = 0;
  let mean = 0;
  for (let i = 1; i < grid.length; i++) {
    const h = grid[i] - grid[i - 1];
    mass += 0.5 * h * (density[i] + density[i - 1]);
    mean += 0.5 * h * (grid[i] * density[i] + grid[i - 1] * density[i - 1]);
  }
  return { mass, mean };
}

/** Stochastic Lanczos quadrature density per replica of an operator without copies. */
export async function spectralDensity(
  operator: HessianOperator,
  options: DensityOptions = {},
): Promise<DensityResult> {
  if (operator.copies !== 1) throw new InputError('spectralDensity', 'expects an operator without copies');
  const n = operator.size;
  const runs = positiveInteger('runs', options.runs ?? 10);
  const steps = Math.min(n, positiveInteger('steps', options.steps ?? 80));
  const gridPoints = positiveInteger('gridPoints', options.gridPoints ?? 512);
  if (gridPoints < 2) throw new InputError('gridPoints', 'must be at least 2');
  if (options.sigma !== undefined && !(options.sigma > 0))
    throw new InputError('sigma', `must be positive, got ${options.sigma}`);
  const relativeSigma = options.relativeSigma ?? 0.01;
  if (!(relativeSigma > 0)) throw new InputError('relativeSigma', `must be positive, got ${relativeSigma}`);
  const R = operator.replicas;
  // Runs go through the HVPs in batches of as many as fit; each batch is one lockstep recurrence.
  const nodes: number[][] = Array.from({ length: R }, () => []);
  const weights: number[][] = Array.from({ length: R }, () => []);
  let hvps = 0;
  let done = 0;
  while (done < runs) {
    const first = done;
    hvps += await withFittingCopies(operator, runs - first, async (batched, copies) => {
      const run = await lanczosRecurrence(batched, {
        maxSteps: steps,
        seed: options.seed ?? 0,
        stream: STREAM_SLQ,
        replicaOffset: options.replicaOffset,
        start: 'rademacher',
        // Later batches of runs draw other start vectors: the counter offsets by the first run.
        counter: first * steps,
        breakdownTolerance: 1e-5,
        keepBasis: false,
        done: () => false,
      });
      for (let b = 0; b < batched.batch; b++) {
        const r = Math.floor(b / copies);
        const m = run.steps[b];
        if (m === 0) continue;
        const e = tridiagonalEigen(run.alpha[b].slice(0, m), run.beta[b].slice(0, m - 1));
        e.values.forEach((theta, k) => {
          nodes[r].push(theta);
          weights[r].push(e.first[k] ** 2);
        });
      }
      done = first + copies;
      return run.hvps;
    });
  }
  const grid: number[][] = [];
  const density: number[][] = [];
  const sigmas: number[] = [];
  for (let r = 0; r < R; r++) {
    const broadened = broadenedDensity(nodes[r], weights[r], { ...options, gridPoints });
    weights[r] = broadened.weights;
    grid.push(broadened.grid);
    density.push(broadened.density);
    sigmas.push(broadened.sigma);
  }
  return { grid, density, sigma: sigmas, nodes, weights, hvps };
}
