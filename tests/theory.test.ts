// Theory module: closed forms of the SGD-selected minimum of a deep linear network, checked against
// the worked examples of theory.md, an independent orbit minimisation, the dense Hessian (also by
// finite differences) and a Monte Carlo estimate of the sharpness at initialisation.
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../src/errors.ts';
import { deepLinearTheory, initSharpness } from '../src/theory/deep-linear.ts';
import {
  balanceResidual,
  denseHessian,
  endToEnd,
  fluctuationAt,
  lambdaMaxAt,
  parameterCount,
  sharpnessAt,
} from '../src/theory/hessian.ts';
import type { Matrix } from '../src/theory/linalg.ts';
import { minimiseOrbit, orbitDistance, randomFactorisation } from '../src/theory/orbit.ts';
import { createRng, type Rng } from '../src/theory/random.ts';
import { validateTheoryConfig } from '../src/theory/validate.ts';

// ---------------------------------------------------------------------------------------------
// helpers

const rng = createRng(20240611);

function gaussian(r: Rng, rows: number, cols: number, scale = 1): Matrix {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * r.normal()));
}

/** Random orthogonal n×n (QR through ml-matrix's EVD of a random symmetric matrix). */
function orthogonal(r: Rng, n: number): MlMatrix {
  const a = new MlMatrix(gaussian(r, n, n));
  return new EigenvalueDecomposition(a.add(a.transpose()), { assumeSymmetric: true }).eigenvectorMatrix;
}

/** Symmetric positive definite n×n with eigenvalues in [1/√κ, √κ] (condition number ≤ κ). */
function spd(r: Rng, n: number, kappa: number): Matrix {
  const o = orthogonal(r, n);
  const lam = Array.from({ length: n }, () => kappa ** (r.uniform() - 0.5));
  const m = o.mmul(MlMatrix.diag(lam)).mmul(o.transpose());
  return m.add(m.transpose()).mul(0.5).to2DArray();
}

const KAPPA = 20;
/**
 * Round-off allowance for closed-form evaluations in float64: a few dozen products and
 * eigen-decompositions of matrices with condition ≤ KAPPA, each contributing ≲ (size · ε · κ).
 */
const ROUNDOFF = 1e4 * Number.EPSILON * KAPPA;

function relErr(x: number, ref: number): number {
  return Math.abs(x - ref) / Math.abs(ref);
}

function assertRel(actual: number, expected: number, tol: number, what: string): void {
  const err = relErr(actual, expected);
  assert.ok(
    err <= tol,
    `${what}: ${actual} vs ${expected} (relative error ${err.toExponential(2)} > ${tol})`,
  );
}

/** A value quoted in theory.md to the digits of `quoted`: must round to it (± half a unit in the last place). */
function assertDigits(actual: number, quoted: string, what: string): void {
  const decimals = quoted.includes('.') ? quoted.split('.')[1].length : 0;
  const halfUlp = 0.5 * 10 ** -decimals;
  assert.ok(
    Math.abs(actual - Number(quoted)) <= halfUlp * (1 + 1e-9),
    `${what}: ${actual} does not round to the quoted ${quoted}`,
  );
}

function identity(n: number): Matrix {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

function maxAbsDiff(a: Matrix, b: Matrix): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    for (let j = 0; j < a[i].length; j++) worst = Math.max(worst, Math.abs(a[i][j] - b[i][j]));
  return worst;
}

function maxAbs(a: Matrix): number {
  return Math.max(...a.map((row) => Math.max(...row.map(Math.abs))));
}

function topEig(a: Matrix): number {
  const values = new EigenvalueDecomposition(new MlMatrix(a), { assumeSymmetric: true }).realEigenvalues;
  return Math.max(...values);
}

function eigenvalues(a: Matrix): number[] {
  return new EigenvalueDecomposition(new MlMatrix(a), { assumeSymmetric: true }).realEigenvalues;
}

interface Case {
  depth: number;
  V: Matrix;
  sigmaX: Matrix;
  sigmaEps: Matrix;
}

/** Random cases: shapes m×d (square and not), depths 1–6, anisotropic Σ_x and Σ_ε. */
const SHAPES: [number, number][] = [
  [2, 2],
  [3, 5],
  [5, 3],
  [4, 4],
  [1, 3],
  [6, 2],
];
function randomCase(depth: number, m: number, d: number): Case {
  return { depth, V: gaussian(rng, m, d), sigmaX: spd(rng, d, KAPPA), sigmaEps: spd(rng, m, KAPPA) };
}
const CASES: Case[] = [];
for (let depth = 1; depth <= 6; depth++) {
  for (const [m, d] of SHAPES) CASES.push(randomCase(depth, m, d));
}

function describeCase(c: Case): string {
  return `D=${c.depth}, V ${c.V.length}×${c.V[0].length}`;
}

// ---------------------------------------------------------------------------------------------
// worked examples of theory.md

const I2 = identity(2);

test('worked example D = 2, Σ_ε = diag(1, 0.1): S*, T*, λ_max*', () => {
  const t = deepLinearTheory({
    depth: 2,
    V: I2,
    sigmaX: I2,
    sigmaEps: [
      [1, 0],
      [0, 0.1],
    ],
  });
  assertDigits(t.fluctuation, '3.904563', 'S*');
  assertDigits(t.sharpness, '9.723258', 'T*');
  assertDigits(t.lambdaMax, '3.693608', 'λ_max*');
});

test("the paper's D = 3 example, Σ_ε = diag(1, 100): T*, λ_max*, T_min = 12", () => {
  const sigmaEps = [
    [1, 0],
    [0, 100],
  ];
  const t = deepLinearTheory({ depth: 3, V: I2, sigmaX: I2, sigmaEps });
  assertDigits(t.sharpness, '31.55', 'T*');
  assertDigits(t.lambdaMax, '19.68', 'λ_max*');
  // T_min = 3 · 2^{4/3} · 4^{1/3} = 12 exactly, so only round-off is allowed.
  assertRel(t.minSharpness, 12, ROUNDOFF, 'T_min');
  // σ = 1 + 10, τ = 1 · 1 + 10 · (1/100): exact inputs of the closed form.
  assertRel(t.nuclearNorm, 11, ROUNDOFF, 'σ');
  assertRel(t.tau, 1.1, ROUNDOFF, 'τ');
  // default Σ_x is the identity
  const implicit = deepLinearTheory({ depth: 3, V: I2, sigmaEps });
  assert.is(implicit.sharpness, t.sharpness);
  assert.is(implicit.lambdaMax, t.lambdaMax);
});

test("the paper's D = 10 example, Σ_ε = diag(1, 100): T*, λ_max*", () => {
  const t = deepLinearTheory({
    depth: 10,
    V: I2,
    sigmaEps: [
      [1, 0],
      [0, 100],
    ],
  });
  assertDigits(t.sharpness, '117.15', 'T*');
  assertDigits(t.lambdaMax, '91.14', 'λ_max*');
});

test('depth 1 has no freedom: W_1 = V, S = Tr Σ_x Tr Σ_ε, T = m Tr Σ_x = T_min', () => {
  for (const c of CASES.filter((x) => x.depth === 1)) {
    const t = deepLinearTheory(c);
    const m = c.V.length;
    assert.equal(t.weights, [c.V]);
    assertRel(t.fluctuation, t.traceSigmaX * t.traceSigmaEps, ROUNDOFF, `S (${describeCase(c)})`);
    assertRel(t.sharpness, m * t.traceSigmaX, ROUNDOFF, `T (${describeCase(c)})`);
    assertRel(t.minSharpness, m * t.traceSigmaX, ROUNDOFF, `T_min (${describeCase(c)})`);
    // H = I_m ⊗ Σ_x, so λ_max = λ_max(Σ_x)
    assertRel(t.lambdaMax, topEig(c.sigmaX), ROUNDOFF, `λ_max (${describeCase(c)})`);
  }
});

// ---------------------------------------------------------------------------------------------
// closed form is self-consistent

test('predicted weights factor V and reproduce S* and T* through the per-weight formulas', () => {
  for (const c of CASES) {
    const t = deepLinearTheory(c);
    assert.is(t.weights.length, c.depth);
    const scale = maxAbs(c.V);
    assert.ok(maxAbsDiff(endToEnd(t.weights), c.V) <= ROUNDOFF * scale, `W_D⋯W_1 = V (${describeCase(c)})`);
    assertRel(
      fluctuationAt(t.weights, c.sigmaX, c.sigmaEps),
      t.fluctuation,
      ROUNDOFF,
      `S* (${describeCase(c)})`,
    );
    assertRel(sharpnessAt(t.weights, c.sigmaX), t.sharpness, ROUNDOFF, `T* (${describeCase(c)})`);
  }
});

test('the balance condition holds at the predicted weights (and fails at a random factorisation)', () => {
  for (const c of CASES) {
    const t = deepLinearTheory(c);
    const res = balanceResidual(t.weights, c.sigmaX, c.sigmaEps);
    assert.ok(res <= ROUNDOFF, `balance residual ${res} (${describeCase(c)})`);
    if (c.depth >= 2) {
      const start = randomFactorisation(c.V, c.depth, { seed: 5 });
      assert.ok(
        balanceResidual(start, c.sigmaX, c.sigmaEps) > 1e-3,
        `a random factorisation is not balanced`,
      );
    }
  }
});

test('isotropic label noise Σ_ε = s² I: T* = S*/s², and S = s² T at the predicted weights', () => {
  for (const c of CASES) {
    for (const s of [0.1, 1, 7]) {
      const m = c.V.length;
      const sigmaEps = identity(m).map((row) => row.map((v) => v * s * s));
      const t = deepLinearTheory({ ...c, sigmaEps });
      assertRel(t.sharpness, t.fluctuation / (s * s), ROUNDOFF, `T* = S*/s² (${describeCase(c)}, s=${s})`);
      assertRel(
        fluctuationAt(t.weights, c.sigmaX, sigmaEps),
        s * s * sharpnessAt(t.weights, c.sigmaX),
        ROUNDOFF,
        `S = s² T (${describeCase(c)}, s=${s})`,
      );
    }
  }
});

test('T_min ≤ T* (equality for isotropic noise) and T*/n ≤ λ_max* ≤ T*', () => {
  for (const c of CASES) {
    const t = deepLinearTheory(c);
    const n = parameterCount(t.weights);
    assert.ok(t.minSharpness <= t.sharpness * (1 + ROUNDOFF), `T_min ≤ T* (${describeCase(c)})`);
    assert.ok(t.lambdaMax <= t.sharpness * (1 + ROUNDOFF), `λ_max ≤ T (${describeCase(c)})`);
    assert.ok(t.lambdaMax >= (t.sharpness / n) * (1 - ROUNDOFF), `λ_max ≥ T/n (${describeCase(c)})`);
  }
  // With Σ_ε ∝ I, the SGD-selected point is the flattest point of the manifold.
  const iso = deepLinearTheory({
    depth: 4,
    V: gaussian(rng, 3, 4),
    sigmaX: spd(rng, 4, KAPPA),
    sigmaEps: identity(3),
  });
  assertRel(iso.minSharpness, iso.sharpness, ROUNDOFF, 'T_min = T* for isotropic noise');
});

test('scaling law: S* and T* scale as α^{2(D−1)/D} under V → αV, even at extreme α', () => {
  for (const c of CASES.filter((x) => x.depth >= 2 && x.V.length === 3)) {
    const t = deepLinearTheory(c);
    for (const alpha of [1e-150, 1e-3, 1e120]) {
      const scaledV = c.V.map((row) => row.map((v) => alpha * v));
      const ts = deepLinearTheory({ ...c, V: scaledV });
      const D = c.depth;
      assertRel(
        ts.fluctuation,
        t.fluctuation * alpha ** ((2 * (D - 1)) / D),
        ROUNDOFF,
        `S* (α=${alpha}, D=${D})`,
      );
      assertRel(
        ts.sharpness,
        t.sharpness * alpha ** ((2 * (D - 1)) / D),
        ROUNDOFF,
        `T* (α=${alpha}, D=${D})`,
      );
    }
  }
});

test('S, T and λ_max are invariant under the rotations W_i → O_i W_i O_{i−1}ᵀ', () => {
  const c = CASES.find((x) => x.depth === 4 && x.V.length === 3)!;
  const t = deepLinearTheory(c);
  const O = t.weights.slice(0, -1).map((w) => orthogonal(rng, w.length));
  const rotated = t.weights.map((w, i) => {
    let out = new MlMatrix(w);
    if (i < O.length) out = O[i].mmul(out);
    if (i > 0) out = out.mmul(O[i - 1].transpose());
    return out.to2DArray();
  });
  assertRel(fluctuationAt(rotated, c.sigmaX, c.sigmaEps), t.fluctuation, ROUNDOFF, 'S');
  assertRel(sharpnessAt(rotated, c.sigmaX), t.sharpness, ROUNDOFF, 'T');
  assertRel(lambdaMaxAt(rotated, c.sigmaX), t.lambdaMax, ROUNDOFF, 'λ_max');
  assert.ok(orbitDistance(rotated, t.weights) <= ROUNDOFF, 'orbitDistance ignores rotations');
});

// ---------------------------------------------------------------------------------------------
// independent numerical route: minimise S over the orbit

/** The acceptance tolerance for closed form vs numerical orbit minimum. */
const ORBIT_TOL = 1e-4;

test('closed form = numerical orbit minimum (S, T, weights) on random V, Σ_x, Σ_ε, depths 2–6', () => {
  for (const c of CASES.filter((x) => x.depth >= 2)) {
    const t = deepLinearTheory(c);
    const o = minimiseOrbit({ ...c, seed: 17 });
    assert.ok(
      o.converged,
      `converged (${describeCase(c)}): ${o.iterations} iterations, |g| ${o.gradientNorm}`,
    );
    assert.ok(o.fluctuation < o.initialFluctuation, 'S decreased from the random start');
    assertRel(o.fluctuation, t.fluctuation, ORBIT_TOL, `S (${describeCase(c)})`);
    assertRel(o.sharpness, t.sharpness, ORBIT_TOL, `T (${describeCase(c)})`);
    assert.ok(orbitDistance(o.weights, t.weights) <= ORBIT_TOL, `distance (${describeCase(c)})`);
    assert.ok(o.productError <= ORBIT_TOL, 'still a factorisation of V');
  }
});

test('orbit minimum with hidden widths > rank V and with rank-deficient V', () => {
  // rank-2 V of shape 4×5, widths 3..4
  const V = new MlMatrix(gaussian(rng, 4, 2)).mmul(new MlMatrix(gaussian(rng, 2, 5))).to2DArray();
  const sigmaX = spd(rng, 5, KAPPA);
  const sigmaEps = spd(rng, 4, KAPPA);
  for (const depth of [2, 3, 5]) {
    const t = deepLinearTheory({ depth, V, sigmaX, sigmaEps });
    assert.is(t.rank, 2);
    const widths = Array.from({ length: depth - 1 }, (_, i) => 3 + (i % 2));
    const o = minimiseOrbit({ depth, V, sigmaX, sigmaEps, widths, seed: 3 });
    assert.ok(o.converged, `converged (D=${depth})`);
    assert.equal(
      o.weights.slice(0, -1).map((w) => w.length),
      widths,
    );
    assertRel(o.fluctuation, t.fluctuation, ORBIT_TOL, `S (D=${depth})`);
    assertRel(o.sharpness, t.sharpness, ORBIT_TOL, `T (D=${depth})`);
    assertRel(lambdaMaxAt(o.weights, sigmaX), t.lambdaMax, ORBIT_TOL, `λ_max (D=${depth})`);
    assert.ok(orbitDistance(o.weights, t.weights) <= ORBIT_TOL, `distance (D=${depth})`);
  }
});

test("orbit minimum reproduces the paper's strongly anisotropic setting √Σ_ε = diag(10, 0.1)", () => {
  const sigmaEps = [
    [100, 0],
    [0, 0.01],
  ];
  for (const depth of [3, 10]) {
    const t = deepLinearTheory({ depth, V: I2, sigmaEps });
    for (const seed of [1, 2]) {
      const o = minimiseOrbit({ depth, V: I2, sigmaEps, seed, spread: 2 });
      assert.ok(o.converged, `converged (D=${depth}, seed ${seed})`);
      assertRel(o.fluctuation, t.fluctuation, ORBIT_TOL, `S (D=${depth})`);
      assertRel(o.sharpness, t.sharpness, ORBIT_TOL, `T (D=${depth})`);
    }
  }
});

test('the closed-form S* lower-bounds S on random factorisations', () => {
  for (const c of CASES.filter((x) => x.depth >= 2)) {
    const t = deepLinearTheory(c);
    for (const seed of [1, 2, 3]) {
      const w = randomFactorisation(c.V, c.depth, { seed, spread: 0.5 });
      // round-off of a product of D factors is bounded by ε-multiples of ∏‖W_i‖_F
      const normProduct = w.reduce((acc, wi) => acc * Math.hypot(...wi.flat()), 1);
      assert.ok(maxAbsDiff(endToEnd(w), c.V) <= ROUNDOFF * normProduct, 'a factorisation of V');
      assert.ok(
        fluctuationAt(w, c.sigmaX, c.sigmaEps) >= t.fluctuation * (1 - ROUNDOFF),
        `S ≥ S* (${describeCase(c)})`,
      );
    }
  }
});

// ---------------------------------------------------------------------------------------------
// dense Hessian

/** Gradient of the population loss ½ Tr((Π − V) Σ_x (Π − V)ᵀ) + const: ∇_{W_i} = L_iᵀ (Π − V) Σ_x R_iᵀ. */
function populationGradient(weights: Matrix[], V: Matrix, sigmaX: Matrix): number[] {
  const W = weights.map((w) => new MlMatrix(w));
  const D = W.length;
  const R: MlMatrix[] = [MlMatrix.eye(W[0].columns)];
  for (let i = 1; i < D; i++) R.push(W[i - 1].mmul(R[i - 1]));
  const L: MlMatrix[] = new Array(D);
  L[D - 1] = MlMatrix.eye(W[D - 1].rows);
  for (let i = D - 2; i >= 0; i--) L[i] = L[i + 1].mmul(W[i + 1]);
  const residual = W[D - 1]
    .mmul(R[D - 1])
    .sub(new MlMatrix(V))
    .mmul(new MlMatrix(sigmaX));
  return L.flatMap((l, i) => l.transpose().mmul(residual).mmul(R[i].transpose()).to1DArray());
}

test('dense Hessian: symmetric, PSD, trace = T, blocks match finite differences of the population gradient', () => {
  const c = randomCase(3, 2, 3);
  const t = deepLinearTheory(c);
  const starts = [t.weights, randomFactorisation(c.V, 3, { seed: 8, widths: [3, 4] })];
  for (const weights of starts) {
    const H = denseHessian(weights, c.sigmaX);
    const n = parameterCount(weights);
    assert.is(H.length, n);
    const scale = maxAbs(H);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < i; j++) assert.ok(Math.abs(H[i][j] - H[j][i]) <= ROUNDOFF * scale);
    const values = eigenvalues(H);
    assert.ok(Math.min(...values) >= -ROUNDOFF * scale * n, 'positive semi-definite');
    const trace = H.reduce((acc, row, i) => acc + row[i], 0);
    assertRel(trace, sharpnessAt(weights, c.sigmaX), ROUNDOFF, 'Tr H = T');
    // Central differences of the exact gradient: truncation ≈ h² · |∂³g| / 6 and round-off ≈ ε |g| / h.
    // With weights of order 1 and h = 1e-5 both are ≲ 1e-9 relative to max|H|; allow 1e-6.
    const flat = weights.flatMap((w) => w.flat());
    const shapes = weights.map((w) => [w.length, w[0].length]);
    const unflatten = (x: number[]): Matrix[] => {
      let k = 0;
      return shapes.map(([r, cc]) =>
        Array.from({ length: r }, () => Array.from({ length: cc }, () => x[k++])),
      );
    };
    const h = 1e-5;
    for (let j = 0; j < n; j++) {
      const plus = flat.slice();
      const minus = flat.slice();
      plus[j] += h;
      minus[j] -= h;
      const gp = populationGradient(unflatten(plus), c.V, c.sigmaX);
      const gm = populationGradient(unflatten(minus), c.V, c.sigmaX);
      for (let i = 0; i < n; i++) {
        const fd = (gp[i] - gm[i]) / (2 * h);
        assert.ok(
          Math.abs(fd - H[i][j]) <= 1e-6 * scale,
          `H[${i}][${j}] = ${H[i][j]} vs finite difference ${fd}`,
        );
      }
    }
  }
});

test('λ_max through the md×md Gram form equals the top eigenvalue of the dense Hessian (both routes)', () => {
  // n > m·d: the Gram route; n ≤ m·d (rank-1 V, width 1): the dense route.
  const wide = randomCase(3, 2, 3);
  const rank1: Case = {
    depth: 2,
    V: new MlMatrix(gaussian(rng, 4, 1)).mmul(new MlMatrix(gaussian(rng, 1, 4))).to2DArray(),
    sigmaX: spd(rng, 4, KAPPA),
    sigmaEps: spd(rng, 4, KAPPA),
  };
  for (const c of [wide, rank1]) {
    const t = deepLinearTheory(c);
    const n = parameterCount(t.weights);
    const md = c.V.length * c.V[0].length;
    assert.ok(c === wide ? n > md : n <= md, 'exercises the intended route');
    assertRel(t.lambdaMax, topEig(denseHessian(t.weights, c.sigmaX)), ROUNDOFF, `λ_max (n=${n}, md=${md})`);
  }
});

// ---------------------------------------------------------------------------------------------
// sharpness at initialisation

test('E[T] at an N(0, s²) initialisation matches a Monte Carlo average within 5 standard errors', () => {
  const mc = createRng(99);
  const settings = [
    { depth: 1, m: 3, d: 2, width: 4, scale: 0.7 },
    { depth: 2, m: 2, d: 3, width: 5, scale: 0.4 },
    { depth: 4, m: 3, d: 2, width: 6, scale: 0.3 },
  ];
  const samples = 3000;
  for (const { depth, m, d, width, scale } of settings) {
    const sigmaX = spd(mc, d, KAPPA);
    const traceSigmaX = sigmaX.reduce((acc, row, i) => acc + row[i], 0);
    const expected = initSharpness({ depth, outputDim: m, traceSigmaX, width, scale });
    let sum = 0;
    let sumSq = 0;
    for (let k = 0; k < samples; k++) {
      const weights: Matrix[] = [];
      for (let i = 1; i <= depth; i++) {
        const rows = i === depth ? m : width;
        const cols = i === 1 ? d : width;
        weights.push(gaussian(mc, rows, cols, scale));
      }
      const T = sharpnessAt(weights, sigmaX);
      sum += T;
      sumSq += T * T;
    }
    const mean = sum / samples;
    const variance = (sumSq - samples * mean * mean) / (samples - 1);
    const standardError = Math.sqrt(Math.max(variance, 0) / samples);
    // D = 1: T = m Tr Σ_x is deterministic, so the standard error is 0 up to round-off.
    const tol = Math.max(5 * standardError, ROUNDOFF * expected);
    assert.ok(
      Math.abs(mean - expected) <= tol,
      `D=${depth}: Monte Carlo ${mean} ± ${standardError} vs formula ${expected}`,
    );
  }
});

test('initSharpness rejects bad arguments', () => {
  const good = { depth: 3, outputDim: 2, traceSigmaX: 2, width: 4, scale: 0.5 };
  assertRel(initSharpness(good), 3 * 2 * 2 * (4 * 0.25) ** 2, ROUNDOFF, 'formula');
  for (const [field, value] of [
    ['depth', 0],
    ['outputDim', 1.5],
    ['width', -1],
    ['traceSigmaX', 0],
    ['scale', Number.NaN],
  ] as const) {
    assert.throws(
      () => initSharpness({ ...good, [field]: value }),
      (e: unknown) => e instanceof InputError && e.field === field,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// input validation

const good = {
  depth: 3,
  V: [
    [1, 2, 0],
    [0, 1, 1],
  ],
  sigmaX: [
    [2, 0.5, 0],
    [0.5, 1, 0],
    [0, 0, 1],
  ],
  sigmaEps: [
    [1, 0.2],
    [0.2, 3],
  ],
};

const BAD: [string, unknown, string][] = [
  ['not an object', [1, 2], 'config'],
  ['unknown key', { ...good, sigmax: good.sigmaX }, 'sigmax'],
  ['missing depth', { ...good, depth: undefined }, 'depth'],
  ['depth 0', { ...good, depth: 0 }, 'depth'],
  ['fractional depth', { ...good, depth: 2.5 }, 'depth'],
  ['depth as a string', { ...good, depth: '3' }, 'depth'],
  ['missing V', { ...good, V: undefined }, 'V'],
  ['V not an array', { ...good, V: 3 }, 'V'],
  ['V empty', { ...good, V: [] }, 'V'],
  ['V ragged', { ...good, V: [[1, 2, 3], [1]] }, 'V[1]'],
  [
    'V entry a string',
    {
      ...good,
      V: [
        [1, '2', 0],
        [0, 1, 1],
      ],
    },
    'V[0][1]',
  ],
  [
    'V entry null',
    {
      ...good,
      V: [
        [1, 2, 0],
        [0, null, 1],
      ],
    },
    'V[1][1]',
  ],
  [
    'V zero',
    {
      ...good,
      V: [
        [0, 0, 0],
        [0, 0, 0],
      ],
    },
    'V',
  ],
  ['missing sigmaEps', { ...good, sigmaEps: undefined }, 'sigmaEps'],
  [
    'sigmaEps non-square',
    {
      ...good,
      sigmaEps: [
        [1, 0, 0],
        [0, 1, 0],
      ],
    },
    'sigmaEps',
  ],
  ['sigmaEps wrong size', { ...good, sigmaEps: identity(3) }, 'sigmaEps'],
  [
    'sigmaEps non-symmetric',
    {
      ...good,
      sigmaEps: [
        [1, 0.2],
        [0.3, 3],
      ],
    },
    'sigmaEps[1][0]',
  ],
  [
    'sigmaEps indefinite',
    {
      ...good,
      sigmaEps: [
        [1, 2],
        [2, 1],
      ],
    },
    'sigmaEps',
  ],
  [
    'sigmaEps singular',
    {
      ...good,
      sigmaEps: [
        [1, 1],
        [1, 1],
      ],
    },
    'sigmaEps',
  ],
  [
    'sigmaEps entry boolean',
    {
      ...good,
      sigmaEps: [
        [1, 0],
        [0, true],
      ],
    },
    'sigmaEps[1][1]',
  ],
  [
    'sigmaX non-square',
    {
      ...good,
      sigmaX: [
        [1, 0],
        [0, 1],
        [0, 0],
      ],
    },
    'sigmaX',
  ],
  ['sigmaX wrong size', { ...good, sigmaX: identity(2) }, 'sigmaX'],
  [
    'sigmaX non-symmetric',
    {
      ...good,
      sigmaX: [
        [2, 0.5, 0],
        [0.5, 1, 0],
        [0.1, 0, 1],
      ],
    },
    'sigmaX[2][0]',
  ],
  [
    'sigmaX negative definite',
    {
      ...good,
      sigmaX: [
        [-1, 0, 0],
        [0, -1, 0],
        [0, 0, -1],
      ],
    },
    'sigmaX',
  ],
  ['sigmaX not a matrix', { ...good, sigmaX: 'identity' }, 'sigmaX'],
];

for (const [name, raw, field] of BAD) {
  test(`bad input rejected with the field named: ${name} → ${field}`, () => {
    let caught: unknown;
    try {
      validateTheoryConfig(raw);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof InputError, `expected an InputError, got ${String(caught)}`);
    assert.is((caught as InputError).field, field);
    assert.ok((caught as InputError).message.startsWith(`${field}: `));
    // The public entry point validates the same way.
    assert.throws(
      () => deepLinearTheory(raw as Parameters<typeof deepLinearTheory>[0]),
      (e: unknown) => e instanceof InputError && e.field === field,
    );
  });
}

test('validation accepts a good config, defaults Σ_x to I_d and symmetrises within round-off', () => {
  const cfg = validateTheoryConfig({ depth: 2, V: good.V, sigmaEps: good.sigmaEps });
  assert.equal(cfg.sigmaX, identity(3));
  // an asymmetry of a few ulps (a product computed elsewhere) is accepted and removed
  const nearly = validateTheoryConfig({
    ...good,
    sigmaEps: [
      [1, 0.2],
      [0.2 * (1 + 2 * Number.EPSILON), 3],
    ],
  });
  assert.ok(0.2 * (1 + 2 * Number.EPSILON) !== 0.2, 'the input really is asymmetric');
  assert.is(nearly.sigmaEps[0][1], nearly.sigmaEps[1][0]);
  assert.ok(validateTheoryConfig({ ...good, note: 'x' }, { ignoreUnknownKeys: true }));
});

test('orbit minimiser rejects widths below rank V', () => {
  assert.throws(
    () => minimiseOrbit({ ...good, widths: [2, 1] }),
    (e: unknown) => e instanceof InputError && e.field === 'widths[1]',
  );
  assert.throws(
    () => minimiseOrbit({ ...good, widths: [2] }),
    (e: unknown) => e instanceof InputError && e.field === 'widths',
  );
});

test.run();
