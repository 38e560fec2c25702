/**
 * Seeded pseudo-random numbers for the theory module (no `Math.random`): a splitmix32 stream with
 * Box–Muller normals, so numerical checks and Monte Carlo estimates are reproducible.
 */
import { Matrix as MlMatrix, QrDecomposition } from 'ml-matrix';

export interface Rng {
  /** Uniform in (0, 1). */
  uniform(): number;
  /** Standard normal N(0, 1). */
  normal(): number;
}

/** A seeded generator; the same seed gives the same stream on every platform. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  let spare: number | undefined;
  const next32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const uniform = (): number => {
    // 53 random bits, shifted off zero so log(u) is finite.
    const hi = next32() >>> 5;
    const lo = next32() >>> 6;
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  };
  const normal = (): number => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const phi = 2 * Math.PI * uniform();
    spare = r * Math.sin(phi);
    return r * Math.cos(phi);
  };
  return { uniform, normal };
}

/** An n×k matrix of i.i.d. N(0, scale²) entries. */
export function gaussianMatrix(rng: Rng, rows: number, columns: number, scale = 1): MlMatrix {
  const a = new MlMatrix(rows, columns);
  for (let i = 0; i < rows; i++) for (let j = 0; j < columns; j++) a.set(i, j, scale * rng.normal());
  return a;
}

/** A Haar-random n×n orthogonal matrix (QR of a Gaussian matrix with the signs of R's diagonal fixed). */
export function randomOrthogonal(rng: Rng, n: number): MlMatrix {
  const qr = new QrDecomposition(gaussianMatrix(rng, n, n));
  const q = qr.orthogonalMatrix;
  const r = qr.upperTriangularMatrix;
  for (let j = 0; j < n; j++) {
    if (r.get(j, j) < 0) for (let i = 0; i < n; i++) q.set(i, j, -q.get(i, j));
  }
  return q;
}
