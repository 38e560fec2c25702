/**
 * The public curvature API (`hessian()`) on a model and losses of the user's own, written with the
 * public blocks (dense, layerNorm) and tape ops (logistic and Huber losses): gradient, H·v, the dense
 * Hessian, its diagonal, traces, eigenpairs, blocks and gradient moments, each against float64
 * central differences of an independent CPU implementation of the same function.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Tape, Var } from '../src/autodiff/tape.ts';
import { hessian } from '../src/curvature/hessian.ts';
import { symmetricEigenvalues } from '../src/curvature/tridiagonal.ts';
import { InputError } from '../src/errors.ts';
import { dense, layerNorm } from '../src/models/blocks.ts';
import { huberLoss, type LossKind, logisticLoss } from '../src/models/losses.ts';
import { bias, buildModel, type ModelDefinition, type ModelSpec, weight } from '../src/models/model.ts';
import { centralGradient, centralHessian, cpuLoss } from './helpers/cpu-models.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { shadersLaunched } from './helpers/launches.ts';
import { F32_EPS, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('curvature API: hessian() on a custom model and custom losses vs float64 differences');
test.after(destroyTestEngine);

const [IN, HIDDEN, ROWS, R] = [3, 4, 8, 2];
const EPS = 1e-5;
const DELTA = 0.5;

/** f(x) = W2 · layerNorm(tanh(W1 x + b1)) ∘ g + β + b2: a one-output net of the user's own. */
const model: ModelDefinition = {
  parameters: [
    weight('W1', HIDDEN, IN),
    bias('b1', HIDDEN),
    bias('gain', HIDDEN),
    bias('shift', HIDDEN),
    weight('W2', 1, HIDDEN),
    bias('b2', 1),
  ],
  forward: (tape: Tape, [W1, b1, gain, shift, W2, b2]: readonly Var[], x: Var) =>
    dense(tape, layerNorm(tape, dense(tape, x, W1, b1, 'tanh'), gain, shift, EPS), W2, b2),
};
const SIZES = model.parameters.map((p) => p.shape.reduce((a, b) => a * b, 1));
const N = SIZES.reduce((a, b) => a + b, 0);
const OFFSETS = SIZES.map((_, i) => SIZES.slice(0, i).reduce((a, b) => a + b, 0));

/** The same network in float64, written independently of the tape. */
function cpuForward(theta: Float64Array, x: readonly number[]): number {
  const at = (i: number) => theta.subarray(OFFSETS[i], OFFSETS[i] + SIZES[i]);
  const [W1, b1, gain, shift, W2, b2] = [0, 1, 2, 3, 4, 5].map(at);
  const h = Array.from({ length: HIDDEN }, (_, j) =>
    Math.tanh(b1[j] + x.reduce((s, v, k) => s + W1[j * IN + k] * v, 0)),
  );
  const mean = h.reduce((a, b) => a + b, 0) / HIDDEN;
  const variance = h.reduce((a, v) => a + (v - mean) ** 2, 0) / HIDDEN;
  const normed = h.map((v, j) => ((v - mean) / Math.sqrt(variance + EPS)) * gain[j] + shift[j]);
  return b2[0] + normed.reduce((s, v, j) => s + W2[j] * v, 0);
}

const perSample = {
  logistic: (z: number, y: number) => Math.log1p(Math.exp(-y * z)),
  huber: (z: number, y: number) => {
    const a = Math.abs(z - y);
    return a <= DELTA ? 0.5 * a * a : DELTA * (a - 0.5 * DELTA);
  },
};
const lossFns = { logistic: logisticLoss, huber: (t: Tape, p: Var, y: Var) => huberLoss(t, p, y, DELTA) };

function fixture(kind: 'logistic' | 'huber') {
  const random = seededRandom(kind === 'logistic' ? 11 : 12);
  const xs = Array.from({ length: ROWS }, () => Array.from(randomArray(random, IN, -1.5, 1.5)));
  const ys = Array.from({ length: ROWS }, (_, i) =>
    kind === 'logistic' ? (i % 2 === 0 ? 1 : -1) : 2 * random() - 1,
  );
  const thetas = Array.from({ length: R }, () => {
    const t = randomArray(random, N, -0.8, 0.8);
    t.fill(1, OFFSETS[2], OFFSETS[2] + HIDDEN); // gain near 1
    for (let j = 0; j < HIDDEN; j++) t[OFFSETS[2] + j] += 0.3 * (random() - 0.5);
    return t;
  });
  const loss = (theta: Float64Array) =>
    xs.reduce((s, x, i) => s + perSample[kind](cpuForward(theta, x), ys[i]), 0) / ROWS;
  return { xs, ys, thetas, loss };
}

function maxAbs(rows: ArrayLike<number>[]): number {
  return Math.max(...rows.flatMap((r) => Array.from(r, Math.abs)));
}

for (const kind of ['logistic', 'huber'] as const) {
  test(`${kind}: gradient, H·v, dense Hessian, diagonal, traces, eigenpairs and blocks match float64`, async () => {
    const engine = await testEngine();
    const { xs, ys, thetas, loss } = fixture(kind);
    if (kind === 'huber') {
      // Central differences straddling the kink |r| = δ would be wrong: keep every residual clear of it.
      for (const theta of thetas)
        for (const [i, x] of xs.entries())
          assert.ok(Math.abs(Math.abs(cpuForward(theta, x) - ys[i]) - DELTA) > 1e-2);
    }
    // Parameters as CPU arrays, R replicas each (replica-major), as a user would pass them.
    const params = model.parameters.map((_, p) => {
      const values = new Float32Array(R * SIZES[p]);
      for (const [r, t] of thetas.entries())
        values.set(t.subarray(OFFSETS[p], OFFSETS[p] + SIZES[p]), r * SIZES[p]);
      return values;
    });
    const H = hessian({
      engine,
      model,
      loss: lossFns[kind],
      data: { x: xs, y: ys.map((y) => [y]) },
      params,
    });
    try {
      assert.is(H.size, N);
      assert.is(H.replicas, R);
      // References at the f32-rounded point the GPU sees.
      const points = thetas.map((t) => Float64Array.from(Float32Array.from(t)));
      const gradients = points.map((t) => centralGradient(loss, t));
      const hessians = points.map((t) => centralHessian(loss, t).map((row) => Array.from(row)));
      // f32 through ~20 taped ops per entry and sums over ≤ N terms; differences add O(h²) ≈ 1e-8.
      const scale = Math.max(1, maxAbs(hessians.flat()));
      const tolerance = 64 * N * F32_EPS * scale;

      const grads = await H.gradient();
      const dense = await H.dense();
      const diagonal = await H.diagonal();
      const v = Array.from(randomArray(seededRandom(5), N));
      const hv = await H.apply(v);
      const exact = await H.trace({ method: 'exact' });
      const hutchinson = await H.trace({ probes: 400, seed: 3 });
      const top = await H.eigenvalues({ k: 3, vectors: true, tolerance: 1e-5 });
      const blocks = await H.blocks(['W2', ['W1', 'b1']]);
      for (let r = 0; r < R; r++) {
        const ref = hessians[r];
        const gScale = Math.max(1, maxAbs([gradients[r]]));
        for (let i = 0; i < N; i++) {
          assert.ok(
            Math.abs(grads[r][i] - gradients[r][i]) <= 64 * N * F32_EPS * gScale,
            `∇L[${i}] replica ${r}`,
          );
          assert.ok(Math.abs(diagonal[r][i] - ref[i][i]) <= tolerance, `H[${i}][${i}] replica ${r}`);
          const refHv = ref[i].reduce((s, h, j) => s + h * v[j], 0);
          assert.ok(
            Math.abs(hv[r][i] - refHv) <= tolerance * 4,
            `(Hv)[${i}] replica ${r}: ${hv[r][i]} vs ${refHv}`,
          );
          for (let j = 0; j < N; j++)
            assert.ok(Math.abs(dense[r][i][j] - ref[i][j]) <= tolerance, `H[${i}][${j}] replica ${r}`);
        }
        const trace = ref.reduce((s, row, i) => s + row[i], 0);
        assert.ok(Math.abs(exact.trace[r] - trace) <= N * tolerance, `exact trace replica ${r}`);
        assert.is(exact.standardError[r], 0);
        // Hutchinson: unbiased, so within 5 standard errors of the exact trace.
        assert.ok(hutchinson.standardError[r] > 0);
        assert.ok(Math.abs(hutchinson.trace[r] - trace) <= 5 * hutchinson.standardError[r] + N * tolerance);

        const spectrum = symmetricEigenvalues(ref).sort((a, b) => b - a);
        const norm = Math.max(...spectrum.map(Math.abs));
        top.values[r].forEach((value, i) => {
          assert.ok(
            Math.abs(value - spectrum[i]) <= 1e-3 * norm,
            `λ${i} replica ${r}: ${value} vs ${spectrum[i]}`,
          );
          // The eigenvector satisfies the float64 Hessian: ‖H x − λ x‖ small against ‖H‖.
          const x = top.vectors![r][i];
          const residual = Math.hypot(
            ...ref.map((row, a) => row.reduce((s, h, b) => s + h * x[b], 0) - value * x[a]),
          );
          assert.ok(residual <= 1e-2 * norm, `eigenvector ${i} replica ${r}: residual ${residual}`);
        });

        // Blocks: Tr and λ_max of the principal submatrix of the float64 Hessian on those parameters.
        const groups = [['W2'], ['W1', 'b1']];
        groups.forEach((names, g) => {
          const index = names.flatMap((name) => {
            const p = model.parameters.findIndex((q) => q.name === name);
            return Array.from({ length: SIZES[p] }, (_, k) => OFFSETS[p] + k);
          });
          const sub = index.map((a) => index.map((b) => ref[a][b]));
          assert.equal(blocks[g].names, names);
          assert.is(blocks[g].size, index.length);
          const subTrace = sub.reduce((s, row, i) => s + row[i], 0);
          assert.ok(
            Math.abs(blocks[g].trace[r] - subTrace) <= index.length * tolerance,
            `block ${names} trace`,
          );
          const subMax = Math.max(...symmetricEigenvalues(sub));
          assert.ok(
            Math.abs(blocks[g].lambdaMax[r] - subMax) <= 1e-3 * Math.max(1, Math.abs(subMax)),
            `block ${names} λmax ${blocks[g].lambdaMax[r]} vs ${subMax}`,
          );
        });
      }
      // A block's dense Hessian is the slice of the full one.
      const block = H.block(['b1', 'W2']);
      try {
        const slice = await block.dense();
        const index = [
          ...Array.from({ length: SIZES[1] }, (_, k) => OFFSETS[1] + k),
          ...Array.from({ length: SIZES[4] }, (_, k) => OFFSETS[4] + k),
        ];
        for (let r = 0; r < R; r++)
          for (const [i, a] of index.entries())
            for (const [j, b] of index.entries())
              assert.ok(Math.abs(slice[r][i][j] - hessians[r][a][b]) <= tolerance);
      } finally {
        block.dispose();
      }
    } finally {
      H.dispose();
    }
  });
}

test('gradientMoments: S = mean ‖∇ℓ_i‖² and ‖ḡ‖² against per-sample float64 gradients', async () => {
  const engine = await testEngine();
  const { xs, ys, thetas } = fixture('logistic');
  const params = model.parameters.map((_, p) =>
    Float32Array.from(thetas[0].subarray(OFFSETS[p], OFFSETS[p] + SIZES[p])),
  );
  const H = hessian({ engine, model, loss: logisticLoss, data: { x: xs, y: ys.map((y) => [y]) }, params });
  try {
    const theta = Float64Array.from(Float32Array.from(thetas[0]));
    const sampleGradients = xs.map((x, i) =>
      centralGradient((t) => perSample.logistic(cpuForward(t, x), ys[i]), theta),
    );
    const squares = sampleGradients.map((g) => g.reduce((s, v) => s + v * v, 0));
    const S = squares.reduce((a, b) => a + b, 0) / ROWS;
    const mean = Array.from({ length: N }, (_, j) => sampleGradients.reduce((s, g) => s + g[j], 0) / ROWS);
    const g2 = mean.reduce((s, v) => s + v * v, 0);
    const moments = await H.gradientMoments();
    assert.is(moments.samples, ROWS);
    const tolerance = 64 * N * F32_EPS * Math.max(1, S);
    assert.ok(Math.abs(moments.fluctuation[0] - S) <= tolerance, `S ${moments.fluctuation[0]} vs ${S}`);
    assert.ok(Math.abs(moments.meanGradientSquared[0] - g2) <= tolerance);
    for (const [i, s] of squares.entries()) assert.ok(Math.abs(moments.values[0][i] - s) <= tolerance);
    // Per-parameter second moments mean_i (∂ℓ_i/∂θ_j)², one launch per chunk of samples (2 chunks here).
    const second = Array.from(
      { length: N },
      (_, j) => sampleGradients.reduce((s, g) => s + g[j] ** 2, 0) / ROWS,
    );
    for (const chunked of [moments, await H.gradientMoments({ samplesPerLaunch: 5 })])
      second.forEach((m, j) => {
        assert.ok(Math.abs(chunked.secondMoments[0][j] - m) <= tolerance, `second moment ${j}`);
      });
    // E‖ḡ_B‖² with replacement = ‖ḡ‖² + (S − ‖ḡ‖²)/B.
    assert.ok(Math.abs(moments.minibatch(4)[0] - (g2 + (S - g2) / 4)) <= tolerance);
  } finally {
    H.dispose();
  }
});

test("built-in models through hessian(): an MLP's H·v and an RNN's diagonal run in the fused kernels and match float64; a copy with its own forward pass stays on the tape", async () => {
  const engine = await testEngine();
  const cases: { spec: ModelSpec; loss: LossKind; fusedShader: string }[] = [
    {
      spec: { kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 3, activation: 'relu' },
      loss: 'cross-entropy',
      fusedShader: 'fused_hvp_narrow.wgsl',
    },
    {
      spec: { kind: 'rnn', inputDim: 3, hidden: 4, outputDim: 2, sequenceLength: 3 },
      loss: 'mse',
      fusedShader: 'fused_hessian_diagonal_rnn.wgsl',
    },
  ];
  for (const { spec, loss, fusedShader } of cases) {
    const built = buildModel(spec);
    const n = built.parameters.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
    const random = seededRandom(11);
    const theta = Float64Array.from(Float32Array.from(randomArray(random, n, -0.8, 0.8)));
    const rows = 6;
    const xs = Array.from({ length: rows }, () =>
      Array.from(Float32Array.from(randomArray(random, built.inputFeatures))),
    );
    const ys = Array.from({ length: rows }, () => {
      const raw = Array.from(randomArray(random, built.outputDim));
      if (loss === 'mse') return Array.from(Float32Array.from(raw));
      const e = raw.map(Math.exp);
      const total = e.reduce((a, b) => a + b, 0);
      return Array.from(Float32Array.from(e.map((v) => v / total)));
    });
    const [xs64, ys64] = [xs, ys].map((set) => set.map((row) => Float64Array.from(row)));
    const reference = centralHessian((t) => cpuLoss(spec, loss, t, xs64, ys64), theta).map((row) =>
      Array.from(row),
    );
    const tolerance = 64 * n * F32_EPS * Math.max(1, maxAbs(reference));
    let offset = 0;
    const params = built.parameters.map((p) => {
      const size = p.shape.reduce((a, b) => a * b, 1);
      offset += size;
      return Array.from(theta.subarray(offset - size, offset));
    });
    const v = Array.from(randomArray(seededRandom(12), n));
    for (const [model, fused] of [
      [built, true],
      [{ ...built, forward: built.forward }, false],
    ] as const) {
      const H = hessian({ engine, model, loss, params, data: { x: xs, y: ys } });
      try {
        let hv: Float32Array[] = [];
        let diagonal: number[][] = [];
        const shaders = await shadersLaunched(engine, async () => {
          hv = await H.apply(v);
          diagonal = await H.diagonal();
        });
        assert.is(shaders.has(fusedShader), fused, `${spec.kind}: ${[...shaders]}`);
        for (let i = 0; i < n; i++) {
          const want = reference[i].reduce((sum, h, j) => sum + h * v[j], 0);
          assert.ok(
            Math.abs(hv[0][i] - want) <= tolerance,
            `${spec.kind} (H·v)[${i}] ${hv[0][i]} vs ${want}`,
          );
          assert.ok(Math.abs(diagonal[0][i] - reference[i][i]) <= tolerance, `${spec.kind} H[${i}][${i}]`);
        }
      } finally {
        H.dispose();
      }
    }
  }
});

test('bad input names the field: parameter count, shapes, rows, unknown block names', async () => {
  const engine = await testEngine();
  const params = model.parameters.map((p) => new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
  const data = { x: [[0, 0, 0]], y: [[1]] };
  const fails = (fn: () => unknown, field: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof InputError && field.test((e as InputError).message));
  fails(() => hessian({ engine, model, loss: 'mse', data, params: params.slice(1) }), /^params/);
  fails(
    () => hessian({ engine, model, loss: 'mse', data, params: [new Float32Array(5), ...params.slice(1)] }),
    /params\[0\]/,
  );
  fails(
    () => hessian({ engine, model, loss: 'mse', data: { x: [[0, 0, 0]], y: [[1], [2]] }, params }),
    /data\.y/,
  );
  fails(
    () => hessian({ engine, model, loss: 'mse', data: { x: [[0, Number.NaN, 0]], y: [[1]] }, params }),
    /data\.x/,
  );
  const H = hessian({ engine, model, loss: 'mse', data, params });
  try {
    fails(() => H.block(['W9']), /no parameter 'W9'/);
  } finally {
    H.dispose();
  }
});

test.run();
