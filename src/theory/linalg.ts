/**
 * Thin helpers over ml-matrix (float64, CPU). Every decomposition comes from ml-matrix; this file
 * only wraps symmetric eigen-decompositions into functions of a symmetric matrix (sqrt, inverse
 * sqrt, exponential) and converts between `number[][]` (the public API's `Matrix`) and ml-matrix.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix, SingularValueDecomposition } from 'ml-matrix';

/** A dense matrix as an array of rows (the public API's matrix type). */
export type Matrix = number[][];

export { MlMatrix };

/** Wraps an array of rows into an ml-matrix (copies). */
export function toMl(a: Matrix | MlMatrix): MlMatrix {
  return a instanceof MlMatrix ? a : new MlMatrix(a);
}

/** Copies an ml-matrix back to an array of rows. */
export function toRows(a: MlMatrix): Matrix {
  return a.to2DArray();
}

/** Symmetrises (A + Aᵀ)/2; use before an eigen-decomposition that assumes symmetry. */
export function symmetrise(a: MlMatrix): MlMatrix {
  return a.clone().add(a.transpose()).mul(0.5);
}

/**
 * Eigen-decomposition of a symmetric matrix: eigenvalues ascending, eigenvectors as columns.
 * The matrix is scaled to max|a_ij| = 1 first (ml-matrix's QL iteration stalls on subnormal scales).
 */
export function symmetricEigen(a: MlMatrix): { values: number[]; vectors: MlMatrix } {
  let scale = 0;
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.columns; j++) scale = Math.max(scale, Math.abs(a.get(i, j)));
  if (!(scale > 0) || !Number.isFinite(scale)) {
    if (scale === 0) return { values: new Array(a.rows).fill(0), vectors: MlMatrix.eye(a.rows) };
    throw new RangeError('symmetricEigen: matrix has non-finite entries');
  }
  const evd = new EigenvalueDecomposition(symmetrise(a).div(scale), { assumeSymmetric: true });
  return { values: evd.realEigenvalues.map((v) => v * scale), vectors: evd.eigenvectorMatrix };
}

/** f(A) = Q f(Λ) Qᵀ for symmetric A = Q Λ Qᵀ. */
export function symmetricFunction(a: MlMatrix, f: (lambda: number) => number): MlMatrix {
  const { values, vectors } = symmetricEigen(a);
  const scaled = vectors.clone();
  for (let j = 0; j < values.length; j++) {
    const fj = f(values[j]);
    for (let i = 0; i < scaled.rows; i++) scaled.set(i, j, scaled.get(i, j) * fj);
  }
  return scaled.mmul(vectors.transpose());
}

/** Principal square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues clip to 0). */
export function sqrtSym(a: MlMatrix): MlMatrix {
  return symmetricFunction(a, (l) => Math.sqrt(Math.max(l, 0)));
}

/** Inverse principal square root of a symmetric positive definite matrix. */
export function invSqrtSym(a: MlMatrix): MlMatrix {
  return symmetricFunction(a, (l) => 1 / Math.sqrt(l));
}

/** Inverse of a symmetric positive definite matrix. */
export function invSym(a: MlMatrix): MlMatrix {
  return symmetricFunction(a, (l) => 1 / l);
}

/** Matrix exponential of a symmetric matrix (positive definite result). */
export function expSym(a: MlMatrix): MlMatrix {
  return symmetricFunction(a, Math.exp);
}

/** Largest eigenvalue of a symmetric matrix. */
export function topEigenvalue(a: MlMatrix): number {
  const { values } = symmetricEigen(a);
  return values[values.length - 1];
}

/** Thin SVD A = U diag(s) Qᵀ truncated to the numerical rank (s_k > max(m, n)·ε·s_1, as numpy's matrix_rank). */
export function thinSvd(a: MlMatrix): { U: MlMatrix; s: number[]; Q: MlMatrix; rank: number } {
  const svd = new SingularValueDecomposition(a, { autoTranspose: true });
  const all = svd.diagonal;
  const threshold = Math.max(a.rows, a.columns) * Number.EPSILON * (all[0] ?? 0);
  let rank = 0;
  while (rank < all.length && all[rank] > threshold) rank++;
  const U = svd.leftSingularVectors.subMatrix(0, a.rows - 1, 0, Math.max(rank, 1) - 1);
  const Q = svd.rightSingularVectors.subMatrix(0, a.columns - 1, 0, Math.max(rank, 1) - 1);
  return { U, s: all.slice(0, rank), Q, rank };
}

/** Nuclear norm (sum of singular values). */
export function nuclearNorm(a: MlMatrix): number {
  return thinSvd(a).s.reduce((acc, v) => acc + v, 0);
}

/** Frobenius norm squared. */
export function frob2(a: MlMatrix): number {
  let acc = 0;
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.columns; j++) acc += a.get(i, j) ** 2;
  return acc;
}

/** Tr(A Bᵀ) = Σ A_ij B_ij, the Frobenius inner product. */
export function frobInner(a: MlMatrix, b: MlMatrix): number {
  let acc = 0;
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.columns; j++) acc += a.get(i, j) * b.get(i, j);
  return acc;
}

/** Tr(A Σ Aᵀ) for symmetric Σ without forming the product's off-diagonal. */
export function traceQuad(a: MlMatrix, sigma: MlMatrix): number {
  return frobInner(a.mmul(sigma), a);
}
