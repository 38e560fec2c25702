// accuracy and heldOutLoss on MNIST's test digits: the rows against a float64 forward pass of the same
// weights over the same digits (computed here), with binomial and sample standard errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DigitSet } from '../src/data/mnist.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { runExperiment } from '../src/experiments/executor.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('held-out accuracy and loss');
test.after(destroyTestEngine);

const HIDDEN = 4;

/** Digits with grey values from a small linear-congruential generator; labels 0–9 in turn. */
function digits(count: number, seed: number): DigitSet {
  let state = seed;
  const images = Float32Array.from({ length: count * 784 }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  });
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => (i * 7) % 10) };
}

test('accuracy = fraction of argmax hits, heldOutLoss = mean cross-entropy against the labels, with their s.e., per replica at every log point', async () => {
  const engine = await testEngine();
  const mnist = { train: digits(40, 1), test: digits(30, 2) };
  const config = prepareExperiment({
    name: 'held-out-test',
    description: 'a small MLP on synthetic digits',
    model: { kind: 'mlp', inputDim: 784, hidden: [HIDDEN], outputDim: 10, activation: 'tanh' },
    loss: 'cross-entropy',
    data: { kind: 'mnist', noiseStd: Array(10).fill(0.5) },
    init: { kind: 'normal', scale: 0.5 },
    train: { learningRate: 0.5, batchSize: 8, steps: 20 },
    measure: { every: 10, evaluationSamples: 25, metrics: ['loss', 'accuracy', 'heldOutLoss'] },
    seeds: 2,
    seed: 5,
    groups: [{ name: 'only' }],
    panels: [],
  });
  const weights = new Map<number, number[][]>();
  const { rows } = await runExperiment(engine, config, {
    mnist: () => mnist,
    logPoint: ({ step, params }) =>
      void weights.set(
        step,
        params.map((p) => Array.from(p)),
      ),
  });
  const value = (seed: number, step: number, metric: string) =>
    rows.find((r) => r.seed === seed && r.step === step && r.metric === metric)?.value ?? Number.NaN;
  const n = 25;
  let distinct = 0;
  for (const step of [0, 10, 20]) {
    const [W1, b1, W2, b2] = weights.get(step) ?? [];
    for (const seed of [0, 1]) {
      // Float64 forward of replica `seed`: W1 [4, 784], b1 [4], W2 [10, 4], b2 [10] (y = x Wᵀ + b).
      let correct = 0;
      const losses: number[] = [];
      for (let i = 0; i < n; i++) {
        const x = mnist.test.images.subarray(i * 784, (i + 1) * 784);
        const h = Array.from({ length: HIDDEN }, (_, o) => {
          let sum = b1[seed * HIDDEN + o];
          for (let k = 0; k < 784; k++) sum += W1[seed * HIDDEN * 784 + o * 784 + k] * x[k];
          return Math.tanh(sum);
        });
        const z = Array.from({ length: 10 }, (_, o) => {
          let sum = b2[seed * 10 + o];
          for (let k = 0; k < HIDDEN; k++) sum += W2[seed * 10 * HIDDEN + o * HIDDEN + k] * h[k];
          return sum;
        });
        const label = mnist.test.labels[i];
        if (z.indexOf(Math.max(...z)) === label) correct++;
        const max = Math.max(...z);
        losses.push(max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0)) - z[label]);
      }
      const accuracy = correct / n;
      assert.is(value(seed, step, 'accuracy'), accuracy, `seed ${seed} step ${step}: accuracy`);
      assert.ok(
        Math.abs(value(seed, step, 'accuracyStandardError') - Math.sqrt((accuracy * (1 - accuracy)) / n)) <
          1e-15,
      );
      const mean = losses.reduce((a, b) => a + b, 0) / n;
      const sd = Math.sqrt(losses.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
      // f32 logits (784-term sums of values ≤ 1) against float64: a few 1e-6 relative.
      assert.ok(
        Math.abs(value(seed, step, 'heldOutLoss') - mean) < 1e-4 * mean,
        `loss ${value(seed, step, 'heldOutLoss')} vs ${mean}`,
      );
      assert.ok(Math.abs(value(seed, step, 'heldOutLossStandardError') - sd / Math.sqrt(n)) < 1e-3 * sd);
      if (correct > 0 && correct < n) distinct++;
    }
  }
  assert.ok(distinct > 0, 'some accuracy strictly between 0 and 1 (the binomial s.e. is checked off zero)');
  // Held-out metrics need no curvature: no sharpness rows.
  assert.not.ok(rows.some((r) => r.metric === 'sharpness'));
});

test('accuracy with a regression loss is bad input naming the metric', () => {
  const config = deepLinearConfig({
    name: 'held-out-mse',
    description: 'accuracy asked of an MSE model',
    steps: 10,
    measure: { every: 5, evaluationSamples: 10, metrics: ['heldOutLoss', 'accuracy'] },
    seeds: 1,
    seed: 1,
    groups: [{ name: 'only' }],
    panels: [],
  });
  assert.throws(() => prepareExperiment(config), /measure\.metrics\[1\].*classification loss/);
});

test.run();
