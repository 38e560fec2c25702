/** Float64 CPU references and tolerance rules shared by the kernel tests. */

/** Deterministic float64 generator for test inputs (mulberry32), independent of the GPU RNG. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(random: () => number, n: number, low = -1, high = 1): Float64Array {
  return Float64Array.from({ length: n }, () => low + (high - low) * random());
}

/** f32 unit roundoff. */
export const F32_EPS = 2 ** -24;

/**
 * Error bound for a length-`k` f32 dot product against its float64 value: the standard
 * γ_k = k·u bound on Σ|a_i b_i| (Higham, Thm 3.1), with a 2× margin for the final rounding.
 */
export function dotTolerance(k: number, absoluteSum: number): number {
  return 2 * (k + 2) * F32_EPS * absoluteSum + 1e-30;
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: (i: number) => number,
  what: string,
): void {
  if (actual.length < expected.length)
    throw new Error(`${what}: got ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    const bound = tolerance(i);
    if (!(error <= bound)) {
      throw new Error(
        `${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (error ${error.toExponential(3)} > tolerance ${bound.toExponential(3)})`,
      );
    }
  }
}
