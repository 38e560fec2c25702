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
 *
 * λ_max at the nearest minimum: SGD's iterate fluctuates about the minimum manifold, and a top
 * eigenvalue that is degenerate there (λ_max* of an isotropic problem is) splits at first order in
 * that displacement, so λ_max at the iterate sits above λ_max* even on average. Projecting the iterate
 * onto the manifold P = V first (`nearestMinimum`) measures the same quantity the theory predicts.
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
  /** Also λ_max at the nearest global minimum (`nearestMinimum`). */
  atMinimum?: boolean;
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
  /** Per replica, when asked: λ_max at the nearest global minimum (NaN where none was reached). */
  lambdaMaxAtMinimum?: number[];
}

/** ‖P − V‖_F / max(1, ‖V‖_F) at which a point counts as on the minimum manifold. */
const MINIMUM_TOLERANCE = 1e-12;
/** Gauss–Newton steps allowed to reach it (quadratic convergence: a handful from SGD's iterates). */
const MINIMUM_MAX_STEPS = 100;

/** ‖P − V‖_F of a chain. */
function misfit(chain: DeepLinearChain, V: Mat): number {
  return Math.sqrt(chain.P.data.reduce((sum, p, k) => sum + (p - V.data[k]) ** 2, 0));
}

/** x solving S x = b for a symmetric positive definite S (k × k, row-major) by Cholesky; undefined if S is not. */
function solvePositiveDefinite(S: Float64Array, b: Float64Array): Float64Array | undefined {
  const k = b.length;
  const L = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j <= i; j++) {
      let sum = S[i * k + j];
      for (let p = 0; p < j; p++) sum -= L[i * k + p] * L[j * k + p];
      if (i === j) {
        if (!(sum > 0)) return undefined;
        L[i * k + i] = Math.sqrt(sum);
      } else L[i * k + j] = sum / L[j * k + j];
    }
  const y = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let sum = b[i];
    for (let p = 0; p < i; p++) sum -= L[i * k + p] * y[p];
    y[i] = sum / L[i * k + i];
  }
  for (let i = k - 1; i >= 0; i--) {
    let sum = y[i];
    for (let p = i + 1; p < k; p++) sum -= L[p * k + i] * y[p];
    y[i] = sum / L[i * k + i];
  }
  return y;
}

/**
 * The point of the global-minimum manifold {P = V} nearest a network's weights: Gauss–Newton steps of
 * least norm on P(θ) = V, δθ = −Jᵀ(J Jᵀ)⁻¹ vec(P − V) with J = ∂vec P/∂θ, so each step moves only
 * across the manifold (to second order in the distance, the Euclidean projection; noise-free gradient
 * descent ends at the same point to that order, far more slowly). Per layer Jᵀ Y = A_lᵀ Y B_lᵀ and
 * J Jᵀ = Σ_l (A_l A_lᵀ) ⊗ (B_lᵀ B_l) (row-major vec). A step that would raise ‖P − V‖ is halved.
 * Undefined when J Jᵀ is singular (a hidden width below rank V) or the steps stall.
 */
export function nearestMinimum(chain: DeepLinearChain, V: Mat): DeepLinearChain | undefined {
  const m = V.rows;
  const d = V.cols;
  const k = m * d;
  const tolerance = MINIMUM_TOLERANCE * Math.max(1, Math.hypot(...V.data));
  let current = chain;
  let distance = misfit(current, V);
  for (let step = 0; step < MINIMUM_MAX_STEPS && distance > tolerance; step++) {
    const gram = new Float64Array(k * k);
    for (let l = 0; l < current.depth; l++) {
      const left = mul(current.A[l], current.A[l], false, true); // m × m
      const right = mul(current.B[l], current.B[l], true); // d × d
      for (let i = 0; i < m; i++)
        for (let j = 0; j < d; j++)
          for (let a = 0; a < m; a++)
            for (let b = 0; b < d; b++)
              gram[(i * d + j) * k + a * d + b] += left.data[i * m + a] * right.data[j * d + b];
    }
    const y = solvePositiveDefinite(
      gram,
      current.P.data.map((p, q) => V.data[q] - p),
    );
    if (!y) return undefined;
    const Y = mat(m, d, y);
    const steps = current.W.map((_, l) => mul(mul(current.A[l], Y, true), current.B[l], false, true));
    let scale = 1;
    for (; scale > 1e-6; scale /= 2) {
      const next = new DeepLinearChain(
        current.widths,
        current.W.map((w, l) =>
          mat(
            w.rows,
            w.cols,
            w.data.map((value, q) => value + scale * steps[l].data[q]),
          ),
        ),
      );
      const nextDistance = misfit(next, V);
      if (nextDistance < distance) {
        current = next;
        distance = nextDistance;
        break;
      }
    }
    if (scale <= 1e-6) return undefined;
  }
  return distance <= tolerance ? current : undefined;
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

/** λ_max of the population Hessian at the nearest minimum (NaN when none is reached). */
function lambdaMaxAtMinimum(chain: DeepLinearChain, V: Mat, sx: Mat): number {
  const minimum = nearestMinimum(chain, V);
  if (!minimum) return Number.NaN;
  const E = minimum.residual(sx, mul(V, sx));
  if (minimum.size <= POPULATION_DENSE_MAX_PARAMETERS)
    return symmetricEigenvalues(minimum.hessian(sx, E)).at(-1) ?? Number.NaN;
  return lanczosTop((v) => minimum.hvp(v, sx, E), minimum.size, 1, POPULATION_LANCZOS_STEPS)[0];
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
    if (input.atMinimum) {
      out.lambdaMaxAtMinimum ??= [];
      out.lambdaMaxAtMinimum.push(lambdaMaxAtMinimum(chain, V, sx));
    }
  }
  return out;
}
