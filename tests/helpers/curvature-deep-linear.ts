/**
 * Float64 references for a deep linear network f(x) = W_D ⋯ W_1 x on an evaluation set, with the
 * loss ½‖f(x) − y‖² averaged over samples (notation of theory.md: L_i = W_D ⋯ W_{i+1}, R_i = W_{i−1} ⋯ W_1):
 *
 * - empirical Hessian = Gauss–Newton blocks (L_iᵀL_j) ⊗ (R_i Σ̂ R_jᵀ) (theory's `denseHessian` with
 *   Σ̂ = mean x xᵀ) + the residual term, which for i < j has entries
 *   ∂²/∂(W_i)_{ab}∂(W_j)_{cd} = (L_jᵀ Ĉ R_iᵀ)_{cb} · (W_{j−1} ⋯ W_{i+1})_{da},  Ĉ = mean r xᵀ, r = f(x) − y
 *   (f is linear in each W_i alone, so the diagonal blocks have no residual term);
 * - per-sample trace t = Σ_i ‖L_i‖_F² ‖R_i x‖² (mean: Tr of the empirical Hessian);
 * - per-sample squared gradient ‖∇ℓ‖² = Σ_i ‖L_iᵀ r‖² ‖R_i x‖² (∇_{W_i} ℓ = L_iᵀ r (R_i x)ᵀ).
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { denseHessian } from '../../src/theory/hessian.ts';
import { type Matrix, sqrtSym } from '../../src/theory/linalg.ts';
import { seededRandom } from './reference.ts';

export interface Chain {
  W: MlMatrix[];
  L: MlMatrix[];
  R: MlMatrix[];
}

export function chain(weights: readonly Matrix[]): Chain {
  const W = weights.map((w) => new MlMatrix(w));
  const D = W.length;
  const R: MlMatrix[] = [MlMatrix.eye(W[0].columns)];
  for (let i = 1; i < D; i++) R.push(W[i - 1].mmul(R[i - 1]));
  const L: MlMatrix[] = new Array(D);
  L[D - 1] = MlMatrix.eye(W[D - 1].rows);
  for (let i = D - 2; i >= 0; i--) L[i] = L[i + 1].mmul(W[i + 1]);
  return { W, L, R };
}

/** Sufficient statistics of an evaluation set: Σ̂ = mean x xᵀ and Ĉ = mean r xᵀ with r = f(x) − y. */
export function statistics(c: Chain, xs: readonly Float64Array[], ys: readonly Float64Array[]) {
  const d = c.W[0].columns;
  const m = c.W[c.W.length - 1].rows;
  const P = c.L[0].mmul(c.W[0]).to2DArray();
  const sigma = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const cross = Array.from({ length: m }, () => new Array<number>(d).fill(0));
  xs.forEach((x, s) => {
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) sigma[a][b] += x[a] * x[b];
    for (let k = 0; k < m; k++) {
      let r = -ys[s][k];
      for (let b = 0; b < d; b++) r += P[k][b] * x[b];
      for (let b = 0; b < d; b++) cross[k][b] += r * x[b];
    }
  });
  const n = xs.length;
  return { sigma: new MlMatrix(sigma).div(n), cross: new MlMatrix(cross).div(n) };
}

/** The empirical Hessian (flat parameter order W_1..W_D, row-major) from Σ̂ and Ĉ. */
export function empiricalHessian(weights: readonly Matrix[], sigma: MlMatrix, cross: MlMatrix): number[][] {
  const c = chain(weights);
  const H = denseHessian([...weights], sigma.to2DArray());
  const offsets: number[] = [0];
  for (const w of c.W) offsets.push(offsets[offsets.length - 1] + w.rows * w.columns);
  for (let i = 0; i < c.W.length; i++) {
    for (let j = i + 1; j < c.W.length; j++) {
      let between = MlMatrix.eye(c.W[i].rows);
      for (let k = i + 1; k < j; k++) between = c.W[k].mmul(between);
      const left = c.L[j].transpose().mmul(cross).mmul(c.R[i].transpose());
      const [rowsI, colsI] = [c.W[i].rows, c.W[i].columns];
      const [rowsJ, colsJ] = [c.W[j].rows, c.W[j].columns];
      for (let a = 0; a < rowsI; a++)
        for (let b = 0; b < colsI; b++)
          for (let cc = 0; cc < rowsJ; cc++)
            for (let dd = 0; dd < colsJ; dd++) {
              const value = left.get(cc, b) * between.get(dd, a);
              const p = offsets[i] + a * colsI + b;
              const q = offsets[j] + cc * colsJ + dd;
              H[p][q] += value;
              H[q][p] += value;
            }
    }
  }
  return H;
}

/** Per-sample Hessian traces and squared gradient norms. */
export function perSample(
  weights: readonly Matrix[],
  xs: readonly Float64Array[],
  ys: readonly Float64Array[],
) {
  const c = chain(weights);
  const product = c.L[0].mmul(c.W[0]);
  const lNorms = c.L.map((l) => l.norm('frobenius') ** 2);
  const traces: number[] = [];
  const gradients: number[] = [];
  xs.forEach((x, s) => {
    const xv = MlMatrix.columnVector([...x]);
    const r = product.mmul(xv).sub(MlMatrix.columnVector([...ys[s]]));
    let t = 0;
    let g = 0;
    c.W.forEach((_, i) => {
      const rx = c.R[i].mmul(xv).norm('frobenius') ** 2;
      t += lNorms[i] * rx;
      g += c.L[i].transpose().mmul(r).norm('frobenius') ** 2 * rx;
    });
    traces.push(t);
    gradients.push(g);
  });
  return { traces, gradients };
}

export function meanAndError(values: readonly number[]): { mean: number; standardError: number } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return { mean, standardError: Math.sqrt(variance / n) };
}

/**
 * The sampling distribution of λ_max of the empirical Hessian over evaluation sets of `samples` rows
 * drawn in float64 (independent of the GPU generator): mean and standard deviation over `sets` sets.
 */
export function lambdaMaxSampling(
  weights: readonly Matrix[],
  teacher: { V: Matrix; sigmaX: Matrix; sigmaEps: Matrix },
  samples: number,
  sets: number,
  seed: number,
): { mean: number; sd: number } {
  const random = seededRandom(seed);
  const normal = () => {
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  const rx = sqrtSym(new MlMatrix(teacher.sigmaX)).to2DArray();
  const re = sqrtSym(new MlMatrix(teacher.sigmaEps)).to2DArray();
  const v = teacher.V;
  const d = rx.length;
  const m = re.length;
  const c = chain(weights);
  const values: number[] = [];
  for (let set = 0; set < sets; set++) {
    const xs: Float64Array[] = [];
    const ys: Float64Array[] = [];
    for (let s = 0; s < samples; s++) {
      const z = Array.from({ length: d }, normal);
      const e = Array.from({ length: m }, normal);
      const x = Float64Array.from({ length: d }, (_, a) => rx[a].reduce((acc, v, b) => acc + v * z[b], 0));
      const y = Float64Array.from({ length: m }, (_, k) => {
        let value = re[k].reduce((acc, v, l) => acc + v * e[l], 0);
        for (let b = 0; b < d; b++) value += v[k][b] * x[b];
        return value;
      });
      xs.push(x);
      ys.push(y);
    }
    const { sigma, cross } = statistics(c, xs, ys);
    const H = new MlMatrix(empiricalHessian(weights, sigma, cross));
    values.push(Math.max(...new EigenvalueDecomposition(H, { assumeSymmetric: true }).realEigenvalues));
  }
  const { mean } = meanAndError(values);
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (sets - 1));
  return { mean, sd };
}
