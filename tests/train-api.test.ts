import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Tape, Var } from '../src/autodiff/tape.ts';
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { InputError } from '../src/errors.ts';
import { mseLoss } from '../src/models/losses.ts';
import { buildModel } from '../src/models/model.ts';
import { type LogPoint, train } from '../src/train/api.ts';
import { learningRateAt, parseOptimizer, parseSchedule } from '../src/train/optimizer.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { ReferenceOptimizer } from './helpers/optimizer-reference.ts';
import { randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('train() API');
test.after(destroyTestEngine);

/**
 * Linear regression f(x) = W x on in-memory tables, full batch, Nesterov momentum with L2 decay and a
 * cosine schedule with warm-up; two replicas from their own initial weights. Float64 reference:
 * L = ½ mean‖W x − y‖², ∇W = (W X − Y) Xᵀ / n.
 */
test('in-memory tables, full batch, Nesterov + cosine: every log point and the final weights equal float64', async () => {
  const engine = await testEngine();
  const [n, d, m] = [40, 3, 2];
  const random = seededRandom(5);
  const xs = randomArray(random, n * d);
  const ys = randomArray(random, n * m);
  const initial = [randomArray(random, m * d), randomArray(random, m * d)];
  const optimizer = { kind: 'momentum', momentum: 0.8, nesterov: true, weightDecay: 0.02 } as const;
  const schedule = { kind: 'cosine', warmupSteps: 2 } as const;
  const [steps, learningRate] = [7, 0.2];
  const logged: { step: number; loss: number[] }[] = [];
  const result = await train({
    engine,
    model: buildModel({ kind: 'deep-linear', inputDim: d, hidden: [], outputDim: m }),
    loss: 'mse',
    data: { x: { values: xs, shape: [n, d] }, y: { values: ys, shape: [n, m] } },
    learningRate,
    optimizer,
    schedule,
    batchSize: 'full',
    steps,
    replicas: 2,
    initialWeights: initial.map((w, r) => ({ name: `${r}/W1`, shape: [m, d], values: Float32Array.from(w) })),
    logEvery: 3,
    onLogPoint: (point: LogPoint) => void logged.push({ step: point.step, loss: Array.from(point.loss) }),
  });
  assert.equal(
    logged.map((l) => l.step),
    [0, 3, 6, 7],
    'log points count updates applied (0: the initialisation)',
  );
  for (let r = 0; r < 2; r++) {
    const reference = new ReferenceOptimizer(parseOptimizer(optimizer), Float64Array.from(initial[r]));
    const W = reference.theta;
    for (let s = 0; s < steps; s++) {
      const grad = new Float64Array(m * d);
      let loss = 0;
      for (let row = 0; row < n; row++) {
        for (let o = 0; o < m; o++) {
          let e = -ys[row * m + o];
          for (let k = 0; k < d; k++) e += W[o * d + k] * xs[row * d + k];
          loss += (0.5 * e * e) / n;
          for (let k = 0; k < d; k++) grad[o * d + k] += (e * xs[row * d + k]) / n;
        }
      }
      // A log point after s updates reports the loss at those weights (on the full batch here).
      const point = logged.find((l) => l.step === s);
      if (point)
        assert.ok(
          Math.abs(point.loss[r] - loss) <= 1e-5 * loss,
          `replica ${r} loss at ${s}: ${point.loss[r]} vs ${loss}`,
        );
      reference.step(grad, learningRateAt(learningRate, parseSchedule(schedule), s, steps), s + 1);
    }
    const got = result.weights.find((w) => w.name === `${r}/W1`);
    assert.ok(got, `weights named ${r}/W1 (have ${result.weights.map((w) => w.name)})`);
    assert.equal(got.shape, [m, d]);
    got.values.forEach((v, k) => {
      // f32 sums of n = 40 products per gradient entry (relative ~ n·u) over 7 contracting steps.
      assert.ok(Math.abs(v - W[k]) <= 1e-5 * (1 + Math.abs(W[k])), `replica ${r} W1[${k}]: ${v} vs ${W[k]}`);
    });
  }
  // The returned tensors hold the same values as the read-back weights.
  const tensor = await result.parameters[0].read();
  assert.equal(Array.from(tensor), [...result.weights[0].values, ...result.weights[1].values]);
  for (const p of result.parameters) p.dispose();
});

test('a custom loss over tape ops trains like the built-in one: 2·MSE at η/2 equals MSE at η bit for bit', async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'mlp', inputDim: 2, hidden: [5], outputDim: 2, activation: 'tanh' });
  const data = new LinearTeacher(engine, {
    V: [
      [1, -1],
      [0.5, 2],
    ],
    sigmaEps: [
      [0.2, 0],
      [0, 0.1],
    ],
  });
  const run = (loss: 'mse' | ((tape: Tape, p: Var, t: Var) => Var), learningRate: number) =>
    train({ engine, model, loss, data, learningRate, batchSize: 6, steps: 12, replicas: 3, seed: 4 });
  const builtIn = await run('mse', 0.1);
  // Scaling by 2 is exact in floating point, so every gradient is exactly twice the built-in one.
  const doubled = await run((tape, p, t) => tape.scale(mseLoss(tape, p, t), 2), 0.05);
  assert.is(doubled.weights.length, 3 * model.parameters.length);
  builtIn.weights.forEach((w, i) => {
    assert.is(doubled.weights[i].name, w.name);
    assert.equal(Array.from(doubled.weights[i].values), Array.from(w.values), w.name);
  });
  // Replicas start from their own initialisation: their weights differ.
  assert.not.equal(Array.from(builtIn.weights[0].values), Array.from(builtIn.weights[2].values));
  for (const p of [...builtIn.parameters, ...doubled.parameters]) p.dispose();
  data.dispose();
});

test('bad requests are refused naming the field, before any training', async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'deep-linear', inputDim: 2, hidden: [], outputDim: 1 });
  const data = { x: [[1, 2]], y: [[3]] };
  const base = { engine, model, loss: 'mse', data, learningRate: 0.1, batchSize: 1, steps: 2 } as const;
  const refusal = async (request: Partial<Parameters<typeof train>[0]>) => {
    try {
      await train({ ...base, ...request });
    } catch (error) {
      assert.instance(error, InputError);
      return (error as Error).message;
    }
    return 'accepted';
  };
  assert.match(await refusal({ replicas: 0 }), /^replicas: must be a positive integer/);
  assert.match(
    await refusal({ optimizer: { kind: 'adam', beta1: 1.5 } }),
    /^optimizer\.beta1: must be in \[0, 1\)/,
  );
  assert.match(
    await refusal({ data: { x: [[1, 2]], y: [[3], [4]] } }),
    /^data\.y: has 2 rows but data\.x has 1/,
  );
  assert.match(
    await refusal({ data: { x: [[1, Number.NaN]], y: [[3]] } }),
    /^data\.x: row 0, column 1 is NaN/,
  );
  assert.match(
    await refusal({ initialWeights: [{ name: '0/W2', shape: [1, 2], values: new Float32Array(2) }] }),
    /^initialWeights: has no tensor '0\/W1'/,
  );
  assert.match(
    await refusal({ initialWeights: [{ name: 'W1', shape: [2, 1], values: new Float32Array(2) }] }),
    /^initialWeights: tensor 'W1' has shape \[2,1\], the model's W1 is \[1,2\]/,
  );
  const teacher = new LinearTeacher(engine, { V: [[1, 0]], sigmaEps: [[1]] });
  assert.match(
    await refusal({ data: teacher, batchSize: 'full' }),
    /^batchSize: 'full' needs a fixed training set/,
  );
  teacher.dispose();
});

test.run();
