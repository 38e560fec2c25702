/**
 * Float64 CPU references for the curvature tests: matrices with chosen spectra, losses of small
 * models with central-difference Hessians, and distances between spectral measures.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix, QrDecomposition } from 'ml-matrix';
import { F32_EPS, randomArray, seededRandom } from './reference.ts';

/** A seeded Haar-like orthogonal matrix (QR of a Gaussian-ish matrix). */
export function orthogonal(n: number, seed: number): MlMatrix {
  const random = seededRandom(seed);
  const g = new MlMatrix(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g.set(i, j, random() + random() + random() - 1.5);
  return new QrDecomposition(g).orthogonalMatrix;
}

/** A = Q diag(λ) Qᵀ rounded to f32 (symmetric after rounding); the reference uses the rounded A. */
export function matrixWithSpectrum(eigenvalues: readonly number[], seed: number): Float32Array {
  const n = eigenvalues.length;
  const Q = orthogonal(n, seed);
  const A = Q.mmul(MlMatrix.diag([...eigenvalues])).mmul(Q.transpose());
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = i; j < n; j++) {
      const v = 0.5 * (A.get(i, j) + A.get(j, i));
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
  return out;
}

export function toRows(flat: ArrayLike<number>, n: number, offset = 0): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => flat[offset + i * n + j]));
}

/** Eigenvalues ascending of a symmetric float64 matrix (ml-matrix). */
export function eigenvalues(rows: number[][]): number[] {
  const m = new MlMatrix(rows);
  const sym = m.clone().add(m.transpose()).mul(0.5);
  return [...new EigenvalueDecomposition(sym, { assumeSymmetric: true }).realEigenvalues].sort(
    (a, b) => a - b,
  );
}

export function spectralNorm(values: readonly number[]): number {
  return Math.max(...values.map(Math.abs));
}

export { F32_EPS, randomArray, seededRandom };

/**
 * W1 distance ∫|F(t) − G(t)| dt between a density on an even grid (trapezoid CDF) and a discrete
 * measure (atoms with weights), evaluated on the grid refined `refine` times.
 */
export function wassersteinDensityToAtoms(
  grid: readonly number[],
  density: readonly number[],
  atoms: readonly number[],
  weights?: readonly number[],
  refine = 8,
): number {
  const w = weights ?? atoms.map(() => 1 / atoms.length);
  const order = atoms.map((_, i) => i).sort((a, b) => atoms[a] - atoms[b]);
  const lo = Math.min(grid[0], ...atoms);
  const hi = Math.max(grid[grid.length - 1], ...atoms);
  const points = (grid.length - 1) * refine + 1;
  const step = (hi - lo) / (points - 1);
  const gridStep = grid[1] - grid[0];
  // CDF of the density at the grid nodes (trapezoid), linearly interpolated between them.
  const cdf = [0];
  for (let i = 1; i < grid.length; i++) cdf.push(cdf[i - 1] + 0.5 * (density[i] + density[i - 1]) * gridStep);
  const densityCdf = (t: number) => {
    if (t <= grid[0]) return 0;
    if (t >= grid[grid.length - 1]) return 1;
    const u = (t - grid[0]) / gridStep;
    const i = Math.min(Math.floor(u), grid.length - 2);
    return cdf[i] + (cdf[i + 1] - cdf[i]) * (u - i);
  };
  let k = 0;
  let atomCdf = 0;
  let distance = 0;
  for (let p = 0; p < points - 1; p++) {
    const t = lo + (p + 0.5) * step;
    while (k < order.length && atoms[order[k]] <= t) atomCdf += w[order[k++]];
    distance += Math.abs(densityCdf(t) - atomCdf) * step;
  }
  return distance;
}

export function relativeError(got: number, want: number): number {
  return Math.abs(got - want) / Math.abs(want);
}

/** Random f32-representable values in [−scale, scale). */
export function f32Array(random: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from(randomArray(random, n, -scale, scale));
}
