import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { deepLinearCurvature } from '../src/curvature/deep-linear-exact.ts';
import { measureCurvature } from '../src/curvature/measure.ts';
import { HessianOperator } from '../src/curvature/operator.ts';
import { lossFunction } from '../src/models/losses.ts';
import { buildModel, type ModelSpec } from '../src/models/model.ts';
import { centralGradient, centralHessian, cpuLoss } from './helpers/cpu-models.ts';
import { eigenvalues, F32_EPS, seededRandom } from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite(
  'curvature: exact float64 Hessian and fluctuation of deep linear networks from data moments',
);
test.after(destroyTestEngine);

const R = 2;
const N = 9;

type DeepLinearSpec = Extract<ModelSpec, { kind: 'deep-linear' }>;

const CASES: DeepLinearSpec[] = [
  { kind: 'deep-linear', inputDim: 3, hidden: [], outputDim: 2 },
  { kind: 'deep-linear', inputDim: 2, hidden: [3, 2], outputDim: 2 },
  { kind: 'deep-linear', inputDim: 3, hidden: [2, 4, 1], outputDim: 2 },
];

function instance(spec: DeepLinearSpec, seed: number) {
  const random = seededRandom(seed);
  const model = buildModel(spec);
  const widths = [spec.inputDim, ...spec.hidden, spec.outputDim];
  // Weights away from any minimum (the residual term of the Hessian matters) and non-trivial data.
  const weights = model.parameters.map((p) =>
    Float32Array.from({ length: R * p.shape[0] * p.shape[1] }, () => random() * 1.6 - 0.8),
  );
  const x = Float32Array.from({ length: R * N * widths[0] }, () => random() * 2 - 1);
  const y = Float32Array.from({ length: R * N * model.outputDim }, () => random() * 2 - 1);
  const evaluation = { widths, weights, x, y, samples: N, replicas: R };
  return { model, widths, weights, x, y, evaluation };
}

/** Replica r's parameters as one float64 vector (layers in order, row-major) and its samples. */
function replica(c: ReturnType<typeof instance>, r: number) {
  const theta = Float64Array.from(
    c.weights.flatMap((w) => {
      const size = w.length / R;
      return Array.from(w.subarray(r * size, (r + 1) * size));
    }),
  );
  const d = c.widths[0];
  const m = c.widths[c.widths.length - 1];
  const xs = Array.from({ length: N }, (_, i) =>
    Float64Array.from(c.x.subarray((r * N + i) * d, (r * N + i + 1) * d)),
  );
  const ys = Array.from({ length: N }, (_, i) =>
    Float64Array.from(c.y.subarray((r * N + i) * m, (r * N + i + 1) * m)),
  );
  return { theta, xs, ys };
}

for (const [index, spec] of CASES.entries()) {
  const label = `${spec.inputDim}-[${spec.hidden}]-${spec.outputDim}`;

  test(`${label}: trace, eigenvalues and fluctuation equal float64 central differences`, () => {
    const c = instance(spec, 11 + index);
    const got = deepLinearCurvature(c.evaluation);
    for (let r = 0; r < R; r++) {
      const { theta, xs, ys } = replica(c, r);
      const H = centralHessian((t) => cpuLoss(spec, 'mse', t, xs, ys), theta).map((row) => Array.from(row));
      const want = eigenvalues(H);
      // Second central differences: truncation O(h²·|∂⁴L|) and rounding O(u·L/h²) at h = 1e-4.
      const scale = 1 + Math.max(...want.map(Math.abs));
      const tolerance = 1e-5 * scale;
      want.forEach((v, k) => {
        assert.ok(
          Math.abs(got.eigenvalues[r][k] - v) <= tolerance,
          `replica ${r} λ${k}: ${got.eigenvalues[r][k]} vs ${v}`,
        );
      });
      const trace = H.reduce((s, row, i) => s + row[i], 0);
      assert.ok(Math.abs(got.trace[r] - trace) <= tolerance * H.length, `trace ${got.trace[r]} vs ${trace}`);
      // S = mean ‖∇ℓ_i‖² from per-sample central gradients (error O(h²) at h = 1e-6 plus u/h rounding).
      let S = 0;
      for (let i = 0; i < N; i++) {
        const g = centralGradient((t) => cpuLoss(spec, 'mse', t, [xs[i]], [ys[i]]), theta);
        S += g.reduce((a, v) => a + v * v, 0);
      }
      S /= N;
      assert.ok(
        Math.abs(got.fluctuation[r] - S) <= 1e-6 * (1 + S),
        `fluctuation ${got.fluctuation[r]} vs ${S}`,
      );
    }
  });

  test(`${label}: agrees with the GPU's dense Hessian from batched HVPs (float32)`, async () => {
    const engine = await testEngine();
    const c = instance(spec, 21 + index);
    const params = c.model.parameters.map((p, i) => engine.tensor(c.weights[i], p.shape, { batch: R }));
    const d = c.widths[0];
    const m = c.widths[c.widths.length - 1];
    const x = engine.tensor(c.x, [N, d], { batch: R });
    const y = engine.tensor(c.y, [N, m], { batch: R });
    const lossOf = lossFunction('mse');
    const operator = HessianOperator.create(engine, {
      params,
      loss: (tape, vars, data) => lossOf(tape, c.model.forward(tape, vars, data.x), data.y),
      evaluation: { data: { x, y } },
    });
    const gpu = await measureCurvature(operator, { trace: true, lambdaMax: true, fluctuation: true });
    const exact = deepLinearCurvature(c.evaluation);
    for (let r = 0; r < R; r++) {
      const norm = Math.max(...exact.eigenvalues[r].map(Math.abs));
      const n = exact.eigenvalues[r].length;
      // f32 HVPs: each entry a length-n dot product of terms chained through ≤ 2D products of N samples.
      const tolerance = 64 * (n + N) * F32_EPS * (1 + norm);
      assert.ok(
        Math.abs((gpu.trace?.[r] ?? Number.NaN) - exact.trace[r]) <= n * tolerance,
        `trace replica ${r}`,
      );
      assert.ok(
        Math.abs((gpu.lambdaMax?.[r] ?? Number.NaN) - exact.eigenvalues[r][n - 1]) <= tolerance,
        `λmax replica ${r}`,
      );
      const S = exact.fluctuation[r];
      assert.ok(
        Math.abs((gpu.fluctuation?.[r] ?? Number.NaN) - S) <= 64 * N * F32_EPS * (1 + S),
        `S replica ${r}`,
      );
    }
    operator.dispose();
    for (const t of [...params, x, y]) t.dispose();
  });
}

test('shapes that do not match are input errors', () => {
  assert.throws(
    () =>
      deepLinearCurvature({
        widths: [2, 2],
        weights: [new Float32Array(4)],
        x: new Float32Array(3),
        y: new Float32Array(2),
        samples: 1,
        replicas: 1,
      }),
    /evaluation/,
  );
});

test.run();
