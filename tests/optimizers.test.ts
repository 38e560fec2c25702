import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FixedDataset } from '../src/data/fixed.ts';
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { InputError } from '../src/errors.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { type Checkpoint, type ResultRow, runExperiment } from '../src/experiments/executor.ts';
import { buildModel } from '../src/models/model.ts';
import {
  learningRateAt,
  type OptimizerInput,
  OptimizerState,
  parseOptimizer,
  parseSchedule,
  type ScheduleInput,
} from '../src/train/optimizer.ts';
import { train } from '../src/train/trainer.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { shadersLaunched } from './helpers/launches.ts';
import { ReferenceOptimizer } from './helpers/optimizer-reference.ts';
import { F32_EPS, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('optimizers and learning-rate schedules');
test.after(destroyTestEngine);

/**
 * Each optimizer's kernel against the float64 reference, step by step, with decay and a schedule.
 * Gradients are fixed random arrays (independent of any model), so this checks the update alone.
 */
const CASES: { optimizer: OptimizerInput; schedule: ScheduleInput }[] = [
  { optimizer: { kind: 'sgd', weightDecay: 0.1 }, schedule: { kind: 'step', every: 2, factor: 0.5 } },
  {
    optimizer: { kind: 'sgd', weightDecay: 0.3, decoupledWeightDecay: true },
    schedule: { kind: 'constant', warmupSteps: 3 },
  },
  {
    optimizer: { kind: 'momentum', momentum: 0.8, weightDecay: 0.05 },
    schedule: { kind: 'cosine', minFactor: 0.1 },
  },
  {
    optimizer: {
      kind: 'momentum',
      momentum: 0.9,
      nesterov: true,
      weightDecay: 0.2,
      decoupledWeightDecay: true,
    },
    schedule: { kind: 'cosine', warmupSteps: 2, steps: 4 },
  },
  { optimizer: { kind: 'adam', weightDecay: 0.01 }, schedule: { kind: 'constant' } },
  {
    optimizer: {
      kind: 'adam',
      beta1: 0.8,
      beta2: 0.95,
      epsilon: 1e-6,
      weightDecay: 0.1,
      decoupledWeightDecay: true,
    },
    schedule: { kind: 'cosine', warmupSteps: 2 },
  },
];

for (const { optimizer: rawOptimizer, schedule: rawSchedule } of CASES) {
  test(`${JSON.stringify(rawOptimizer)} with ${JSON.stringify(rawSchedule)} equals its float64 reference step by step`, async () => {
    const engine = await testEngine();
    const optimizer = parseOptimizer(rawOptimizer);
    const schedule = parseSchedule(rawSchedule);
    const random = seededRandom(41);
    const replicas = 3;
    const shapes = [[4, 5], [3]];
    const steps = 6;
    const params = shapes.map((shape) =>
      engine.tensor(
        Float32Array.from(randomArray(random, replicas * shape.reduce((a, b) => a * b, 1))),
        shape,
        { batch: replicas },
      ),
    );
    const references = await Promise.all(
      params.map(async (p) => new ReferenceOptimizer(optimizer, Float64Array.from(await p.read()))),
    );
    const state = new OptimizerState(engine, optimizer, params);
    for (let step = 0; step < steps; step++) {
      const rate = learningRateAt(0.05, schedule, step, steps);
      const grads = params.map((p) => Float32Array.from(randomArray(random, p.length, -2, 2)));
      const gradTensors = grads.map((g, i) => engine.tensor(g, params[i].shape, { batch: replicas }));
      state.update(params, gradTensors, step, rate);
      for (const [i, reference] of references.entries()) {
        reference.step(grads[i], rate, step + 1);
        const got = await params[i].read();
        for (let k = 0; k < got.length; k++) {
          // A handful of f32 operations per element and step (≤ 8 roundings each of |θ| or |Δθ| ≤ 2),
          // accumulated over the steps so far: 16 ulp of 2 per step.
          const bound = 16 * 2 * F32_EPS * (step + 1) * (1 + Math.abs(reference.theta[k]));
          assert.ok(
            Math.abs(got[k] - reference.theta[k]) <= bound,
            `step ${step} tensor ${i}[${k}]: ${got[k]} vs ${reference.theta[k]} (bound ${bound})`,
          );
        }
      }
      for (const g of gradTensors) g.dispose();
    }
    // The saved state restores into a fresh one (what a checkpoint does).
    const saved = await state.read();
    const restored = new OptimizerState(engine, optimizer, params);
    restored.write(saved);
    assert.equal(await restored.read(), saved);
    restored.dispose();
    state.dispose();
    for (const p of params) p.dispose();
  });
}

test('schedules: step, cosine and warm-up factors at their defining points', () => {
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-15 * Math.max(1, Math.abs(b));
  const step = parseSchedule({ kind: 'step', every: 10, factor: 0.1 });
  assert.ok(close(learningRateAt(2, step, 9, 100), 2));
  assert.ok(close(learningRateAt(2, step, 10, 100), 0.2));
  assert.ok(close(learningRateAt(2, step, 25, 100), 0.02));
  const cosine = parseSchedule({ kind: 'cosine', minFactor: 0.25 });
  assert.ok(close(learningRateAt(1, cosine, 0, 40), 1));
  assert.ok(close(learningRateAt(1, cosine, 20, 40), 0.25 + 0.75 * 0.5));
  assert.ok(close(learningRateAt(1, cosine, 40, 40), 0.25));
  assert.ok(close(learningRateAt(1, cosine, 90, 40), 0.25), 'held at the floor after the horizon');
  const warm = parseSchedule({ kind: 'constant', warmupSteps: 4 });
  assert.equal(
    [0, 1, 2, 3, 4, 9].map((s) => learningRateAt(1, warm, s, 10)),
    [0.25, 0.5, 0.75, 1, 1, 1],
  );
});

test('bad optimizer and schedule fields are refused naming their path', () => {
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      assert.instance(error, InputError);
      return (error as Error).message;
    }
    return 'accepted';
  };
  assert.match(
    refusal(() => parseOptimizer({ kind: 'adam', beta2: 1 })),
    /^optimizer\.beta2: must be in \[0, 1\)/,
  );
  assert.match(
    refusal(() => parseOptimizer({ kind: 'momentum', nesterov: 'yes' })),
    /^optimizer\.nesterov/,
  );
  assert.match(
    refusal(() => parseSchedule({ kind: 'step', factor: 0.5 })),
    /^schedule\.every/,
  );
  // In a config, the message names the JSON path as written, inside a group's overrides.
  const config = deepLinearConfig({
    name: 'bad-optimizer',
    description: '',
    steps: 10,
    measure: { every: 5, evaluationSamples: 50, metrics: ['loss'] },
    seeds: 1,
    seed: 0,
    groups: [
      { name: 'a' },
      { name: 'b', overrides: { train: { optimizer: { kind: 'adam', epsilon: -1 } } } },
    ],
    panels: [],
  });
  assert.match(
    refusal(() => prepareExperiment(config)),
    /^groups\[1\]\.overrides\.train\.optimizer\.epsilon: must be positive/,
  );
  const unknown = {
    ...config,
    groups: [{ name: 'a', overrides: { train: { optimizer: { kind: 'adamw' } } } }],
  };
  assert.match(
    refusal(() => prepareExperiment(unknown)),
    /train\.optimizer\.kind: unknown kind "adamw"/,
  );
});

const V = [
  [1, 0.5],
  [-0.3, 2],
];

test("the fused path refuses Adam saying why; 'auto' trains it on the general path", async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'deep-linear', inputDim: 2, hidden: [2, 2], outputDim: 2 });
  const data = new LinearTeacher(engine, {
    V,
    sigmaEps: [
      [0.1, 0],
      [0, 0.1],
    ],
  });
  const params = [
    engine.tensor([1, 0, 0, 1], [2, 2]),
    engine.tensor([1, 0, 0, 1], [2, 2]),
    engine.tensor([1, 0, 0, 1], [2, 2]),
  ];
  const options = {
    model,
    params,
    data,
    loss: 'mse',
    learningRate: 0.01,
    optimizer: parseOptimizer({ kind: 'adam' }),
    batchSize: 4,
    steps: 3,
    seed: 1,
  } as const;
  try {
    await train(engine, { ...options, path: 'fused' });
    assert.unreachable('fused Adam was accepted');
  } catch (error) {
    assert.instance(error, InputError);
    assert.match((error as Error).message, /train\.path: 'fused' refuses: the fused kernels run plain SGD/);
  }
  const shaders = await shadersLaunched(engine, () => train(engine, options));
  assert.ok(
    shaders.has('optimizer.wgsl') && ![...shaders].some((s) => s.startsWith('fused')),
    [...shaders].join(),
  );
  for (const p of params) p.dispose();
  data.dispose();
});

/**
 * End to end through the trainer: full-batch GD with Nesterov momentum (L2 decay) and Adam
 * (decoupled decay, cosine schedule with warm-up) on W₂W₁ over a fixed dataset, against the float64
 * trajectory with the closed-form gradient of L = ½ mean‖W₂W₁x − y‖²: with E = W₂W₁Σ̂xx − Σ̂yx,
 * ∇W₂ = E W₁ᵀ and ∇W₁ = W₂ᵀ E.
 */
for (const [optimizerInput, scheduleInput] of [
  [
    { kind: 'momentum', nesterov: true, momentum: 0.7, weightDecay: 0.05 },
    { kind: 'step', every: 3, factor: 0.5 },
  ],
  [
    { kind: 'adam', epsilon: 1e-3, weightDecay: 0.1, decoupledWeightDecay: true },
    { kind: 'cosine', warmupSteps: 2 },
  ],
] as [OptimizerInput, ScheduleInput][]) {
  test(`trainer with ${optimizerInput.kind}: full-batch trajectory of a 2-layer linear net equals float64`, async () => {
    const engine = await testEngine();
    const n = 32;
    const [d, h, m] = [3, 2, 2];
    const random = seededRandom(7);
    const xs = randomArray(random, n * d);
    const ys = randomArray(random, n * m);
    const data = new FixedDataset(
      engine,
      engine.tensor(Float32Array.from(xs), [n, d]),
      engine.tensor(Float32Array.from(ys), [n, m]),
    );
    const w1 = randomArray(random, h * d);
    const w2 = randomArray(random, m * h);
    const params = [
      engine.tensor(Float32Array.from(w1), [h, d]),
      engine.tensor(Float32Array.from(w2), [m, h]),
    ];
    const optimizer = parseOptimizer(optimizerInput);
    const schedule = parseSchedule(scheduleInput);
    const steps = 8;
    const learningRate = optimizer.kind === 'adam' ? 0.05 : 0.1;
    await train(engine, {
      model: buildModel({ kind: 'deep-linear', inputDim: d, hidden: [h], outputDim: m }),
      params,
      data,
      loss: 'mse',
      learningRate,
      optimizer,
      schedule,
      batchSize: n,
      steps,
      seed: 0,
      switchToGdAt: 0,
    });
    // Float64 reference.
    const W1 = Float64Array.from(w1);
    const W2 = Float64Array.from(w2);
    const ref1 = new ReferenceOptimizer(optimizer, W1);
    const ref2 = new ReferenceOptimizer(optimizer, W2);
    for (let s = 0; s < steps; s++) {
      // E = (1/n) Σ (W₂W₁x − y) xᵀ  [m × d]
      const E = new Float64Array(m * d);
      for (let r = 0; r < n; r++) {
        const hidden = Array.from({ length: h }, (_, i) => {
          let sum = 0;
          for (let k = 0; k < d; k++) sum += W1[i * d + k] * xs[r * d + k];
          return sum;
        });
        for (let o = 0; o < m; o++) {
          let out = -ys[r * m + o];
          for (let i = 0; i < h; i++) out += W2[o * h + i] * hidden[i];
          for (let k = 0; k < d; k++) E[o * d + k] += (out * xs[r * d + k]) / n;
        }
      }
      const g2 = new Float64Array(m * h);
      const g1 = new Float64Array(h * d);
      for (let o = 0; o < m; o++)
        for (let i = 0; i < h; i++) for (let k = 0; k < d; k++) g2[o * h + i] += E[o * d + k] * W1[i * d + k];
      for (let i = 0; i < h; i++)
        for (let k = 0; k < d; k++) for (let o = 0; o < m; o++) g1[i * d + k] += W2[o * h + i] * E[o * d + k];
      const rate = learningRateAt(learningRate, schedule, s, steps);
      ref1.step(g1, rate, s + 1);
      ref2.step(g2, rate, s + 1);
    }
    for (const [i, reference] of [ref1, ref2].entries()) {
      const got = await params[i].read();
      got.forEach((v, k) => {
        // Gradients are f32 sums of n = 32 products (relative error ~ n·u ≈ 2e-6) fed through 8 steps.
        assert.ok(
          Math.abs(v - reference.theta[k]) <= 2e-5 * (1 + Math.abs(reference.theta[k])),
          `W${i + 1}[${k}]: ${v} vs ${reference.theta[k]}`,
        );
      });
    }
    for (const p of params) p.dispose();
    data.dispose();
  });
}

test('a run with Adam resumed from a checkpoint gives exactly the rows of an uninterrupted run', async () => {
  const engine = await testEngine();
  const base = deepLinearConfig({
    name: 'adam-resume',
    description: '',
    steps: 60,
    measure: { every: 20, evaluationSamples: 50, metrics: ['loss', 'sharpness'] },
    seeds: 2,
    seed: 3,
    groups: [{ name: 'adam' }],
    panels: [],
  });
  const config = prepareExperiment({
    ...base,
    train: {
      ...base.train,
      learningRate: 0.01,
      optimizer: { kind: 'adam' },
      schedule: { kind: 'cosine', warmupSteps: 5 },
    },
  });
  const checkpoints: Checkpoint[] = [];
  const full = await runExperiment(engine, config, {
    checkpoint: (c) => void checkpoints.push(structuredClone(c)),
  });
  const middle = checkpoints.find((c) => c.step === 40);
  assert.ok(middle?.optimizerState?.length === 4, 'the checkpoint holds m and v of both layers');
  const resumed = await runExperiment(engine, config, { resume: middle });
  const key = (r: ResultRow) => `${r.group}|${r.seed}|${r.step}|${r.metric}`;
  const expected = new Map(full.rows.map((r) => [key(r), r.value]));
  assert.is(resumed.rows.length, full.rows.length);
  for (const row of resumed.rows) assert.is(row.value, expected.get(key(row)), key(row));
  assert.equal(resumed.weights, full.weights, 'the same final weights');
  // Without its optimizer state the checkpoint cannot continue Adam exactly: refused.
  const { optimizerState: _, ...stateless } = middle as Checkpoint;
  try {
    await runExperiment(engine, config, { resume: stateless });
    assert.unreachable('a checkpoint without Adam state was accepted');
  } catch (error) {
    assert.match((error as Error).message, /^--resume: the saved adam state does not match/);
  }
});

test.run();
