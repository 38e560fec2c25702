/**
 * Lanczos with full reorthogonalisation for every replica at once, top eigenvalues with Ritz-residual
 * stopping, and plain power iteration. All vectors live on the GPU; the replicas' α and β (two floats
 * per step) are written there and read back once every few steps, and the tridiagonal eigenproblem is
 * solved on the CPU in float64.
 */
import { InputError, positiveInteger } from '../errors.ts';
import { fill } from '../kernels/elementwise.ts';
import { KrylovBasis, powerStep } from '../kernels/lanczos.ts';
import { matmul } from '../kernels/matmul.ts';
import type { Tensor } from '../tensor/engine.ts';
import type { HessianOperator } from './operator.ts';
import { randomVectors, STREAM_LANCZOS, STREAM_POWER } from './probes.ts';
import { type TridiagonalEigen, tridiagonalEigen } from './tridiagonal.ts';

export interface LanczosRecurrence {
  /** Per replica (batch element): the diagonal α_0..α_{m−1} of T_m. */
  alpha: number[][];
  /** Per replica: β_0..β_{m−1}; β_j couples q_j to q_{j+1} (0 after a restart), β_{m−1} is the residual norm. */
  beta: number[][];
  /** Steps m taken per replica (= HVPs it used). */
  steps: number[];
  /** Restarts after an invariant subspace was found (breakdown), per replica. */
  restarts: number[];
  /** HVP launches made (each covers every replica). */
  hvps: number;
  /** Wall-clock milliseconds of each step: launches, the wait for α and β, and the `done` checks (a batch of steps between readbacks shares its time equally). */
  stepMs: number[];
  /** The basis, if kept (caller disposes). */
  basis?: KrylovBasis;
}

export interface RecurrenceOptions {
  /** Largest number of steps (capped at n). */
  maxSteps: number;
  seed: number;
  stream: number;
  /** Counter of the start vectors; restarts after a breakdown at step j draw counter + j + 1 (default 0). */
  counter?: number;
  start: 'normal' | 'rademacher';
  /** β_j ≤ breakdownTolerance · max(|α|, β) seen: invariant subspace, restart with a random vector. */
  breakdownTolerance: number;
  keepBasis: boolean;
  /** Global index of the operator's first replica (a shard of a larger run): keys the random streams. */
  replicaOffset?: number;
  /** After each step, per still-active replica: true once it needs no more steps. */
  done: (replica: number, alpha: readonly number[], beta: readonly number[]) => boolean;
  /** Steps between readbacks of α and β (default LANCZOS_CHECK_EVERY); results do not depend on it. */
  checkEvery?: number;
}

/**
 * Lanczos steps between readbacks: a log point's λ_max (10 steps) reads back once; a long run
 * spends at most 9 HVPs past convergence.
 */
export const LANCZOS_CHECK_EVERY = 10;

/** Runs the Lanczos recurrence on every replica in lockstep until each is done or maxSteps. */
export function lanczosRecurrence(
  operator: HessianOperator,
  options: RecurrenceOptions,
): Promise<LanczosRecurrence> {
  // Every step applies H at the same parameters: tape the forward pass and gradient once.
  return operator.atPoint(() => recurrence(operator, options));
}

async function recurrence(operator: HessianOperator, options: RecurrenceOptions): Promise<LanczosRecurrence> {
  const { engine, batch, size: n } = operator;
  const capacity = Math.min(options.maxSteps, n);
  const checkEvery = options.checkEvery ?? LANCZOS_CHECK_EVERY;
  positiveInteger('checkEvery', checkEvery);
  const basis = new KrylovBasis(engine, n, capacity, batch);
  fill(engine, basis.rows, 0);
  const counter = options.counter ?? 0;
  const start = randomVectors(operator, options.start, {
    seed: options.seed,
    stream: options.stream,
    counter,
    replicaOffset: options.replicaOffset,
  });
  basis.normalizeInto(start, 0);
  start.dispose();
  const q = engine.empty([n], { batch });
  const w = engine.empty([n], { batch });
  const alpha: number[][] = Array.from({ length: batch }, () => []);
  const beta: number[][] = Array.from({ length: batch }, () => []);
  const steps = new Array<number>(batch).fill(0);
  const restarts = new Array<number>(batch).fill(0);
  const scale = new Array<number>(batch).fill(0);
  const active = new Array<boolean>(batch).fill(true);
  let hvps = 0;
  const stepMs: number[] = [];
  let finished = false;
  try {
    // Steps run on the GPU without waiting: α and β go to the basis's history, read back every
    // `checkEvery` steps and walked step by step as before. A replica that broke down at step s
    // (rare: an invariant subspace) is restarted there and the steps after s are made again, so the
    // result is the same as with a readback after every step; only up to checkEvery − 1 HVPs past
    // the last replica's convergence are spent.
    let unchecked = 0; // first step whose α and β have not been walked
    let chunkStarted = performance.now();
    for (let j = 0; j < capacity; j++) {
      basis.readRow(j, q);
      operator.applyFlat(q, w);
      hvps++;
      basis.orthogonalise(w, j + 1);
      basis.finish(w, j);
      if (j + 1 < capacity && j + 1 - unchecked < checkEvery) continue;
      const history = await basis.history.read();
      const restart: number[] = [];
      let walked = unchecked;
      let allDone = false;
      for (; walked <= j && restart.length === 0 && !allDone; walked++) {
        for (let b = 0; b < batch; b++) {
          if (!active[b]) continue;
          const a = history[b * 2 * capacity + 2 * walked];
          const bt = history[b * 2 * capacity + 2 * walked + 1];
          if (!Number.isFinite(a) || !Number.isFinite(bt)) {
            active[b] = false; // a diverged replica (non-finite loss or parameters) stops here
            continue;
          }
          alpha[b].push(a);
          beta[b].push(bt);
          steps[b] = walked + 1;
          scale[b] = Math.max(scale[b], Math.abs(a), bt);
          if (options.done(b, alpha[b], beta[b]) || walked + 1 >= capacity) {
            active[b] = false;
          } else if (bt <= options.breakdownTolerance * scale[b]) {
            beta[b][walked] = 0;
            restarts[b]++;
            restart.push(b);
          }
        }
        allDone = !active.some(Boolean);
      }
      const now = performance.now();
      for (let s = unchecked; s < walked; s++) stepMs.push((now - chunkStarted) / (walked - unchecked));
      chunkStarted = now;
      if (allDone) break;
      unchecked = walked;
      if (restart.length > 0) {
        // Step walked − 1 broke down for these replicas: restart them in row `walked`, then make the
        // steps from there again (for every replica: they run in lockstep).
        const s = walked - 1;
        const mask = new Uint32Array(batch);
        for (const b of restart) mask[b] = 1;
        const maskTensor = engine.tensor(mask, [1], { batch, dtype: 'u32' });
        const fresh = randomVectors(operator, 'normal', {
          seed: options.seed,
          stream: options.stream,
          counter: counter + s + 1,
          replicaOffset: options.replicaOffset,
        });
        basis.orthogonalise(fresh, s + 1);
        basis.normalizeInto(fresh, s + 1, maskTensor);
        fresh.dispose();
        maskTensor.dispose();
        j = s;
      }
    }
    finished = true;
  } finally {
    q.dispose();
    w.dispose();
    if (!options.keepBasis || !finished) basis.dispose();
  }
  return { alpha, beta, steps, restarts, hvps, stepMs, basis: options.keepBasis ? basis : undefined };
}

export type Which = 'largest' | 'smallest' | 'magnitude';

/** Indices of the k most wanted Ritz values (values ascending), most wanted first. */
function wantedIndices(values: readonly number[], k: number, which: Which): number[] {
  const order = values.map((_, i) => i);
  if (which === 'largest') order.reverse();
  else if (which === 'magnitude') order.sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]));
  return order.slice(0, k);
}

export interface EigenOptions {
  /** 'largest' (algebraic, default), 'smallest' (most negative first), or 'magnitude'. */
  which?: Which;
  /** Stop once every wanted Ritz residual ‖Hx − θx‖ ≤ tolerance · max|θ| (default 1e-4). */
  tolerance?: number;
  /** Most HVPs per replica (default min(n, max(3k, 2k + 60))). */
  maxSteps?: number;
  seed?: number;
  /** Return the Ritz vectors as one [k, n] tensor per replica (unit norm, flat parameter order). */
  ritzVectors?: boolean;
  /** Relative β below which the Krylov space is invariant and a random restart follows (default 1e-5). */
  breakdownTolerance?: number;
  /** Global index of the operator's first replica (a shard of a larger run): keys the start vectors. */
  replicaOffset?: number;
}

export interface EigenResult {
  /** Per replica (batch element of the operator): the k wanted eigenvalues, most wanted first. */
  values: number[][];
  /** Ritz residuals ‖H x_i − θ_i x_i‖ = β_m |y_i[m−1]| (same units as the eigenvalues). */
  residuals: number[][];
  converged: boolean[];
  /** HVPs each replica used before its residuals met the tolerance (or it stopped). */
  hvps: number[];
  /**
   * HVP launches made: replicas run in lockstep, and α, β are read back every LANCZOS_CHECK_EVERY
   * steps, so up to that many minus one past the largest of `hvps` (more after a restart).
   */
  totalHvps: number;
  restarts: number[];
  /** Per replica, the most wanted Ritz value after each step (convergence history). */
  history: number[][];
  /** Wall-clock milliseconds of each step (HVP, reorthogonalisation, readback of α and β, tridiagonal solve). */
  stepMs: number[];
  /** Ritz vectors [k, n] per replica when asked (caller disposes). */
  vectors?: Tensor;
}

/**
 * The k wanted eigenvalues of the Hessian of every replica by Lanczos with full reorthogonalisation,
 * stopping on Ritz residuals. A single-vector Krylov method: an exactly repeated eigenvalue is found
 * once per invariant subspace met, then again after a restart.
 */
export async function topEigenvalues(
  operator: HessianOperator,
  k: number,
  options: EigenOptions = {},
): Promise<EigenResult> {
  const n = operator.size;
  positiveInteger('k', k);
  if (k > n) throw new InputError('k', `is ${k}, but the model has only ${n} parameters`);
  const which = options.which ?? 'largest';
  if (!['largest', 'smallest', 'magnitude'].includes(which))
    throw new InputError('which', `must be 'largest', 'smallest' or 'magnitude', got ${which}`);
  const tolerance = options.tolerance ?? 1e-4;
  if (!(tolerance > 0)) throw new InputError('tolerance', `must be positive, got ${tolerance}`);
  const maxSteps = Math.min(n, options.maxSteps ?? Math.max(3 * k, 2 * k + 60));
  if (!Number.isInteger(maxSteps) || maxSteps < k)
    throw new InputError('maxSteps', `must be an integer ≥ k = ${k}, got ${options.maxSteps}`);
  const batch = operator.batch;
  const history: number[][] = Array.from({ length: batch }, () => []);
  const converged = new Array<boolean>(batch).fill(false);
  const eigen: (TridiagonalEigen | undefined)[] = new Array(batch);
  const run = await lanczosRecurrence(operator, {
    maxSteps,
    seed: options.seed ?? 0,
    stream: STREAM_LANCZOS,
    replicaOffset: options.replicaOffset,
    start: 'normal',
    breakdownTolerance: options.breakdownTolerance ?? 1e-5,
    keepBasis: options.ritzVectors ?? false,
    done: (b, alpha, beta) => {
      const e = tridiagonalEigen(alpha, beta.slice(0, -1));
      eigen[b] = e;
      const wanted = wantedIndices(e.values, k, which);
      history[b].push(e.values[wanted[0]]);
      if (alpha.length < k) return false;
      const betaM = beta[beta.length - 1];
      const spectral = Math.max(...e.values.map(Math.abs));
      converged[b] = wanted.every((i) => betaM * Math.abs(e.last[i]) <= tolerance * spectral);
      // The basis spans the whole space: Ritz values are the eigenvalues.
      if (alpha.length === n) converged[b] = true;
      return converged[b];
    },
  });
  const values: number[][] = [];
  const residuals: number[][] = [];
  const selected: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const e = eigen[b];
    const m = run.steps[b];
    if (!e || m < k) {
      values.push(new Array(k).fill(Number.NaN));
      residuals.push(new Array(k).fill(Number.NaN));
      selected.push([]);
      continue;
    }
    const wanted = wantedIndices(e.values, k, which);
    const betaM = run.beta[b][m - 1];
    selected.push(wanted);
    values.push(wanted.map((i) => e.values[i]));
    residuals.push(wanted.map((i) => (m === n ? 0 : betaM * Math.abs(e.last[i]))));
  }
  let vectors: Tensor | undefined;
  if (run.basis) {
    const basis = run.basis;
    // x_i = Σ_j y_i[j] q_j: Y [k, capacity] (zero past each replica's steps) times the basis.
    const Y = new Float32Array(batch * k * basis.capacity);
    for (let b = 0; b < batch; b++) {
      const e = eigen[b];
      if (!e) continue;
      selected[b].forEach((i, row) => {
        for (let j = 0; j < run.steps[b]; j++) Y[(b * k + row) * basis.capacity + j] = e.vectors.get(j, i);
      });
    }
    const y = operator.engine.tensor(Y, [k, basis.capacity], { batch });
    vectors = matmul(operator.engine, y, basis.rows);
    y.dispose();
    basis.dispose();
  }
  return {
    values,
    residuals,
    converged,
    hvps: run.steps,
    totalHvps: run.hvps,
    restarts: run.restarts,
    history,
    stepMs: run.stepMs,
    vectors,
  };
}

export interface PowerOptions {
  /** Stop once ‖Hv − λv‖ ≤ tolerance · |λ| (default 1e-3). */
  tolerance?: number;
  maxIterations?: number;
  /** Read λ and the residual back every this many iterations (default 1). */
  checkEvery?: number;
  seed?: number;
  /** Global index of the operator's first replica (a shard of a larger run): keys the start vectors. */
  replicaOffset?: number;
}

export interface PowerResult {
  /** Per replica: the Rayleigh quotient λ = vᵀHv of the dominant (largest |λ|) eigenvalue. */
  values: number[];
  /** ‖Hv − λv‖ at the last check. */
  residuals: number[];
  converged: boolean[];
  /** HVPs each replica used until its residual met the tolerance (or the last). */
  hvps: number[];
  totalHvps: number;
  /** Per replica, λ at every check. */
  history: number[][];
}

/**
 * Power iteration v ← Hv/‖Hv‖ for every replica: the eigenvalue of largest magnitude (λ_max for a
 * positive semi-definite Hessian), its Rayleigh quotient and residual.
 */
export async function powerIteration(
  operator: HessianOperator,
  options: PowerOptions = {},
): Promise<PowerResult> {
  const tolerance = options.tolerance ?? 1e-3;
  const maxIterations = options.maxIterations ?? 1000;
  const checkEvery = options.checkEvery ?? 1;
  if (!(tolerance > 0)) throw new InputError('tolerance', `must be positive, got ${tolerance}`);
  positiveInteger('maxIterations', maxIterations);
  positiveInteger('checkEvery', checkEvery);
  // Every iteration applies H at the same parameters: tape the forward pass and gradient once.
  const seed = options.seed ?? 0;
  const replicaOffset = options.replicaOffset ?? 0;
  return operator.atPoint(() =>
    power(operator, { tolerance, maxIterations, checkEvery, seed, replicaOffset }),
  );
}

async function power(operator: HessianOperator, options: Required<PowerOptions>): Promise<PowerResult> {
  const { tolerance, maxIterations, checkEvery } = options;
  const { engine, batch, size: n } = operator;
  const v = engine.empty([n], { batch });
  const hv = engine.empty([n], { batch });
  const stats = engine.empty([3], { batch });
  const values = new Array<number>(batch).fill(Number.NaN);
  const residuals = new Array<number>(batch).fill(Number.NaN);
  const converged = new Array<boolean>(batch).fill(false);
  const hvps = new Array<number>(batch).fill(0);
  const history: number[][] = Array.from({ length: batch }, () => []);
  let total = 0;
  try {
    fill(engine, v, 0);
    const start = randomVectors(operator, 'normal', {
      seed: options.seed ?? 0,
      stream: STREAM_POWER,
      counter: 0,
      replicaOffset: options.replicaOffset,
    });
    powerStep(engine, v, start, stats); // v ← start / ‖start‖
    start.dispose();
    for (let it = 1; it <= maxIterations; it++) {
      operator.applyFlat(v, hv);
      total++;
      powerStep(engine, v, hv, stats);
      if (it % checkEvery !== 0 && it !== maxIterations) continue;
      const s = await stats.read();
      let anyActive = false;
      for (let b = 0; b < batch; b++) {
        if (converged[b]) continue;
        values[b] = s[3 * b];
        residuals[b] = s[3 * b + 1];
        hvps[b] = it;
        history[b].push(values[b]);
        if (residuals[b] <= tolerance * Math.abs(values[b])) converged[b] = true;
        else if (Number.isFinite(values[b])) anyActive = true;
      }
      if (!anyActive) break;
    }
  } finally {
    v.dispose();
    hv.dispose();
    stats.dispose();
  }
  return { values, residuals, converged, hvps, totalHvps: total, history };
}
