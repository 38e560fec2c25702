/** Building blocks shared by the presets: the paper's deep linear setup (its Appendix B) and helpers. */
import type { ModelSpec } from '../../models/model.ts';

/** V = I₂ and Σ_x = I₂: the deep linear teacher of Figs 1, 2, 4–7. */
export const IDENTITY_2 = [
  [1, 0],
  [0, 1],
];

/** Deep linear f(x) = W_D ⋯ W_1 x from R² to R², hidden widths 2 (= rank V, so the theory's weights are exact). */
export function deepLinear(depth: number, width = 2): ModelSpec {
  return { kind: 'deep-linear', inputDim: 2, hidden: new Array(depth - 1).fill(width), outputDim: 2 };
}

/** √Σ_ε with every other entry `small`: diag(big, small, big, small, …) of length m. */
export function alternatingStd(m: number, big: number, small: number): number[] {
  return Array.from({ length: m }, (_, i) => (i % 2 === 0 ? big : small));
}

/** √Σ_ε whose condition number κ(Σ_ε) = (big / small)² is `kappa`: the small entries are big/√κ. */
export function stdForKappa(m: number, big: number, kappa: number): number[] {
  return alternatingStd(m, big, big / Math.sqrt(kappa));
}

/** Measurements of a deep linear run: all four (the theory has T*, S*, λ_max*), on 200 fresh samples. */
export const LINEAR_METRICS = ['loss', 'sharpness', 'lambdaMax', 'fluctuation'] as const;

/**
 * √Σ_ε = diag(big, big/√κ, …, big/√κ) of length m: one large noise direction. With cross-entropy
 * only the sum-zero part of the noise reaches the loss (softmax is shift-invariant); for m = 3 its
 * covariance has eigenvalues (2·big² + small²)/3 and small², so it stays anisotropic, growing with κ
 * (alternating entries would cap that ratio at 3, and m = 2 leaves one isotropic direction).
 */
export function oneLargeStdForKappa(m: number, big: number, kappa: number): number[] {
  return Array.from({ length: m }, (_, i) => (i === 0 ? big : big / Math.sqrt(kappa)));
}
