/**
 * Curvature of the population loss of a deep linear network on a linear teacher, exactly, in float64:
 * x ~ N(0, Σ_x), y = V x + ε, ε ~ N(0, Σ_ε), ℓ = ½‖P x − y‖² with P = W_{D−1}⋯W_0. The expected loss
 * ½ Tr(M Σ_x Mᵀ) + ½ Tr Σ_ε (M = P − V) sees the data only through Σ_x and V Σ_x, so its Hessian is
 * the moment Hessian of deep-linear-chain.ts with those moments — no evaluation set, no sampling error.
 *
 * Gradient fluctuation S = E‖∇ℓ‖² (per sample, the quantity of theory.md): with r = M x − ε,
 * ‖∇_{W_l} ℓ‖² = (rᵀ G_l r)(xᵀ K_l x), G_l = A_l A_lᵀ, K_l = B_lᵀ B_l. Averaging over ε (independent of
 * x) and then x by Isserlis' theorem (E[(xᵀCx)(xᵀKx)] = Tr(CΣ)Tr(KΣ) + 2 Tr(CΣKΣ) for symmetric C, K):
 *   S = Σ_l [Tr(C_l Σ_x) Tr(K_l Σ_x) + 2 Tr(C_l Σ_x K_l Σ_x) + Tr(G_l Σ_ε) Tr(K_l Σ_x)],  C_l = Mᵀ G_l M,
 * which at a global minimum (M = 0) is theory.md's Σ_l Tr(L_lᵀ Σ_ε L_l) Tr(R_l Σ_x R_lᵀ).
 */
import {
  DeepLinearChain,
  fromRows,
  lanczosTop,
  type Mat,
  mat,
  mul,
  traceOfProduct,
} from './deep-linear-chain.ts';
import { symmetricEigenvalues } from './tridiagonal.ts';

/** Up to this many parameters the whole spectrum comes from the dense Hessian; beyond, Lanczos. */
export const POPULATION_DENSE_MAX_PARAMETERS = 256;
/** Lanczos vectors (float64, fully reorthogonalised) for the top eigenvalues of larger models. */
const POPULATION_LANCZOS_STEPS = 80;

export interface PopulationInput {
  /** Layer widths h_0 = d, …, h_D = m. */
  widths: readonly number[];
  /** Per layer, all replicas: replica-major, each h_{l+1} × h_l row-major. */
  weights: readonly ArrayLike<number>[];
  replicas: number;
  /** Teacher V (m × d), shared by all replicas. */
  V: readonly (readonly number[])[];
  /** Σ_x and Σ_ε of each replica (one entry: shared by all). */
  sigmaX: readonly (readonly (readonly number[])[])[];
  sigmaEps: readonly (readonly (readonly number[])[])[];
  /** Top eigenvalues wanted (default 1: λ_max). */
  top?: number;
}

export interface PopulationCurvature {
  /** Per replica: Tr H of the population loss. */
  trace: number[];
  /** Per replica: the `top` largest eigenvalues, descending. */
  top: number[][];
  /** Per replica: every eigenvalue, ascending (only up to POPULATION_DENSE_MAX_PARAMETERS). */
  eigenvalues?: number[][];
  /** Per replica: S = E‖∇ℓ‖² per sample. */
  fluctuation: number[];
  /** How the eigenvalues were obtained: dense eigen-solve or float64 Lanczos. */
  method: 'dense' | 'lanczos';
  /** Per replica: ‖∇L‖ of the population loss. */
  gradientNorm: number[];
  /** Per replica, per layer: trace and λ_max of the layer's diagonal Hessian block. */
  layers: { trace: number; lambdaMax: number }[][];
}

function perReplica<T>(values: readonly T[], r: number): T {
  return values.length === 1 ? values[0] : values[r];
}

/** S of one replica from the Isserlis form in the module comment. */
function populationFluctuation(chain: DeepLinearChain, V: Mat, sx: Mat, se: Mat): number {
  const M = mat(
    V.rows,
    V.cols,
    chain.P.data.map((p, k) => p - V.data[k]),
  );
  let s = 0;
  for (let l = 0; l < chain.depth; l++) {
    const G = mul(chain.A[l], chain.A[l], false, true);
    const K = mul(chain.B[l], chain.B[l], true);
    const C = mul(mul(M, G, true), M);
    const cs = mul(C, sx);
    const ks = mul(K, sx);
    const traceKs = traceOfProduct(K, sx);
    s += traceOfProduct(C, sx) * traceKs + 2 * traceOfProduct(cs, ks) + traceOfProduct(G, se) * traceKs;
  }
  return s;
}

/** Population Tr H, top eigenvalues (and the whole spectrum for small models) and S of every replica. */
export function populationCurvature(input: PopulationInput): PopulationCurvature {
  const { widths, weights, replicas } = input;
  const top = input.top ?? 1;
  const V = fromRows(input.V);
  const out: PopulationCurvature = {
    trace: [],
    top: [],
    fluctuation: [],
    method: 'dense',
    gradientNorm: [],
    layers: [],
  };
  for (let r = 0; r < replicas; r++) {
    const chain = DeepLinearChain.ofReplica(widths, weights, r);
    const sx = fromRows(perReplica(input.sigmaX, r));
    const se = fromRows(perReplica(input.sigmaEps, r));
    // Population moments: Σxx = Σ_x, Σyx = E[y xᵀ] = V Σ_x.
    const E = chain.residual(sx, mul(V, sx));
    out.trace.push(chain.trace(sx));
    if (chain.size <= POPULATION_DENSE_MAX_PARAMETERS) {
      const eigenvalues = symmetricEigenvalues(chain.hessian(sx, E));
      out.eigenvalues ??= [];
      out.eigenvalues.push(eigenvalues);
      out.top.push(eigenvalues.slice(-top).reverse());
    } else {
      out.method = 'lanczos';
      out.top.push(lanczosTop((v) => chain.hvp(v, sx, E), chain.size, top, POPULATION_LANCZOS_STEPS));
    }
    out.fluctuation.push(populationFluctuation(chain, V, sx, se));
    out.gradientNorm.push(chain.gradientNorm(E));
    out.layers.push(chain.layerBlocks(sx));
  }
  return out;
}
