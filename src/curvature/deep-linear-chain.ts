/**
 * The float64 Hessian of a deep linear network under MSE when the loss sees the data only through two
 * moments: L = ½ Tr(P Σxx Pᵀ) − Tr(P Σyxᵀ) + const with P = W_{D−1}⋯W_0. An evaluation set gives the
 * sample moments (Σ̂_xx, Σ̂_yx); a linear teacher gives the population ones (Σ_x, V Σ_x). Shared by
 * `deepLinearCurvature` (sample) and `populationCurvature` (population).
 *
 * Notation (layers 0 … D−1, W_l is h_{l+1} × h_l): B_l = W_{l−1}⋯W_0 (h_l × d, B_0 = I),
 * A_l = W_{D−1}⋯W_{l+1} (m × h_{l+1}, A_{D−1} = I), E = P Σxx − Σyx. ∇_{W_l} L = A_lᵀ E B_lᵀ, and for a
 * direction V: d∇_{W_l} = dA_lᵀ E B_lᵀ + A_lᵀ dP Σxx B_lᵀ + A_lᵀ E dB_lᵀ with dP = Σ_j A_j V_j B_j,
 * dA_l = Σ_{j>l} A_j V_j Q_{j,l}, dB_l = Σ_{j<l} Q_{l,j} V_j B_j, Q_{a,b} = W_{a−1}⋯W_{b+1} (the layers
 * strictly between b and a).
 */
import { InputError } from '../errors.ts';
import { symmetricEigenvalues, tridiagonalEigen } from './tridiagonal.ts';

/** A row-major float64 matrix. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array<ArrayBufferLike>;
}

export function mat(
  rows: number,
  cols: number,
  data: Float64Array<ArrayBufferLike> = new Float64Array(rows * cols),
): Mat {
  return { rows, cols, data };
}

export function identity(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** A row-major matrix from rows. */
export function fromRows(rows: readonly (readonly number[])[]): Mat {
  return mat(rows.length, rows[0].length, Float64Array.from(rows.flat()));
}

/** op(A)·op(B) with optional transposes. */
export function mul(a: Mat, b: Mat, transposeA = false, transposeB = false): Mat {
  const rows = transposeA ? a.cols : a.rows;
  const inner = transposeA ? a.rows : a.cols;
  const cols = transposeB ? b.rows : b.cols;
  if (inner !== (transposeB ? b.cols : b.rows)) throw new Error('deep-linear-chain: shape mismatch');
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

export function addInto(target: Mat, source: Mat, scale = 1): void {
  for (let i = 0; i < target.data.length; i++) target.data[i] += scale * source.data[i];
}

/** Tr(X Y) for square X, Y of equal size. */
export function traceOfProduct(x: Mat, y: Mat): number {
  let sum = 0;
  for (let i = 0; i < x.rows; i++)
    for (let k = 0; k < x.cols; k++) sum += x.data[i * x.cols + k] * y.data[k * y.cols + i];
  return sum;
}

/** The partial products of one replica's weights. */
export class DeepLinearChain {
  readonly depth: number;
  /** Parameters Σ h_{l+1} h_l; flat vectors are layer-major, each layer row-major. */
  readonly size: number;
  readonly A: Mat[];
  readonly B: Mat[];
  /** P = W_{D−1}⋯W_0 (m × d). */
  readonly P: Mat;
  private readonly Q: Mat[][];
  private readonly offsets: number[];

  constructor(
    readonly widths: readonly number[],
    readonly W: readonly Mat[],
  ) {
    const depth = widths.length - 1;
    if (W.length !== depth) throw new InputError('weights', `${W.length} layers for depth ${depth}`);
    this.depth = depth;
    // Q[a][b + 1] = W_{a−1}⋯W_{b+1} for −1 ≤ b < a ≤ D.
    this.Q = [];
    for (let a = 0; a <= depth; a++) {
      this.Q[a] = [];
      for (let b = a - 1; b >= -1; b--) {
        this.Q[a][b + 1] = b === a - 1 ? identity(widths[a]) : mul(this.Q[a][b + 2], W[b + 1]);
      }
    }
    this.B = W.map((_, l) => this.between(l, -1));
    this.A = W.map((_, l) => this.between(depth, l));
    this.P = this.between(depth, -1);
    this.offsets = [0];
    for (const w of W) this.offsets.push(this.offsets[this.offsets.length - 1] + w.data.length);
    this.size = this.offsets[depth];
  }

  /** Replica r's weights from per-layer arrays of all replicas (replica-major, row-major). */
  static ofReplica(
    widths: readonly number[],
    weights: readonly ArrayLike<number>[],
    r: number,
  ): DeepLinearChain {
    const W = weights.map((w, l) => {
      const size = widths[l + 1] * widths[l];
      return mat(
        widths[l + 1],
        widths[l],
        Float64Array.from({ length: size }, (_, k) => w[r * size + k]),
      );
    });
    return new DeepLinearChain(widths, W);
  }

  /** W_{a−1}⋯W_{b+1}. */
  between(a: number, b: number): Mat {
    return this.Q[a][b + 1];
  }

  /** E = P Σxx − Σyx. */
  residual(sxx: Mat, syx: Mat): Mat {
    const E = mul(this.P, sxx);
    addInto(E, syx, -1);
    return E;
  }

  /** H·v for the loss with moments Σxx (d × d) and residual E (from `residual`). */
  hvp(v: Float64Array, sxx: Mat, E: Mat): Float64Array {
    const V = this.W.map((w, l) => mat(w.rows, w.cols, v.subarray(this.offsets[l], this.offsets[l + 1])));
    const { A, B, depth } = this;
    const active = V.map((x) => x.data.some((value) => value !== 0));
    const AV = V.map((x, j) => (active[j] ? mul(A[j], x) : undefined));
    const dP = mat(this.P.rows, this.P.cols);
    for (let j = 0; j < depth; j++) {
      const av = AV[j];
      if (av) addInto(dP, mul(av, B[j]));
    }
    const dPsxx = mul(dP, sxx);
    const out = new Float64Array(this.size);
    for (let l = 0; l < depth; l++) {
      const dGrad = mul(mul(A[l], dPsxx, true), B[l], false, true);
      for (let j = 0; j < depth; j++) {
        const av = AV[j];
        if (!av) continue;
        // dA_lᵀ E B_lᵀ (j > l) and A_lᵀ E dB_lᵀ (j < l).
        if (j > l) addInto(dGrad, mul(mul(mul(av, this.between(j, l)), E, true), B[l], false, true));
        if (j < l)
          addInto(dGrad, mul(mul(A[l], E, true), mul(this.between(l, j), mul(V[j], B[j])), false, true));
      }
      out.set(dGrad.data, this.offsets[l]);
    }
    return out;
  }

  /** The dense Hessian, column by column (symmetrised against round-off). */
  hessian(sxx: Mat, E: Mat): Float64Array[] {
    const n = this.size;
    const columns: Float64Array[] = [];
    const unit = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      unit.fill(0);
      unit[k] = 1;
      columns.push(this.hvp(unit, sxx, E));
    }
    for (let i = 0; i < n; i++)
      for (let k = 0; k < i; k++) {
        const mean = (columns[i][k] + columns[k][i]) / 2;
        columns[i][k] = mean;
        columns[k][i] = mean;
      }
    return columns;
  }

  /**
   * Each layer's diagonal Hessian block (A_lᵀ A_l) ⊗ (B_l Σxx B_lᵀ) — exact at any weights, P being
   * linear in W_l —: its trace ‖A_l‖_F² Tr(B_l Σxx B_lᵀ) and its λ_max, the product of the factors'.
   */
  layerBlocks(sxx: Mat): { trace: number; lambdaMax: number }[] {
    return this.W.map((_, l) => {
      const left = mul(this.A[l], this.A[l], true);
      const right = mul(mul(this.B[l], sxx), this.B[l], false, true);
      const trace = (m: Mat) => m.data.reduce((sum, v, k) => (k % (m.cols + 1) === 0 ? sum + v : sum), 0);
      return { trace: trace(left) * trace(right), lambdaMax: topOf(left) * topOf(right) };
    });
  }

  /** ‖∇L‖ over all layers: ∇_{W_l} L = A_lᵀ E B_lᵀ. */
  gradientNorm(E: Mat): number {
    let sum = 0;
    for (let l = 0; l < this.depth; l++) {
      const g = mul(mul(this.A[l], E, true), this.B[l], false, true);
      sum += g.data.reduce((s, v) => s + v * v, 0);
    }
    return Math.sqrt(sum);
  }

  /**
   * Tr H without the dense Hessian: P is linear in each W_l, so the diagonal blocks are the
   * Gauss–Newton ones, (A_lᵀ A_l) ⊗ (B_l Σxx B_lᵀ), at any weights: Σ_l ‖A_l‖_F² Tr(B_l Σxx B_lᵀ).
   */
  trace(sxx: Mat): number {
    let t = 0;
    for (let l = 0; l < this.depth; l++) {
      const a = this.A[l].data.reduce((s, v) => s + v * v, 0);
      // Tr(B_l Σxx B_lᵀ) = Σ_ij (B_l Σxx)_ij (B_l)_ij.
      const bs = mul(this.B[l], sxx);
      t += a * bs.data.reduce((sum, v, k) => sum + v * this.B[l].data[k], 0);
    }
    return t;
  }
}

/** Largest eigenvalue of a small symmetric matrix. */
function topOf(m: Mat): number {
  const rows = Array.from({ length: m.rows }, (_, i) =>
    Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)),
  );
  return symmetricEigenvalues(rows).at(-1) ?? Number.NaN;
}

/**
 * The `k` largest eigenvalues (descending) of a symmetric operator on R^n by Lanczos in float64 with
 * full reorthogonalisation, `steps` Krylov vectors from a fixed start (all ones plus a ramp).
 */
export function lanczosTop(
  apply: (v: Float64Array) => Float64Array,
  n: number,
  k: number,
  steps: number,
): number[] {
  const m = Math.min(n, steps);
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = [];
  let q = Float64Array.from({ length: n }, (_, i) => 1 + i / n);
  let norm = Math.hypot(...q);
  q = q.map((v) => v / norm);
  for (let j = 0; j < m; j++) {
    basis.push(q);
    const w = apply(q);
    alpha.push(w.reduce((s, v, i) => s + v * q[i], 0));
    for (let pass = 0; pass < 2; pass++)
      for (const b of basis) {
        const c = w.reduce((s, v, i) => s + v * b[i], 0);
        for (let i = 0; i < n; i++) w[i] -= c * b[i];
      }
    norm = Math.sqrt(w.reduce((s, v) => s + v * v, 0));
    if (j === m - 1 || norm < 1e-12 * Math.max(1, Math.abs(alpha[0]))) break;
    beta.push(norm);
    q = w.map((v) => v / norm);
  }
  const values = tridiagonalEigen(alpha, beta.slice(0, alpha.length - 1)).values;
  return values.slice(-k).reverse();
}
