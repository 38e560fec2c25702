/**
 * The independent numerical route of theory.md: start from a random factorisation of V and
 * minimise the gradient fluctuation S (per sample, loss ½‖f − y‖²) over the symmetry orbit
 * W_i → A_i W_i A_{i−1}^{-1}. Rotations leave S unchanged, so it suffices to move along symmetric
 * generators B_i: W_i ← e^{B_i} W_i, W_{i+1} ← W_{i+1} e^{−B_i}, with the gradient
 * ∂S/∂B_i = −2 Tr(R_i Σ_x R_iᵀ) L_iᵀ Σ_ε L_i + 2 Tr(L_{i+1}ᵀ Σ_ε L_{i+1}) R_{i+1} Σ_x R_{i+1}ᵀ.
 * Steps are L-BFGS directions in these generators with a backtracking (Armijo) line search.
 */
import { InputError } from '../errors.ts';
import { balanceTerms, buildChain, sharpnessAt } from './hessian.ts';
import { expSym, frob2, frobInner, type Matrix, MlMatrix, thinSvd, toMl, traceQuad } from './linalg.ts';
import { createRng, type Rng, randomOrthogonal } from './random.ts';
import { validateTheoryConfig } from './validate.ts';

export interface OrbitInput {
  depth: number;
  V: Matrix;
  sigmaX?: Matrix;
  sigmaEps: Matrix;
  /** Hidden widths h_1..h_{D−1} (each ≥ rank V); default rank V for all. */
  widths?: number[];
  /** Seed of the random starting factorisation (default 1). */
  seed?: number;
  /** Log-spread of the random invertible factors A_i: their singular values are e^{spread·N(0,1)} (default 1). */
  spread?: number;
  /** Stop when ‖∂S/∂B‖_F ≤ gradientTolerance · S (default 1e-11). */
  gradientTolerance?: number;
  /** Iteration cap (default 2000). */
  maxIterations?: number;
  /** L-BFGS memory (default 8). */
  memory?: number;
}

export interface OrbitResult {
  /** S at the point reached. */
  fluctuation: number;
  /** T at the point reached. */
  sharpness: number;
  /** W_1..W_D reached. */
  weights: Matrix[];
  iterations: number;
  /** Final ‖∂S/∂B‖_F (absolute). */
  gradientNorm: number;
  /** Whether the gradient tolerance was met. */
  converged: boolean;
  /** S at the random start. */
  initialFluctuation: number;
  /** ‖W_D⋯W_1 − V‖_F / ‖V‖_F at the point reached (round-off drift only). */
  productError: number;
}

type Tangent = MlMatrix[];

function dot(x: Tangent, y: Tangent): number {
  let acc = 0;
  for (let k = 0; k < x.length; k++) acc += frobInner(x[k], y[k]);
  return acc;
}

function scaled(x: Tangent, alpha: number): Tangent {
  return x.map((m) => m.clone().mul(alpha));
}

function axpy(y: Tangent, alpha: number, x: Tangent): Tangent {
  return y.map((m, k) => m.clone().add(x[k].clone().mul(alpha)));
}

/** S and ∂S/∂B_i (i = 1..D−1) at weights W. */
function evaluate(W: MlMatrix[], sx: MlMatrix, se: MlMatrix): { S: number; grad: Tangent } {
  const { L, R } = buildChain(W);
  let S = 0;
  for (let i = 0; i < L.length; i++) S += traceQuad(L[i].transpose(), se) * traceQuad(R[i], sx);
  const grad: Tangent = [];
  for (let i = 0; i + 1 < L.length; i++) {
    const { lhs, rhs } = balanceTerms(L, R, sx, se, i);
    const g = rhs.sub(lhs).mul(2);
    grad.push(g.add(g.transpose()).mul(0.5));
  }
  return { S, grad };
}

/** Moves along the orbit: W_i ← e^{B_i} W_i e^{−B_{i−1}} (B_0 = B_D = 0). */
function retract(W: MlMatrix[], B: Tangent): MlMatrix[] {
  const E = B.map((b) => expSym(b));
  const Einv = B.map((b) => expSym(b.clone().mul(-1)));
  return W.map((w, i) => {
    let out = w;
    if (i < B.length) out = E[i].mmul(out);
    if (i > 0) out = out.mmul(Einv[i - 1]);
    return out;
  });
}

/** An invertible r×r matrix O diag(e^{spread·g}) O'ᵀ and its inverse. */
function randomInvertible(rng: Rng, r: number, spread: number): { A: MlMatrix; Ainv: MlMatrix } {
  const O1 = randomOrthogonal(rng, r);
  const O2 = randomOrthogonal(rng, r);
  const g = Array.from({ length: r }, () => spread * rng.normal());
  const A = O1.mmul(MlMatrix.diag(g.map(Math.exp))).mmul(O2.transpose());
  const Ainv = O2.mmul(MlMatrix.diag(g.map((x) => Math.exp(-x)))).mmul(O1.transpose());
  return { A, Ainv };
}

/**
 * A random factorisation W_D⋯W_1 = V: from V = U diag(s) Qᵀ (rank r), the base W_1 = Qᵀ,
 * W_i = I_r, W_D = U diag(s) is moved by random invertible A_i and embedded in the hidden widths
 * h_i ≥ r by random isometries (so the rank-r part sits in a random subspace of each hidden layer).
 */
export function randomFactorisation(
  V: Matrix,
  depth: number,
  options: { widths?: number[]; seed?: number; spread?: number } = {},
): Matrix[] {
  const v = toMl(V);
  if (depth === 1) return [v.to2DArray()];
  const { U, s, Q, rank: r } = thinSvd(v);
  if (r === 0) throw new InputError('V', 'must not be zero');
  const widths = options.widths ?? Array.from({ length: depth - 1 }, () => r);
  if (!Array.isArray(widths) || widths.length !== depth - 1) {
    throw new InputError('widths', `expected ${depth - 1} hidden widths (depth − 1)`);
  }
  widths.forEach((h, i) => {
    if (!Number.isInteger(h) || h < r) {
      throw new InputError(`widths[${i}]`, `expected an integer ≥ rank V = ${r}, got ${h}`);
    }
  });
  const rng = createRng(options.seed ?? 1);
  const spread = options.spread ?? 1;
  const W: MlMatrix[] = [Q.transpose()];
  for (let i = 2; i < depth; i++) W.push(MlMatrix.eye(r));
  W.push(U.mmul(MlMatrix.diag(s)));
  const factors = widths.map(() => randomInvertible(rng, r, spread));
  const moved = W.map((w, i) => {
    let out = w;
    if (i < depth - 1) out = factors[i].A.mmul(out);
    if (i > 0) out = out.mmul(factors[i - 1].Ainv);
    return out;
  });
  const embeds = widths.map((h) => randomOrthogonal(rng, h).subMatrix(0, h - 1, 0, r - 1));
  return moved.map((w, i) => {
    let out = w;
    if (i < depth - 1) out = embeds[i].mmul(out);
    if (i > 0) out = out.mmul(embeds[i - 1].transpose());
    return out.to2DArray();
  });
}

/**
 * Minimises S over the orbit of a random factorisation of V (seeded), by L-BFGS steps on the
 * symmetric generators with an Armijo line search; S per sample, loss ½‖f − y‖².
 */
export function minimiseOrbit(input: OrbitInput): OrbitResult {
  const { depth, V, sigmaX, sigmaEps } = validateTheoryConfig({
    depth: input.depth,
    V: input.V,
    sigmaX: input.sigmaX,
    sigmaEps: input.sigmaEps,
  });
  const sx = toMl(sigmaX);
  const se = toMl(sigmaEps);
  const tol = input.gradientTolerance ?? 1e-11;
  const maxIterations = input.maxIterations ?? 2000;
  const memory = input.memory ?? 8;
  let W = randomFactorisation(V, depth, input).map((w) => toMl(w));
  let { S, grad } = evaluate(W, sx, se);
  const initialFluctuation = S;
  // Function values carry round-off of a few hundred ulps; below that, Armijo cannot see progress.
  const noise = () => 256 * Number.EPSILON * Math.abs(S);
  const history: { s: Tangent; y: Tangent; rho: number }[] = [];
  let iterations = 0;
  let gnorm = Math.sqrt(dot(grad, grad));
  let converged = gnorm <= tol * S;
  while (!converged && iterations < maxIterations) {
    // Two-loop recursion: direction = −H grad.
    let q = grad.map((g) => g.clone());
    const alphas: number[] = [];
    for (let k = history.length - 1; k >= 0; k--) {
      const h = history[k];
      const a = h.rho * dot(h.s, q);
      alphas[k] = a;
      q = axpy(q, -a, h.y);
    }
    let step0 = 1;
    if (history.length > 0) {
      const last = history[history.length - 1];
      q = scaled(q, dot(last.s, last.y) / dot(last.y, last.y));
    } else {
      step0 = 1 / gnorm; // first step: a generator of unit Frobenius norm
    }
    for (let k = 0; k < history.length; k++) {
      const h = history[k];
      const b = h.rho * dot(h.y, q);
      q = axpy(q, alphas[k] - b, h.s);
    }
    let direction = scaled(q, -1);
    let slope = dot(grad, direction);
    if (!(slope < 0)) {
      history.length = 0;
      direction = scaled(grad, -1);
      slope = -gnorm * gnorm;
      step0 = 1 / gnorm;
    }
    let alpha = step0;
    let accepted: { W: MlMatrix[]; S: number; grad: Tangent } | undefined;
    for (let tries = 0; tries < 60; tries++) {
      const trial = retract(W, scaled(direction, alpha));
      const value = evaluate(trial, sx, se);
      if (Number.isFinite(value.S) && value.S <= S + 1e-4 * alpha * slope + noise()) {
        accepted = { W: trial, ...value };
        break;
      }
      alpha *= 0.5;
    }
    iterations++;
    if (!accepted) break;
    const s = scaled(direction, alpha);
    const y = accepted.grad.map((g, k) => g.clone().sub(grad[k]));
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      history.push({ s, y, rho: 1 / sy });
      if (history.length > memory) history.shift();
    }
    W = accepted.W;
    S = accepted.S;
    grad = accepted.grad;
    gnorm = Math.sqrt(dot(grad, grad));
    converged = gnorm <= tol * S;
  }
  const { W: Wc, R } = buildChain(W);
  const product = Wc[Wc.length - 1].mmul(R[R.length - 1]);
  const v = toMl(V);
  const productError = Math.sqrt(frob2(product.sub(v)) / frob2(v));
  const weights = W.map((w) => w.to2DArray());
  return {
    fluctuation: S,
    sharpness: sharpnessAt(weights, sx),
    weights,
    iterations,
    gradientNorm: gnorm,
    converged,
    initialFluctuation,
    productError,
  };
}

/**
 * Distance between two factorisations modulo the rotations W_i → O_i W_i O_{i−1}ᵀ (which change
 * neither S, T nor the spectrum): max over hidden spaces of the relative Frobenius distance of the
 * invariant Gram matrices R_{i+1}ᵀ R_{i+1} (d×d). 0 for depth 1.
 */
export function orbitDistance(
  a: ReadonlyArray<Matrix | MlMatrix>,
  b: ReadonlyArray<Matrix | MlMatrix>,
): number {
  const ca = buildChain(a);
  const cb = buildChain(b);
  if (ca.W.length !== cb.W.length || ca.d !== cb.d) {
    throw new InputError('weights', 'the two factorisations have different depths or input dimensions');
  }
  let worst = 0;
  for (let i = 1; i < ca.R.length; i++) {
    const ga = ca.R[i].transpose().mmul(ca.R[i]);
    const gb = cb.R[i].transpose().mmul(cb.R[i]);
    worst = Math.max(worst, Math.sqrt(frob2(ga.clone().sub(gb)) / frob2(gb)));
  }
  return worst;
}
