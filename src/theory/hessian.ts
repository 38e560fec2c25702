/**
 * Quantities of a deep linear network f(x) = W_D ⋯ W_1 x at arbitrary weights, for the loss
 * ℓ = ½‖f(x) − y‖², x ~ N(0, Σ_x), y = V x + ε, ε ~ N(0, Σ_ε). Notation of theory.md:
 * L_i = W_D ⋯ W_{i+1} (L_D = I_m), R_i = W_{i−1} ⋯ W_1 (R_1 = I_d). Parameters are ordered
 * W_1..W_D, each flattened row-major.
 */
import { InputError } from '../errors.ts';
import { frob2, type Matrix, MlMatrix, sqrtSym, symmetricEigen, toMl, traceQuad } from './linalg.ts';

/** L_i and R_i of every layer (0-based arrays: L[i − 1] = L_i), plus the dimensions. */
export interface Chain {
  W: MlMatrix[];
  L: MlMatrix[];
  R: MlMatrix[];
  /** Input dimension d. */
  d: number;
  /** Output dimension m. */
  m: number;
}

/** Checks a weight list's shapes (W_{i+1}'s columns = W_i's rows) and builds the chain. */
export function buildChain(weights: ReadonlyArray<Matrix | MlMatrix>): Chain {
  if (!Array.isArray(weights) || weights.length === 0)
    throw new InputError('weights', 'expected at least one matrix');
  const W = weights.map((w, i) => {
    if (w instanceof MlMatrix) return w;
    if (!Array.isArray(w) || w.length === 0 || !Array.isArray(w[0]) || w[0].length === 0) {
      throw new InputError(`weights[${i}]`, 'expected a non-empty array of rows');
    }
    if (w.some((row) => !Array.isArray(row) || row.length !== w[0].length)) {
      throw new InputError(`weights[${i}]`, 'rows have different lengths');
    }
    return toMl(w);
  });
  for (let i = 1; i < W.length; i++) {
    if (W[i].columns !== W[i - 1].rows) {
      throw new InputError(
        `weights[${i}]`,
        `has ${W[i].columns} columns but weights[${i - 1}] has ${W[i - 1].rows} rows (W_${i + 1} W_${i} undefined)`,
      );
    }
  }
  const D = W.length;
  const d = W[0].columns;
  const m = W[D - 1].rows;
  const R: MlMatrix[] = new Array(D);
  const L: MlMatrix[] = new Array(D);
  R[0] = MlMatrix.eye(d);
  for (let i = 1; i < D; i++) R[i] = W[i - 1].mmul(R[i - 1]);
  L[D - 1] = MlMatrix.eye(m);
  for (let i = D - 2; i >= 0; i--) L[i] = L[i + 1].mmul(W[i + 1]);
  return { W, L, R, d, m };
}

/** A covariance as an ml-matrix, checked to be n × n (the chain's input or output width). */
function squareOf(a: Matrix | MlMatrix, n: number, field: string): MlMatrix {
  const matrix = toMl(a);
  if (matrix.rows !== n || matrix.columns !== n) {
    throw new InputError(
      field,
      `must be ${n}×${n} to match the weights, got ${matrix.rows}×${matrix.columns}`,
    );
  }
  return matrix;
}

/** Product W_D ⋯ W_1 (the end-to-end matrix). */
export function endToEnd(weights: ReadonlyArray<Matrix | MlMatrix>): Matrix {
  const { W, R } = buildChain(weights);
  return W[W.length - 1].mmul(R[R.length - 1]).to2DArray();
}

/**
 * Gradient fluctuation S(θ) = E‖∇_θ ℓ‖² per sample at a global minimum (W_D ⋯ W_1 = V):
 * Σ_i Tr(L_iᵀ Σ_ε L_i) · Tr(R_i Σ_x R_iᵀ).
 */
export function fluctuationAt(
  weights: ReadonlyArray<Matrix | MlMatrix>,
  sigmaX: Matrix | MlMatrix,
  sigmaEps: Matrix | MlMatrix,
): number {
  const { L, R, d, m } = buildChain(weights);
  const sx = squareOf(sigmaX, d, 'sigmaX');
  const se = squareOf(sigmaEps, m, 'sigmaEps');
  let s = 0;
  for (let i = 0; i < L.length; i++) s += traceQuad(L[i].transpose(), se) * traceQuad(R[i], sx);
  return s;
}

/**
 * Sharpness T(θ) = Tr of the Gauss–Newton Hessian E[JᵀJ] = Σ_i ‖L_i‖_F² · Tr(R_i Σ_x R_iᵀ);
 * equals Tr E[∇²ℓ] at a global minimum.
 */
export function sharpnessAt(weights: ReadonlyArray<Matrix | MlMatrix>, sigmaX: Matrix | MlMatrix): number {
  const { L, R, d } = buildChain(weights);
  const sx = squareOf(sigmaX, d, 'sigmaX');
  let t = 0;
  for (let i = 0; i < L.length; i++) t += frob2(L[i]) * traceQuad(R[i], sx);
  return t;
}

/** Number of parameters Σ_i h_i h_{i−1}. */
export function parameterCount(weights: ReadonlyArray<Matrix | MlMatrix>): number {
  return buildChain(weights).W.reduce((n, w) => n + w.rows * w.columns, 0);
}

/**
 * Dense Gauss–Newton Hessian (n×n, the population Hessian at a global minimum), parameters W_1..W_D
 * each row-major: block (i, j) = (L_iᵀ L_j) ⊗ (R_i Σ_x R_jᵀ).
 */
export function denseHessian(weights: ReadonlyArray<Matrix | MlMatrix>, sigmaX: Matrix | MlMatrix): Matrix {
  const { W, L, R, d } = buildChain(weights);
  const sx = squareOf(sigmaX, d, 'sigmaX');
  const offsets: number[] = [0];
  for (const w of W) offsets.push(offsets[offsets.length - 1] + w.rows * w.columns);
  const n = offsets[W.length];
  const H = new MlMatrix(n, n);
  const RS = R.map((r) => r.mmul(sx));
  for (let i = 0; i < W.length; i++) {
    for (let j = 0; j < W.length; j++) {
      const block = L[i].transpose().mmul(L[j]).kroneckerProduct(RS[i].mmul(R[j].transpose()));
      H.setSubMatrix(block, offsets[i], offsets[j]);
    }
  }
  return H.to2DArray();
}

/**
 * Largest eigenvalue of the Gauss–Newton Hessian. H = KᵀK with K = Σ_i L_i ⊗ (R_i Σ_x^{1/2})ᵀ,
 * so it is also the top eigenvalue of K Kᵀ = Σ_i (L_i L_iᵀ) ⊗ (Σ_x^{1/2} R_iᵀ R_i Σ_x^{1/2}) (md×md);
 * the smaller of the two symmetric matrices is decomposed.
 */
export function lambdaMaxAt(weights: ReadonlyArray<Matrix | MlMatrix>, sigmaX: Matrix | MlMatrix): number {
  const values = gaussNewtonEigenvalues(weights, sigmaX);
  return values[values.length - 1];
}

/**
 * How many eigenvalues of the Gauss–Newton Hessian equal its largest to `relative` precision: λ_max's
 * multiplicity (a degenerate λ_max splits at first order when the weights move off the point).
 */
export function lambdaMaxMultiplicityAt(
  weights: ReadonlyArray<Matrix | MlMatrix>,
  sigmaX: Matrix | MlMatrix,
  relative = 1e-9,
): number {
  const values = gaussNewtonEigenvalues(weights, sigmaX);
  const top = values[values.length - 1];
  return values.filter((v) => v >= top - relative * Math.abs(top)).length;
}

/** The eigenvalues (ascending) of the smaller of H = KᵀK and K Kᵀ (see lambdaMaxAt): H's nonzero ones. */
function gaussNewtonEigenvalues(
  weights: ReadonlyArray<Matrix | MlMatrix>,
  sigmaX: Matrix | MlMatrix,
): number[] {
  const chain = buildChain(weights);
  const { L, R, d, m } = chain;
  const sx = squareOf(sigmaX, d, 'sigmaX');
  const n = chain.W.reduce((acc, w) => acc + w.rows * w.columns, 0);
  let gram: MlMatrix;
  if (n <= m * d) {
    gram = toMl(denseHessian(chain.W, sx));
  } else {
    const root = sqrtSym(sx);
    gram = new MlMatrix(m * d, m * d);
    for (let i = 0; i < L.length; i++) {
      const rs = R[i].mmul(root);
      gram.add(L[i].mmul(L[i].transpose()).kroneckerProduct(rs.transpose().mmul(rs)));
    }
  }
  return symmetricEigen(gram).values;
}

/**
 * Largest relative violation of the balance condition over the hidden spaces i = 1..D−1:
 * ‖Tr(R_i Σ_x R_iᵀ) L_iᵀ Σ_ε L_i − Tr(L_{i+1}ᵀ Σ_ε L_{i+1}) R_{i+1} Σ_x R_{i+1}ᵀ‖_F divided by the
 * larger of the two terms' norms (0 for D = 1). Zero exactly at the minimal-fluctuation orbit point.
 */
export function balanceResidual(
  weights: ReadonlyArray<Matrix | MlMatrix>,
  sigmaX: Matrix | MlMatrix,
  sigmaEps: Matrix | MlMatrix,
): number {
  const { L, R, d, m } = buildChain(weights);
  const sx = squareOf(sigmaX, d, 'sigmaX');
  const se = squareOf(sigmaEps, m, 'sigmaEps');
  let worst = 0;
  for (let i = 0; i + 1 < L.length; i++) {
    const { lhs, rhs } = balanceTerms(L, R, sx, se, i);
    const scale = Math.max(Math.sqrt(frob2(lhs)), Math.sqrt(frob2(rhs)));
    if (scale > 0) worst = Math.max(worst, Math.sqrt(frob2(lhs.clone().sub(rhs))) / scale);
  }
  return worst;
}

/** The two sides of the balance condition on hidden space i + 1 (0-based i, 0 ≤ i ≤ D − 2). */
export function balanceTerms(
  L: MlMatrix[],
  R: MlMatrix[],
  sx: MlMatrix,
  se: MlMatrix,
  i: number,
): { lhs: MlMatrix; rhs: MlMatrix } {
  const lhs = L[i].transpose().mmul(se).mmul(L[i]).mul(traceQuad(R[i], sx));
  const rhs = R[i + 1]
    .mmul(sx)
    .mmul(R[i + 1].transpose())
    .mul(traceQuad(L[i + 1].transpose(), se));
  return { lhs, rhs };
}
