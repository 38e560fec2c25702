/** Sample statistics shared by the estimators (Hutchinson's probes) and the results (seeds, samples). */

/**
 * Mean and standard error s/√n, s the sample standard deviation (n − 1 in the denominator).
 *
 * With fewer than two values the spread cannot be estimated (s² = 0/0), so the standard error is NaN:
 * not 0, which would claim an exact value, nor +∞, which would claim a known (unbounded) error. NaN
 * shows as '—' in captions and reports, leaves error bands out of plots, and never meets a precision
 * target (NaN ≤ x is false), so an adaptive estimator keeps sampling. No values: the mean is NaN too.
 */
export function meanAndStandardError(values: readonly number[]): { mean: number; standardError: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, standardError: Number.NaN };
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  if (n < 2) return { mean, standardError: Number.NaN };
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1);
  return { mean, standardError: Math.sqrt(variance / n) };
}
