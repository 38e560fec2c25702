/**
 * Closed forms for the global minimum of a deep linear network that SGD selects (minimal gradient
 * fluctuation on the symmetry orbit), from /work/shared/theory.md. Loss ℓ = ½‖W_D⋯W_1 x − y‖²,
 * x ~ N(0, Σ_x), y = V x + ε, ε ~ N(0, Σ_ε); S is the per-sample E‖∇ℓ‖², T the Hessian trace.
 */
import { InputError, positiveInteger } from '../errors.ts';
import { lambdaMaxAt, lambdaMaxMultiplicityAt } from './hessian.ts';
import { invSqrtSym, invSym, type Matrix, MlMatrix, nuclearNorm, sqrtSym, thinSvd, toMl } from './linalg.ts';
import { validateTheoryConfig } from './validate.ts';

/** Input of `deepLinearTheory`: V is m×d, Σ_x (default I_d) d×d, Σ_ε m×m. */
export interface DeepLinearInput {
  depth: number;
  V: Matrix;
  sigmaX?: Matrix;
  sigmaEps: Matrix;
}

export interface DeepLinearTheory {
  /** T* = Tr H at the SGD-selected minimum. */
  sharpness: number;
  /** S* = E‖∇ℓ‖² per sample there (a batch of size B has S* / B). */
  fluctuation: number;
  /** Largest eigenvalue of the Hessian at `weights`. */
  lambdaMax: number;
  /** How many eigenvalues equal λ_max there (to 1e-9 relative). */
  lambdaMaxMultiplicity: number;
  /** T_min: the smallest Hessian trace anywhere on the minimum manifold. */
  minSharpness: number;
  /** W_1..W_D of one member of the minimal orbit (hidden widths = rank r). */
  weights: Matrix[];
  /** σ = ‖Σ_ε^{1/2} V Σ_x^{1/2}‖_*. */
  nuclearNorm: number;
  traceSigmaX: number;
  traceSigmaEps: number;
  /** τ = Σ_k s_k u_kᵀ Σ_ε^{-1} u_k. */
  tau: number;
  depth: number;
  /** d (columns of V). */
  inputDim: number;
  /** m (rows of V). */
  outputDim: number;
  /** r = rank V = hidden width of `weights`. */
  rank: number;
}

/**
 * The SGD-selected minimum of a deep linear network in closed form (theory.md): S*, T*, λ_max*,
 * the predicted weights and the flattest-manifold T_min. Throws InputError for bad input.
 */
export function deepLinearTheory(
  input: DeepLinearInput,
  options: { lambdaMax?: boolean } = {},
): DeepLinearTheory {
  const { depth: D, V, sigmaX, sigmaEps } = validateTheoryConfig(input);
  const v = toMl(V);
  const sx = toMl(sigmaX);
  const se = toMl(sigmaEps);
  const m = v.rows;
  const d = v.columns;
  const a = sx.trace();
  const b = se.trace();
  const sxHalf = sqrtSym(sx);
  const seHalf = sqrtSym(se);
  const G = seHalf.mmul(v).mmul(sxHalf);
  const { U, s, Q, rank: r } = thinSvd(G);
  const sigma = s.reduce((acc, x) => acc + x, 0);
  const seInv = invSym(se);
  let tau = 0;
  for (let k = 0; k < r; k++) {
    const u = U.getColumnVector(k);
    tau += s[k] * u.transpose().mmul(seInv).mmul(u).get(0, 0);
  }
  // c = (ab/σ²)^{1/D}; S* = D σ² c and T* = σ c ((D − 1)τ + mσ/b), with the powers combined so
  // that neither σ² nor ab is formed (no overflow or underflow for extreme scales).
  const abRoot = a ** (1 / D) * b ** (1 / D);
  const fluctuation = D * sigma ** ((2 * (D - 1)) / D) * abRoot;
  const sharpness = sigma ** ((D - 2) / D) * abRoot * ((D - 1) * tau + (m * sigma) / b);
  const minSharpness = D * nuclearNorm(v.mmul(sxHalf)) ** ((2 * (D - 1)) / D) * (m * a) ** (1 / D);
  if (![fluctuation, sharpness, minSharpness].every(Number.isFinite)) {
    throw new InputError('config', 'the results overflow float64; rescale V, sigmaX and sigmaEps');
  }
  const weights = predictedWeights(D, v, U, s, Q, sx, se, a, b, sigma);
  const lambdaMax = options.lambdaMax === false ? Number.NaN : lambdaMaxAt(weights, sx);
  const lambdaMaxMultiplicity =
    options.lambdaMax === false ? Number.NaN : lambdaMaxMultiplicityAt(weights, sx);
  return {
    sharpness,
    fluctuation,
    lambdaMax,
    lambdaMaxMultiplicity,
    minSharpness,
    weights: weights.map((w) => w.to2DArray()),
    nuclearNorm: sigma,
    traceSigmaX: a,
    traceSigmaEps: b,
    tau,
    depth: D,
    inputDim: d,
    outputDim: m,
    rank: r,
  };
}

/**
 * One member of the minimal orbit (theory.md): p_i = (a/σ)(σ²/(ab))^{i/D}, P_i = √p_i S^{1/2},
 * W_1 = P_1 Qᵀ Σ_x^{-1/2}, W_i = P_i P_{i−1}^{-1}, W_D = Σ_ε^{-1/2} U S P_{D−1}^{-1}; W_1 = V if D = 1.
 */
function predictedWeights(
  D: number,
  v: MlMatrix,
  U: MlMatrix,
  s: number[],
  Q: MlMatrix,
  sx: MlMatrix,
  se: MlMatrix,
  a: number,
  b: number,
  sigma: number,
): MlMatrix[] {
  if (D === 1) return [v.clone()];
  const r = s.length;
  // p_i = (a/σ)(σ²/(ab))^{i/D}, written as a product of powers
  const p = (i: number): number => a ** (1 - i / D) * b ** (-i / D) * sigma ** ((2 * i) / D - 1);
  const diag = (f: (k: number) => number): MlMatrix =>
    MlMatrix.diag(Array.from({ length: r }, (_, k) => f(k)));
  const weights: MlMatrix[] = [];
  weights.push(
    diag((k) => Math.sqrt(p(1) * s[k]))
      .mmul(Q.transpose())
      .mmul(invSqrtSym(sx)),
  );
  for (let i = 2; i <= D - 1; i++) weights.push(diag(() => Math.sqrt(p(i) / p(i - 1))));
  weights.push(
    invSqrtSym(se)
      .mmul(U)
      .mmul(diag((k) => Math.sqrt(s[k] / p(D - 1)))),
  );
  return weights;
}

/** Input of `initSharpness`: all hidden widths h, weights i.i.d. N(0, scale²). */
export interface InitInput {
  depth: number;
  outputDim: number;
  traceSigmaX: number;
  width: number;
  scale: number;
}

/**
 * Expected sharpness E[T] at an i.i.d. N(0, s²) initialisation with hidden widths h:
 * D · m · Tr Σ_x · (h s²)^{D−1} (T the Gauss–Newton trace Σ_i ‖L_i‖² Tr(R_i Σ_x R_iᵀ)).
 */
export function initSharpness({ depth, outputDim, traceSigmaX, width, scale }: InitInput): number {
  positiveInteger('depth', depth);
  positiveInteger('outputDim', outputDim);
  positiveInteger('width', width);
  if (!(Number.isFinite(traceSigmaX) && traceSigmaX > 0)) {
    throw new InputError('traceSigmaX', `expected a positive number, got ${traceSigmaX}`);
  }
  if (!(Number.isFinite(scale) && scale >= 0))
    throw new InputError('scale', `expected a number ≥ 0, got ${scale}`);
  return depth * outputDim * traceSigmaX * (width * scale * scale) ** (depth - 1);
}
