/**
 * Exact curvature of a deep linear network under MSE, in float64, from its weights and an evaluation
 * set: the loss L = (1/N) Σ ½‖W_D⋯W_1 x_i − y_i‖² depends on the data only through the moments
 * Σ̂_xx = (1/N) Σ x xᵀ and Σ̂_yx = (1/N) Σ y xᵀ, so the whole n × n Hessian costs n small matrix
 * chains per replica — no pass over the samples, no GPU round trip. The gradient fluctuation
 * S = (1/N) Σ ‖∇ℓ_i‖² factorises per layer: ‖∇_{W_l} ℓ_i‖² = ‖A_lᵀ r_i‖² ‖B_l x_i‖².
 *
 * Notation (layers 0 … D−1, W_l is h_{l+1} × h_l): B_l = W_{l−1}⋯W_0 (h_l × d, B_0 = I),
 * A_l = W_{D−1}⋯W_{l+1} (m × h_{l+1}, A_{D−1} = I), P = A_l W_l B_l, E = P Σ̂_xx − Σ̂_yx.
 * ∇_{W_l} L = A_lᵀ E B_lᵀ, and for a direction V: d∇_{W_l} = dA_lᵀ E B_lᵀ + A_lᵀ dP Σ̂_xx B_lᵀ +
 * A_lᵀ E dB_lᵀ with dP = Σ_j A_j V_j B_j, dA_l = Σ_{j>l} A_j V_j Q_{j,l}, dB_l = Σ_{j<l} Q_{l,j} V_j B_j,
 * Q_{a,b} = W_{a−1}⋯W_{b+1} (the layers strictly between b and a).
 */
import { InputError } from '../errors.ts';
import { symmetricEigenvalues } from './tridiagonal.ts';

/** A row-major float64 matrix. */
interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

function mat(rows: number, cols: number, data = new Float64Array(rows * cols)): Mat {
  return { rows, cols, data };
}

function identity(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** op(A)·op(B) with optional transposes. */
function mul(a: Mat, b: Mat, transposeA = false, transposeB = false): Mat {
  const rows = transposeA ? a.cols : a.rows;
  const inner = transposeA ? a.rows : a.cols;
  const cols = transposeB ? b.rows : b.cols;
  if (inner !== (transposeB ? b.cols : b.rows)) throw new Error('deep-linear-exact: shape mismatch');
  const out = mat(rows, cols);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < inner; k++) {
      const aik = transposeA ? a.data[k * a.cols + i] : a.data[i * a.cols + k];
      if (aik === 0) continue;
      for (let j = 0; j < cols; j++) {
        out.data[i * cols + j] += aik * (transposeB ? b.data[j * b.cols + k] : b.data[k * b.cols + j]);
      }
    }
  }
  return out;
}

/** vᵀ S v for a square row-major S. */
function quadratic(S: Float64Array, v: Float64Array): number {
  const n = v.length;
  let sum = 0;
  for (let a = 0; a < n; a++) {
    let row = 0;
    for (let b = 0; b < n; b++) row += S[a * n + b] * v[b];
    sum += v[a] * row;
  }
  return sum;
}

function addInto(target: Mat, source: Mat): void {
  for (let i = 0; i < target.data.length; i++) target.data[i] += source.data[i];
}

export interface DeepLinearCurvature {
  /** Per replica: Tr H, the Hessian's eigenvalues (ascending) and S = mean ‖∇ℓ_i‖². */
  trace: number[];
  eigenvalues: number[][];
  fluctuation: number[];
}

export interface DeepLinearEvaluation {
  /** Layer widths h_0 = d, …, h_D = m. */
  widths: readonly number[];
  /** Per parameter tensor (layer), all replicas: replica-major, each h_{l+1} × h_l row-major. */
  weights: readonly ArrayLike<number>[];
  /** Evaluation inputs [replicas, N, d] and targets [replicas, N, m], replica-major. */
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  samples: number;
  replicas: number;
}

/** Exact Tr H, eigenvalues and fluctuation of every replica (see the module comment). */
export function deepLinearCurvature(evaluation: DeepLinearEvaluation): DeepLinearCurvature {
  const { widths, weights, x, y, samples: N, replicas } = evaluation;
  const depth = widths.length - 1;
  const d = widths[0];
  const m = widths[depth];
  if (weights.length !== depth)
    throw new InputError('weights', `${weights.length} layers for depth ${depth}`);
  if (x.length !== replicas * N * d || y.length !== replicas * N * m)
    throw new InputError('evaluation', `expected ${replicas} × ${N} samples of ${d} inputs and ${m} targets`);
  const out: DeepLinearCurvature = { trace: [], eigenvalues: [], fluctuation: [] };
  for (let r = 0; r < replicas; r++) {
    const W = widths.slice(0, depth).map((cols, l) => {
      const rows = widths[l + 1];
      const size = rows * cols;
      return mat(
        rows,
        cols,
        Float64Array.from({ length: size }, (_, k) => weights[l][r * size + k]),
      );
    });
    // Q[a][b] = W_{a−1}⋯W_{b+1} for −1 ≤ b < a ≤ D (indices shifted by one: Q[a][b + 1]).
    const Q: Mat[][] = [];
    for (let a = 0; a <= depth; a++) {
      Q[a] = [];
      for (let b = a - 1; b >= -1; b--) {
        Q[a][b + 1] = b === a - 1 ? identity(widths[a]) : mul(Q[a][b + 2], W[b + 1]);
      }
    }
    const between = (a: number, b: number) => Q[a][b + 1];
    const B = W.map((_, l) => between(l, -1)); // h_l × d
    const A = W.map((_, l) => between(depth, l)); // m × h_{l+1}
    const P = between(depth, -1);
    // Moments of this replica's evaluation set, and the per-sample gradient norms as quadratic forms:
    // ‖A_lᵀ r‖² = rᵀ (A_l A_lᵀ) r and ‖B_l x‖² = xᵀ (B_lᵀ B_l) x (plain loops: this runs N times).
    const sxx = mat(d, d);
    const syx = mat(m, d);
    const G = A.map((a) => mul(a, a, false, true).data); // m × m
    const K = B.map((b) => mul(b, b, true).data); // d × d
    const xi = new Float64Array(d);
    const ri = new Float64Array(m);
    let fluctuation = 0;
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < d; k++) xi[k] = x[(r * N + i) * d + k];
      for (let a = 0; a < m; a++) {
        const ya = y[(r * N + i) * m + a];
        let f = 0;
        for (let k = 0; k < d; k++) {
          f += P.data[a * d + k] * xi[k];
          syx.data[a * d + k] += ya * xi[k];
        }
        ri[a] = f - ya;
      }
      for (let a = 0; a < d; a++) for (let k = 0; k < d; k++) sxx.data[a * d + k] += xi[a] * xi[k];
      for (let l = 0; l < depth; l++) {
        fluctuation += quadratic(G[l], ri) * quadratic(K[l], xi);
      }
    }
    for (const s of [sxx, syx]) for (let k = 0; k < s.data.length; k++) s.data[k] /= N;
    const E = mul(P, sxx);
    for (let k = 0; k < E.data.length; k++) E.data[k] -= syx.data[k];

    // Column by column: H e_(j, a, b) for every weight entry (layer j, row a, column b).
    const n = W.reduce((sum, w) => sum + w.data.length, 0);
    const hessian: number[][] = [];
    for (let j = 0; j < depth; j++) {
      for (let entry = 0; entry < W[j].data.length; entry++) {
        const V = mat(W[j].rows, W[j].cols);
        V.data[entry] = 1;
        // dP = A_j V_j B_j, and the pieces of dA_l (l < j) and dB_l (l > j).
        const AV = mul(A[j], V);
        const VB = mul(V, B[j]);
        const dPsxx = mul(mul(AV, B[j]), sxx);
        const column: number[] = [];
        for (let l = 0; l < depth; l++) {
          const dGrad = mul(mul(A[l], dPsxx, true), B[l], false, true);
          if (j > l) addInto(dGrad, mul(mul(mul(AV, between(j, l)), E, true), B[l], false, true)); // dA_lᵀ E B_lᵀ
          if (j < l) addInto(dGrad, mul(mul(A[l], E, true), mul(between(l, j), VB), false, true)); // A_lᵀ E dB_lᵀ
          for (const v of dGrad.data) column.push(v);
        }
        hessian.push(column);
      }
    }
    // Symmetrise the float64 round-off before the eigen-solve.
    for (let i = 0; i < n; i++)
      for (let k = 0; k < i; k++) {
        const mean = (hessian[i][k] + hessian[k][i]) / 2;
        hessian[i][k] = mean;
        hessian[k][i] = mean;
      }
    out.trace.push(hessian.reduce((sum, row, i) => sum + row[i], 0));
    out.eigenvalues.push(symmetricEigenvalues(hessian));
    out.fluctuation.push(fluctuation / N);
  }
  return out;
}
