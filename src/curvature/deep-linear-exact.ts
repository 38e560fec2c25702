/**
 * Exact curvature of a deep linear network under MSE, in float64, from its weights and an evaluation
 * set: the loss L = (1/N) Σ ½‖W_D⋯W_1 x_i − y_i‖² depends on the data only through the moments
 * Σ̂_xx = (1/N) Σ x xᵀ and Σ̂_yx = (1/N) Σ y xᵀ, so the whole n × n Hessian costs n small matrix
 * chains per replica — no pass over the samples, no GPU round trip. The gradient fluctuation
 * S = (1/N) Σ ‖∇ℓ_i‖² factorises per layer: ‖∇_{W_l} ℓ_i‖² = ‖A_lᵀ r_i‖² ‖B_l x_i‖².
 * The Hessian itself comes from deep-linear-chain.ts (notation there: A_l, B_l, P).
 */
import { InputError } from '../errors.ts';
import { DeepLinearChain, mat, mul } from './deep-linear-chain.ts';
import { symmetricEigenvalues } from './tridiagonal.ts';

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

export interface DeepLinearCurvature {
  /** Per replica: Tr H, the Hessian's eigenvalues (ascending) and S = mean ‖∇ℓ_i‖². */
  trace: number[];
  eigenvalues: number[][];
  fluctuation: number[];
  /** Per replica: ‖∇L‖ on the evaluation set, and each layer's diagonal block (trace, λ_max). */
  gradientNorm: number[];
  layers: { trace: number; lambdaMax: number }[][];
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
  const out: DeepLinearCurvature = {
    trace: [],
    eigenvalues: [],
    fluctuation: [],
    gradientNorm: [],
    layers: [],
  };
  for (let r = 0; r < replicas; r++) {
    const chain = DeepLinearChain.ofReplica(widths, weights, r);
    const { A, B, P } = chain;
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
    const E = chain.residual(sxx, syx);
    const hessian = chain.hessian(sxx, E);
    out.gradientNorm.push(chain.gradientNorm(E));
    out.layers.push(chain.layerBlocks(sxx));
    out.trace.push(hessian.reduce((sum, row, i) => sum + row[i], 0));
    out.eigenvalues.push(symmetricEigenvalues(hessian));
    out.fluctuation.push(fluctuation / N);
  }
  return out;
}
