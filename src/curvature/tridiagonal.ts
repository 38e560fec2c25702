/**
 * The small eigenproblems of the toolkit on the CPU in float64 with ml-matrix: Lanczos tridiagonals
 * (Ritz values, Ritz residuals, quadrature weights) and dense symmetric Hessians.
 */
import { Matrix as MlMatrix } from 'ml-matrix';
import { symmetricEigen } from '../theory/linalg.ts';

export interface TridiagonalEigen {
  /** Ritz values θ_i, ascending. */
  values: number[];
  /** First components y_i[0] of the unit eigenvectors (SLQ weights are their squares). */
  first: number[];
  /** Last components y_i[m−1] (the Ritz residual of θ_i is β_m·|y_i[m−1]|). */
  last: number[];
  /** Unit eigenvectors of T as columns (m × m). */
  vectors: MlMatrix;
}

/** Eigen-decomposition of the symmetric tridiagonal T with diagonal α (m) and off-diagonal β (m−1). */
export function tridiagonalEigen(alpha: readonly number[], beta: readonly number[]): TridiagonalEigen {
  const m = alpha.length;
  const T = new MlMatrix(m, m);
  for (let i = 0; i < m; i++) {
    T.set(i, i, alpha[i]);
    if (i + 1 < m) {
      T.set(i, i + 1, beta[i]);
      T.set(i + 1, i, beta[i]);
    }
  }
  const { values, vectors } = symmetricEigen(T);
  const first: number[] = [];
  const last: number[] = [];
  for (let k = 0; k < m; k++) {
    first.push(vectors.get(0, k));
    last.push(vectors.get(m - 1, k));
  }
  return { values, first, last, vectors };
}

/** Eigenvalues (ascending) of a dense symmetric matrix given as rows, in float64 (ml-matrix). */
export function symmetricEigenvalues(matrix: ArrayLike<ArrayLike<number>>): number[] {
  const rows = Array.from({ length: matrix.length }, (_, i) => Array.from(matrix[i]));
  return symmetricEigen(new MlMatrix(rows)).values;
}
