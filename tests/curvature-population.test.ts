/**
 * Population curvature of deep linear networks on a linear teacher (src/curvature/deep-linear-population.ts)
 * against float64 references built here: the Hessian as Gauss–Newton Kronecker blocks
 * (L_iᵀL_j) ⊗ (R_i Σ_x R_jᵀ) plus the residual term with Ĉ = (P − V) Σ_x (tests/helpers), the
 * fluctuation by Monte Carlo over fresh Gaussian samples (within 4 standard errors), and at the
 * minimum the theory predicts (weights injected from src/theory) T*, λ_max*, S* to 1 %.
 */
import { Matrix as MlMatrix, QrDecomposition } from 'ml-matrix';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DeepLinearChain, lanczosTop, mat } from '../src/curvature/deep-linear-chain.ts';
import { nearestMinimum, populationCurvature } from '../src/curvature/deep-linear-population.ts';
import { deepLinearTheory } from '../src/theory/deep-linear.ts';
import type { Matrix } from '../src/theory/linalg.ts';
import { sqrtSym } from '../src/theory/linalg.ts';
import { chain, empiricalHessian, meanAndError, perSample } from './helpers/curvature-deep-linear.ts';
import { eigenvalues, relativeError, seededRandom } from './helpers/curvature-reference.ts';

const test = suite('curvature: population Hessian and fluctuation of deep linear networks');

/** A random symmetric positive definite matrix with eigenvalues spread over [low, high]. */
function spd(n: number, random: () => number, low: number, high: number): Matrix {
  const g = new MlMatrix(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) g.set(i, j, random() - 0.5);
  const Q = new QrDecomposition(g).orthogonalMatrix;
  const values = Array.from({ length: n }, (_, i) => low * (high / low) ** (n === 1 ? 0 : i / (n - 1)));
  return Q.mmul(MlMatrix.diag(values)).mmul(Q.transpose()).to2DArray();
}

function randomMatrix(rows: number, cols: number, random: () => number, scale: number): Matrix {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * (2 * random() - 1)));
}

/**
 * A random problem: teacher V, Σ_x, Σ_ε (eigenvalues in the given ranges) and weights of the given
 * widths away from any minimum, and its population curvature.
 */
function randomProblem(seed: number, widths: number[], weightScale: number, top: number) {
  const random = seededRandom(seed);
  const d = widths[0];
  const m = widths[widths.length - 1];
  const V = randomMatrix(m, d, random, 1);
  const sigmaX = spd(d, random, 0.3, 2);
  const sigmaEps = spd(m, random, 0.05, 1.5);
  const layers = widths.slice(1).map((rows, l) => randomMatrix(rows, widths[l], random, weightScale));
  const got = populationCurvature({
    widths,
    weights: asWeights(layers),
    replicas: 1,
    V,
    sigmaX: [sigmaX],
    sigmaEps: [sigmaEps],
    top,
  });
  return { V, sigmaX, sigmaEps, layers, got };
}

/** Flattens one replica's layer matrices into the per-layer arrays populationCurvature reads. */
function asWeights(layers: readonly Matrix[]): Float64Array[] {
  return layers.map((w) => Float64Array.from(w.flat()));
}

function widthsOf(layers: readonly Matrix[]): number[] {
  return [layers[0][0].length, ...layers.map((w) => w.length)];
}

/** Reference Hessian of the population loss: Kronecker blocks with Σ_x plus the residual term. */
function referenceHessian(layers: readonly Matrix[], V: Matrix, sigmaX: Matrix): number[][] {
  const c = chain(layers);
  const P = c.L[0].mmul(c.W[0]);
  const cross = P.sub(new MlMatrix(V)).mmul(new MlMatrix(sigmaX));
  return empiricalHessian(layers, new MlMatrix(sigmaX), cross);
}

/** Monte Carlo E‖∇ℓ‖² over `samples` fresh draws of x ~ N(0, Σ_x), y = V x + ε. */
function monteCarloFluctuation(
  layers: readonly Matrix[],
  V: Matrix,
  sigmaX: Matrix,
  sigmaEps: Matrix,
  samples: number,
  seed: number,
) {
  const random = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const rx = sqrtSym(new MlMatrix(sigmaX)).to2DArray();
  const re = sqrtSym(new MlMatrix(sigmaEps)).to2DArray();
  const xs: Float64Array[] = [];
  const ys: Float64Array[] = [];
  for (let s = 0; s < samples; s++) {
    const z = rx.map(() => normal());
    const e = re.map(() => normal());
    const x = Float64Array.from(rx, (row) => row.reduce((a, v, b) => a + v * z[b], 0));
    const y = Float64Array.from(
      re,
      (row, k) => row.reduce((a, v, l) => a + v * e[l], 0) + V[k].reduce((a, v, b) => a + v * x[b], 0),
    );
    xs.push(x);
    ys.push(y);
  }
  return meanAndError(perSample(layers, xs, ys).gradients);
}

const CASES = [
  { name: 'depth 1, 3 → 2', widths: [3, 2] },
  { name: 'depth 2, 2 → 3 → 2', widths: [2, 3, 2] },
  { name: 'depth 3, 3 → 2 → 4 → 2', widths: [3, 2, 4, 2] },
];

for (const [index, c] of CASES.entries()) {
  test(`${c.name}: population Hessian = Kronecker + residual reference, S = Monte Carlo`, () => {
    // Away from any minimum, so the residual term of the Hessian and of S matters.
    const { V, sigmaX, sigmaEps, layers, got } = randomProblem(100 + index, c.widths, 0.9, 3);
    const H = referenceHessian(layers, V, sigmaX);
    const want = eigenvalues(H);
    const scale = Math.max(...want.map(Math.abs));
    // Both in float64 from O(n) products of small matrices: agreement to round-off of the largest entry.
    const traceRef = H.reduce((s, row, i) => s + row[i], 0);
    assert.ok(
      Math.abs(got.trace[0] - traceRef) < 1e-10 * scale * H.length,
      `trace ${got.trace[0]} vs ${traceRef}`,
    );
    want.forEach((v, i) => {
      const e = got.eigenvalues?.[0][i] ?? Number.NaN;
      assert.ok(Math.abs(e - v) < 1e-10 * scale, `eigenvalue ${i}: ${e} vs ${v}`);
    });
    assert.equal(got.top[0].length, Math.min(3, H.length));
    assert.ok(Math.abs(got.top[0][0] - want[want.length - 1]) < 1e-10 * scale);
    const mc = monteCarloFluctuation(layers, V, sigmaX, sigmaEps, 40_000, 7 + index);
    assert.ok(
      Math.abs(got.fluctuation[0] - mc.mean) < 4 * mc.standardError,
      `S ${got.fluctuation[0]} vs Monte Carlo ${mc.mean} ± ${mc.standardError}`,
    );
  });
}

test('layer blocks, top eigenvalues and ‖∇L‖ against the dense reference and central differences', () => {
  const { V, sigmaX, layers, got } = randomProblem(77, [3, 4, 2, 2], 0.8, 4);
  const H = referenceHessian(layers, V, sigmaX);
  const scale = Math.max(...eigenvalues(H).map(Math.abs));
  // Each layer's diagonal block of the dense reference: its trace and top eigenvalue.
  let offset = 0;
  layers.forEach((w, l) => {
    const size = w.length * w[0].length;
    const block = H.slice(offset, offset + size).map((row) => row.slice(offset, offset + size));
    offset += size;
    const trace = block.reduce((s, row, i) => s + row[i], 0);
    const top = eigenvalues(block).at(-1) ?? Number.NaN;
    assert.ok(Math.abs(got.layers[0][l].trace - trace) < 1e-10 * scale * size, `layer ${l} trace`);
    assert.ok(Math.abs(got.layers[0][l].lambdaMax - top) < 1e-10 * scale, `layer ${l} λ_max`);
  });
  assert.equal(
    got.top[0].map((v) => Number(v.toPrecision(10))),
    eigenvalues(H)
      .slice(-4)
      .reverse()
      .map((v) => Number(v.toPrecision(10))),
  );
  // ‖∇L‖ of L(θ) = ½ Tr((P − V) Σ_x (P − V)ᵀ) by central differences in float64.
  const loss = (theta: Float64Array) => {
    let k = 0;
    const W = layers.map((w) => w.map((row) => row.map(() => theta[k++])));
    const c = chain(W);
    const M = c.L[0].mmul(c.W[0]).sub(new MlMatrix(V));
    return 0.5 * M.mmul(new MlMatrix(sigmaX)).mmul(M.transpose()).trace();
  };
  const theta = Float64Array.from(layers.flatMap((w) => w.flat()));
  const h = 1e-6;
  let squared = 0;
  for (let i = 0; i < theta.length; i++) {
    const plus = Float64Array.from(theta);
    const minus = Float64Array.from(theta);
    plus[i] += h;
    minus[i] -= h;
    squared += ((loss(plus) - loss(minus)) / (2 * h)) ** 2;
  }
  assert.ok(
    relativeError(got.gradientNorm[0], Math.sqrt(squared)) < 1e-7,
    `‖∇L‖ ${got.gradientNorm[0]} vs ${Math.sqrt(squared)}`,
  );
});

test('at the minimum the theory predicts, T, λ_max and S equal T*, λ_max*, S* (held-out V, Σ_x, Σ_ε, depths)', () => {
  const random = seededRandom(2026);
  for (const [depth, d, m] of [
    [2, 3, 2],
    [3, 2, 3],
    [4, 3, 3],
    [5, 2, 2],
  ]) {
    const V = randomMatrix(m, d, random, 1.5);
    const sigmaX = spd(d, random, 0.2, 3);
    const sigmaEps = spd(m, random, 0.01, 4);
    const theory = deepLinearTheory({ depth, V, sigmaX, sigmaEps });
    const got = populationCurvature({
      widths: widthsOf(theory.weights),
      weights: asWeights(theory.weights),
      replicas: 1,
      V,
      sigmaX: [sigmaX],
      sigmaEps: [sigmaEps],
    });
    const where = `depth ${depth}, ${d} → ${m}`;
    assert.ok(
      relativeError(got.trace[0], theory.sharpness) < 0.01,
      `${where}: T ${got.trace[0]} vs T* ${theory.sharpness}`,
    );
    assert.ok(
      relativeError(got.top[0][0], theory.lambdaMax) < 0.01,
      `${where}: λ ${got.top[0][0]} vs ${theory.lambdaMax}`,
    );
    assert.ok(
      relativeError(got.fluctuation[0], theory.fluctuation) < 0.01,
      `${where}: S ${got.fluctuation[0]} vs S* ${theory.fluctuation}`,
    );
  }
});

test('λ_max at the nearest minimum: a normal displacement of the predicted minimum is undone to second order; P = V there', () => {
  const random = seededRandom(77);
  const isotropic = {
    depth: 3,
    V: [
      [1, 0],
      [0, 1],
    ],
    sigmaX: [
      [1, 0],
      [0, 1],
    ],
    sigmaEps: [
      [100, 0],
      [0, 100],
    ],
  };
  const held = [2, 3].map((depth) => ({
    depth,
    V: randomMatrix(2, 3, random, 1.5),
    sigmaX: spd(3, random, 0.3, 2),
    sigmaEps: spd(2, random, 0.05, 2),
  }));
  for (const problem of [isotropic, ...held]) {
    const theory = deepLinearTheory(problem);
    const where = `depth ${problem.depth}, V ${problem.V.length}×${problem.V[0].length}`;
    const spectrum = eigenvalues(referenceHessian(theory.weights, problem.V, problem.sigmaX));
    const lambdaStar = Math.max(...spectrum);
    assert.is(
      theory.lambdaMaxMultiplicity,
      spectrum.filter((v) => v > lambdaStar * (1 - 1e-7)).length,
      `${where}: λ_max*'s multiplicity`,
    );
    // Normal to the manifold at θ*: δW_l = L_lᵀ Y R_lᵀ (the range of J_Pᵀ), ‖δθ‖ = ε ‖θ*‖.
    const c = chain(theory.weights);
    const Y = new MlMatrix(randomMatrix(problem.V.length, problem.V[0].length, random, 1));
    const normal = c.W.map((_, l) => c.L[l].transpose().mmul(Y).mmul(c.R[l].transpose()));
    const size = Math.sqrt(c.W.reduce((sum, w) => sum + w.norm() ** 2, 0));
    const length = Math.sqrt(normal.reduce((sum, w) => sum + w.norm() ** 2, 0));
    const epsilon = 1e-3;
    const moved = c.W.map((w, l) =>
      w
        .clone()
        .add(normal[l].clone().mul((epsilon * size) / length))
        .to2DArray(),
    );
    const got = populationCurvature({
      widths: widthsOf(moved),
      weights: asWeights(moved),
      replicas: 1,
      V: problem.V,
      sigmaX: [problem.sigmaX],
      sigmaEps: [problem.sigmaEps],
      atMinimum: true,
    });
    const relaxed = got.lambdaMaxAtMinimum![0];
    // O(ε²) left after the projection (ε² = 1e-6), against O(ε) at the displaced point.
    assert.ok(
      relativeError(relaxed, lambdaStar) < 2e-5,
      `${where}: λ_max at the nearest minimum ${relaxed} vs λ_max* ${lambdaStar}`,
    );
    if (theory.lambdaMaxMultiplicity > 1)
      assert.ok(
        got.top[0][0] - lambdaStar > 1e-4 * lambdaStar,
        `${where}: a degenerate λ_max* splits at first order at the displaced point (${got.top[0][0]} vs ${lambdaStar})`,
      );
    // The projection itself: P = V (the test's own product) and back at θ* to O(ε²).
    const minimum = nearestMinimum(
      new DeepLinearChain(
        widthsOf(moved),
        moved.map((w) => mat(w.length, w[0].length, Float64Array.from(w.flat()))),
      ),
      mat(problem.V.length, problem.V[0].length, Float64Array.from(problem.V.flat())),
    );
    assert.ok(minimum, `${where}: a minimum is reached`);
    const weights = minimum.W.map((w) =>
      Array.from({ length: w.rows }, (_, i) => Array.from(w.data.subarray(i * w.cols, (i + 1) * w.cols))),
    );
    const product = chain(weights);
    const misfit = product.L[0].mmul(product.W[0]).sub(new MlMatrix(problem.V)).norm();
    assert.ok(misfit < 1e-10, `${where}: ‖P − V‖ = ${misfit} at the nearest minimum`);
    const back = Math.sqrt(weights.reduce((sum, w, l) => sum + new MlMatrix(w).sub(c.W[l]).norm() ** 2, 0));
    assert.ok(
      back < 10 * epsilon ** 2 * size,
      `${where}: ${back} from θ* after a normal step of ${epsilon * size}`,
    );
  }
  // Far from the manifold (small random weights, as at initialisation) the steps still end on it.
  const far = randomProblem(5, [3, 4, 4, 2], 0.3, 1);
  const start = far.layers.map((w) => mat(w.length, w[0].length, Float64Array.from(w.flat())));
  const minimum = nearestMinimum(
    new DeepLinearChain([3, 4, 4, 2], start),
    mat(2, 3, Float64Array.from(far.V.flat())),
  );
  assert.ok(minimum);
  const misfit = Math.hypot(...minimum.P.data.map((p, k) => p - far.V.flat()[k]));
  assert.ok(misfit < 1e-10, `from random weights: ‖P − V‖ = ${misfit}`);
});

test('worked example of theory.md: V = I₂, Σ_ε = diag(1, 0.1), D = 2', () => {
  const theory = deepLinearTheory({
    depth: 2,
    V: [
      [1, 0],
      [0, 1],
    ],
    sigmaEps: [
      [1, 0],
      [0, 0.1],
    ],
  });
  const got = populationCurvature({
    widths: widthsOf(theory.weights),
    weights: asWeights(theory.weights),
    replicas: 1,
    V: [
      [1, 0],
      [0, 1],
    ],
    sigmaX: [
      [
        [1, 0],
        [0, 1],
      ],
    ],
    sigmaEps: [
      [
        [1, 0],
        [0, 0.1],
      ],
    ],
  });
  // theory.md: S* = 3.904563, T* = 9.723258, λ_max* = 3.693608 (7 digits).
  assert.ok(Math.abs(got.fluctuation[0] - 3.904563) < 1e-6);
  assert.ok(Math.abs(got.trace[0] - 9.723258) < 1e-6);
  assert.ok(Math.abs(got.top[0][0] - 3.693608) < 1e-6);
});

test('beyond the dense limit, float64 Lanczos gives the top eigenvalues of the dense reference', () => {
  // 276 parameters > POPULATION_DENSE_MAX_PARAMETERS.
  const { V, sigmaX, layers, got } = randomProblem(9, [6, 12, 12, 5], 0.5, 3);
  assert.is(got.method, 'lanczos');
  const want = eigenvalues(referenceHessian(layers, V, sigmaX)).reverse();
  got.top[0].forEach((v, i) => {
    assert.ok(relativeError(v, want[i]) < 1e-8, `λ${i + 1}: ${v} vs ${want[i]}`);
  });
  // Lanczos on a known diagonal operator: the top three of 1 … 50.
  const diagonal = (v: Float64Array) => v.map((x, i) => (i + 1) * x);
  assert.equal(
    lanczosTop(diagonal, 50, 3, 50).map((x) => Math.round(x * 1e9) / 1e9),
    [50, 49, 48],
  );
});

test.run();
