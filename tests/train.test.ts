import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { InputError } from '../src/errors.ts';
import { trainDeepLinearSgd } from '../src/train/sgd.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('linear teacher data and replica-batched SGD');
test.after(destroyTestEngine);

const V = [
  [1, 0.5],
  [-0.3, 2],
];
const SIGMA_X = [
  [2, 0.6],
  [0.6, 1],
];
const SIGMA_EPS = [
  [0.5, 0],
  [0, 0.05],
];

test('samples have covariance Σ_x and label noise Σ_ε (within 5 standard errors)', async () => {
  const engine = await testEngine();
  const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
  const rows = 20_000;
  const { x, y } = data.sample({ seed: 3, step: 0, rows, replicas: 1 });
  const xs = await x.read();
  const ys = await y.read();
  const cov = (f: (r: number) => [number, number]) => {
    const c = [
      [0, 0],
      [0, 0],
    ];
    for (let r = 0; r < rows; r++) {
      const v = f(r);
      for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) c[i][j] += (v[i] * v[j]) / rows;
    }
    return c;
  };
  const cx = cov((r) => [xs[2 * r], xs[2 * r + 1]]);
  const residual = (r: number): [number, number] =>
    [0, 1].map((i) => ys[2 * r + i] - V[i][0] * xs[2 * r] - V[i][1] * xs[2 * r + 1]) as [number, number];
  const ce = cov(residual);
  for (const [name, got, sigma] of [
    ['Σ_x', cx, SIGMA_X],
    ['Σ_ε', ce, SIGMA_EPS],
  ] as const) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        // Var of a Gaussian sample covariance entry: (Σ_ij² + Σ_ii Σ_jj) / n.
        const se = Math.sqrt((sigma[i][j] ** 2 + sigma[i][i] * sigma[j][j]) / rows);
        assert.ok(
          Math.abs(got[i][j] - sigma[i][j]) < 5 * se,
          `${name}[${i}][${j}] = ${got[i][j]}, expected ${sigma[i][j]} ± ${se}`,
        );
      }
    }
  }
  x.dispose();
  y.dispose();
  data.dispose();
});

test('a Σ that is not positive definite is refused before any GPU work, naming the field', async () => {
  const engine = await testEngine();
  const launches = engine.scheduler.launches;
  try {
    new LinearTeacher(engine, {
      V,
      sigmaEps: [
        [1, 2],
        [2, 1],
      ],
    });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, InputError);
    assert.match((error as Error).message, /^sigmaEps/);
  }
  assert.is(engine.scheduler.launches, launches);
});

async function initialWeights(
  engine: Awaited<ReturnType<typeof testEngine>>,
  replicas: number,
  offset: number,
) {
  const shapes = [
    [3, 2],
    [3, 3],
    [2, 3],
  ];
  // Replica r's initial weights depend only on r, so a replica alone starts where it starts in the batch.
  return shapes.map((shape, layer) => {
    const size = shape[0] * shape[1];
    const data: number[] = [];
    for (let r = offset; r < offset + replicas; r++)
      data.push(...randomArray(seededRandom(100 * layer + r + 1), size, -0.6, 0.6));
    return engine.tensor(data, shape, { batch: replicas });
  });
}

test('8 replicas trained together equal each replica trained alone with the same seed', async () => {
  const engine = await testEngine();
  const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
  const options = { learningRate: 0.02, batchSize: 10, steps: 40, seed: 9 };
  const together = await initialWeights(engine, 8, 0);
  await trainDeepLinearSgd(engine, together, data, options);
  const all = await Promise.all(together.map((w) => w.read()));
  for (const replica of [0, 3, 7]) {
    const alone = await initialWeights(engine, 1, replica);
    await trainDeepLinearSgd(engine, alone, data, { ...options, replicaOffset: replica });
    for (const [layer, w] of alone.entries()) {
      const got = await w.read();
      const size = got.length;
      for (let i = 0; i < size; i++) {
        const batched = all[layer][replica * size + i];
        // Same kernels on the same data: equal up to summation-order rounding over 40 steps.
        assert.ok(
          Math.abs(got[i] - batched) <= 1e-5 * (1 + Math.abs(batched)),
          `replica ${replica} W${layer + 1}[${i}]: ${got[i]} vs ${batched}`,
        );
      }
      w.dispose();
    }
  }
  for (const w of together) w.dispose();
  data.dispose();
});

test('SGD drives the loss down to the label-noise floor ½·Tr Σ_ε', async () => {
  const engine = await testEngine();
  const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
  const weights = await initialWeights(engine, 4, 0);
  const losses: number[] = [];
  const record = (_step: number, loss: Float32Array) => {
    losses.push(loss.reduce((a, b) => a + b, 0) / loss.length);
  };
  const options = { learningRate: 0.05, batchSize: 50, seed: 4, onLog: record };
  await trainDeepLinearSgd(engine, weights, data, { ...options, steps: 1, logEvery: 1 });
  await trainDeepLinearSgd(engine, weights, data, { ...options, startStep: 1, steps: 600, logEvery: 50 });
  const floor = 0.5 * (SIGMA_EPS[0][0] + SIGMA_EPS[1][1]);
  const late = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  // At a global minimum the minibatch loss is ½‖ε‖² averaged over 50 rows × 4 replicas: mean = floor,
  // standard error ≈ floor·√(2/200)/√5 over five log points; allow the residual fit error on top.
  assert.ok(losses[0] > 2 * floor, `initial loss ${losses[0]} should be well above the floor ${floor}`);
  assert.ok(Math.abs(late - floor) < 0.25 * floor, `late loss ${late} vs floor ${floor}`);
  for (const w of weights) w.dispose();
  data.dispose();
});

test.run();
