import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FixedDataset } from '../src/data/fixed.ts';
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { SoftmaxTargets } from '../src/data/soft-targets.ts';
import { TeacherStudent } from '../src/data/teacher-student.ts';
import { InputError } from '../src/errors.ts';
import { prepareExperiment, validateExperiment } from '../src/experiments/config.ts';
import { planBatches } from '../src/experiments/executor.ts';
import { presetConfig } from '../src/experiments/presets/index.ts';
import { prepareBatch } from '../src/experiments/run/batch.ts';
import { planRun } from '../src/experiments/run/plan.ts';
import { batchTrainOptions } from '../src/experiments/run/train-segment.ts';
import {
  RNN_AUTO_MAX_WORK,
  RNN_MAX,
  TEACHER_WORKGROUP_BYTES,
  TRANSFORMER_AUTO_MAX_WORK,
  TRANSFORMER_AUTO_MIN_REPLICAS,
  TRANSFORMER_MAX,
  teacherCapacity,
  transformerStepWork,
} from '../src/kernels/fused.ts';
import { initParameters } from '../src/models/init.ts';
import type { LossKind } from '../src/models/losses.ts';
import { buildModel, type ModelSpec } from '../src/models/model.ts';
import type { Engine, Tensor } from '../src/tensor/engine.ts';
import { prefersFused } from '../src/train/fused.ts';
import { type TrainOptions, train } from '../src/train/trainer.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { shadersLaunched } from './helpers/launches.ts';

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

const MODEL = buildModel({ kind: 'deep-linear', inputDim: 2, hidden: [3, 3], outputDim: 2 });

/** Replica r's initial weights depend only on (seed, r), so a replica alone starts where it starts in a batch. */
function initialWeights(engine: Engine, replicas: number, offset: number): Tensor[] {
  return initParameters(
    engine,
    MODEL,
    { kind: 'normal', scale: 0.5 },
    { replicas, seed: 17, replicaOffset: offset },
  );
}

function trainLinear(
  engine: Engine,
  params: Tensor[],
  data: TrainOptions['data'],
  options: Partial<TrainOptions>,
) {
  return train(engine, {
    model: MODEL,
    params,
    data,
    loss: 'mse',
    learningRate: 0.02,
    batchSize: 10,
    steps: 40,
    seed: 9,
    ...options,
  });
}

for (const path of ['general', 'fused'] as const) {
  test(`${path} path: 8 replicas trained together equal each replica trained alone with the same seed`, async () => {
    const engine = await testEngine();
    const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
    const together = initialWeights(engine, 8, 0);
    await trainLinear(engine, together, data, { path });
    const all = await Promise.all(together.map((w) => w.read()));
    for (const replica of [0, 3, 7]) {
      const alone = initialWeights(engine, 1, replica);
      await trainLinear(engine, alone, data, { replicaOffset: replica, path });
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
}

const diagonal = (n: number, f: (i: number) => number) =>
  Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? f(i) : 0)));

/** Per-replica label noise: groups with different Σ_ε batched together (one root per replica). */
const NOISE_PER_REPLICA = [0.5, 2, 0.1, 1].map((a) => [
  [a, 0.1 * a],
  [0.1 * a, 0.3],
]);

/**
 * Trains the same initial weights on the general and the fused path (300 steps: across a dispatch
 * boundary of the fused kernel and two log points) and checks they agree. Only the float summation
 * order differs, so over 300 contracting SGD steps the drift stays ~1e-5.
 */
async function assertFusedEqualsGeneral(
  engine: Engine,
  options: Pick<TrainOptions, 'model' | 'data' | 'learningRate' | 'batchSize' | 'seed'> & {
    loss?: LossKind;
  },
  initial: () => Tensor[],
  fusedKernel: string,
  steps = 300,
) {
  const finals: Float32Array[][] = [];
  const losses: Float32Array[][] = [];
  for (const path of ['general', 'fused'] as const) {
    const weights = initial();
    const logged: Float32Array[] = [];
    // The case must exercise the kernel it is named for.
    const shaders = await shadersLaunched(engine, () =>
      train(engine, {
        loss: 'mse',
        ...options,
        params: weights,
        path,
        steps,
        logEvery: steps / 2,
        onLog: (_s, l) => void logged.push(l),
      }),
    );
    if (path === 'fused') assert.ok(shaders.has(`${fusedKernel}.wgsl`), `ran ${[...shaders].join(', ')}`);
    finals.push((await Promise.all(weights.map((w) => w.read()))) as Float32Array[]);
    losses.push(logged);
    for (const w of weights) w.dispose();
  }
  finals[0].forEach((w, tensor) => {
    w.forEach((value, i) => {
      const other = finals[1][tensor][i];
      assert.ok(
        Math.abs(value - other) <= 1e-4 * (1 + Math.abs(value)),
        `${options.model.parameters[tensor].name}[${i}]: general ${value}, fused ${other}`,
      );
    });
  });
  losses[0].forEach((l, k) => {
    l.forEach((value, r) => {
      assert.ok(
        Math.abs(value - losses[1][k][r]) <= 1e-4 * (1 + value),
        `log ${k} replica ${r}: ${value} vs ${losses[1][k][r]}`,
      );
    });
  });
}

for (const { what, spec, sigmaEps, batchSize = 10, kernel } of [
  {
    what: 'narrow mat4 kernel (widths ≤ 4)',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [3, 3], outputDim: 2 } as ModelSpec,
    sigmaEps: SIGMA_EPS,
    kernel: 'fused_deep_linear_narrow',
  },
  {
    what: 'narrow kernel, depth 8 with per-replica noise',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [4, 2, 3, 2, 4, 2, 3], outputDim: 2 } as ModelSpec,
    sigmaEps: NOISE_PER_REPLICA,
    kernel: 'fused_deep_linear_narrow',
  },
  {
    what: 'generic kernel (widths up to 8) with per-replica noise',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [6, 5], outputDim: 2 } as ModelSpec,
    sigmaEps: NOISE_PER_REPLICA,
    kernel: 'fused_deep_linear',
  },
  // The 2×2 kernel sums the batch as moments and reads two samples per Philox block.
  {
    what: '2×2 kernel (the presets’ D = 3, d = 2)',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [2, 2], outputDim: 2 } as ModelSpec,
    sigmaEps: SIGMA_EPS,
    kernel: 'fused_deep_linear_2x2',
  },
  {
    what: '2×2 kernel, hidden width 1, odd batch, per-replica noise',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [1], outputDim: 2 } as ModelSpec,
    sigmaEps: NOISE_PER_REPLICA,
    batchSize: 7,
    kernel: 'fused_deep_linear_2x2',
  },
  {
    what: '2×2 kernel, depth 10, batch 1, per-replica noise',
    spec: {
      kind: 'deep-linear',
      inputDim: 2,
      hidden: [2, 1, 2, 2, 2, 2, 2, 2, 2],
      outputDim: 2,
    } as ModelSpec,
    sigmaEps: NOISE_PER_REPLICA,
    batchSize: 1,
    kernel: 'fused_deep_linear_2x2',
  },
]) {
  test(`the fused path equals the general path step for step: ${what}`, async () => {
    const engine = await testEngine();
    const model = buildModel(spec);
    const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps });
    await assertFusedEqualsGeneral(
      engine,
      { model, data, learningRate: 0.02, batchSize, seed: 9 },
      () => initParameters(engine, model, { kind: 'normal', scale: 0.6 }, { replicas: 4, seed: 17 }),
      kernel,
    );
    data.dispose();
  });
}

// Input and output widths 1, 3 and 4: the normal cursor (widths dividing 4, a sample never straddles a
// Philox block) and the element-by-element fallback (width 3) must read the general path's streams.
for (const [d, m] of [
  [1, 4],
  [4, 1],
  [3, 3],
]) {
  test(`the fused path equals the general path step for step: narrow kernel, input ${d}, output ${m}`, async () => {
    const engine = await testEngine();
    const model = buildModel({ kind: 'deep-linear', inputDim: d, hidden: [3, 2], outputDim: m });
    const teacher = Array.from({ length: m }, (_, i) =>
      Array.from({ length: d }, (_, j) => ((i + 2 * j) % 3) - 1),
    );
    const data = new LinearTeacher(engine, {
      V: teacher,
      sigmaX: diagonal(d, (i) => 1 + 0.5 * i),
      sigmaEps: diagonal(m, (i) => 0.2 + i),
    });
    await assertFusedEqualsGeneral(
      engine,
      { model, data, learningRate: 0.02, batchSize: 10, seed: 3 },
      () => initParameters(engine, model, { kind: 'normal', scale: 0.6 }, { replicas: 3, seed: 21 }),
      'fused_deep_linear_narrow',
    );
    data.dispose();
  });
}

/**
 * Cross-entropy against softmax(V x + ε), as the anisotropy sweep builds it (SoftmaxTargets around a
 * LinearTeacher): the narrow and generic deep linear kernels take it per sample (the 2×2 kernel's
 * moments hold only for MSE, so a 2-2-2 network goes to the narrow kernel).
 */
for (const { what, spec, sigmaX, V: teacher, noiseStd, kernel, steps } of [
  {
    what: "the anisotropy sweep's 3-3-3-3, V = I₃, √Σ_ε = diag(3, 3/√κ, 3/√κ) per replica",
    spec: { kind: 'deep-linear', inputDim: 3, hidden: [3, 3], outputDim: 3 } as ModelSpec,
    V: diagonal(3, () => 1),
    noiseStd: [1, 10, 100].map((kappa) => [3, 3 / Math.sqrt(kappa), 3 / Math.sqrt(kappa)]),
    kernel: 'fused_deep_linear_narrow',
  },
  {
    what: '2-3-4, Σ_x ≠ I (4 of 4 lanes in the softmax)',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [3], outputDim: 4 } as ModelSpec,
    sigmaX: SIGMA_X,
    V: [
      [1, 0.5],
      [-0.3, 2],
      [0.7, -1],
      [0, 0.4],
    ],
    noiseStd: [[2, 0.5, 1, 0.3]],
    kernel: 'fused_deep_linear_narrow',
  },
  {
    what: '2-2-2 (the 2×2 kernel’s shape), Σ_x ≠ I',
    spec: { kind: 'deep-linear', inputDim: 2, hidden: [2], outputDim: 2 } as ModelSpec,
    sigmaX: SIGMA_X,
    V,
    noiseStd: [[2, 0.5]],
    kernel: 'fused_deep_linear_narrow',
    // Here to check the kernel chosen: one dispatch's worth of steps suffices.
    steps: 40,
  },
  {
    what: 'generic kernel, 3-6-5, Σ_x ≠ I',
    spec: { kind: 'deep-linear', inputDim: 3, hidden: [6], outputDim: 5 } as ModelSpec,
    // Tridiagonal with off-diagonal 0.3: positive definite.
    sigmaX: [
      [1, 0.3, 0],
      [0.3, 1, 0.3],
      [0, 0.3, 1],
    ],
    V: Array.from({ length: 5 }, (_, i) => Array.from({ length: 3 }, (_, j) => ((i + 2 * j) % 3) - 1)),
    noiseStd: [[2, 1, 0.5, 1.5, 0.2]],
    kernel: 'fused_deep_linear',
  },
]) {
  test(`the fused path equals the general path step for step under cross-entropy: ${what}`, async () => {
    const engine = await testEngine();
    const model = buildModel(spec);
    const sigmaEps = noiseStd.map((std) => diagonal(std.length, (i) => std[i] ** 2));
    const data = new SoftmaxTargets(engine, new LinearTeacher(engine, { V: teacher, sigmaX, sigmaEps }));
    await assertFusedEqualsGeneral(
      engine,
      { model, data, loss: 'cross-entropy', learningRate: 0.5, batchSize: 10, seed: 7 },
      () => initParameters(engine, model, { kind: 'xavier' }, { replicas: 3, seed: 19 }),
      kernel,
      steps,
    );
    data.dispose();
  });
}

test("the quick anisotropy sweep's deep linear cross-entropy batch takes the fused path under 'auto'", async () => {
  const engine = await testEngine();
  const config = prepareExperiment(presetConfig('anisotropy-sweep'), { quick: true });
  const batches = planRun(config).filter((b) =>
    b.members.every((m) => m.group.resolved.group.startsWith('linear-cross-entropy-')),
  );
  assert.is(batches.length, 1, 'one batch of the linear cross-entropy groups');
  const prepared = prepareBatch(engine, batches[0], {});
  assert.is(prepared.resolved.loss, 'cross-entropy');
  const shaders = await shadersLaunched(engine, () => train(engine, batchTrainOptions(prepared, 0, 1)));
  assert.ok(shaders.has('fused_deep_linear_narrow.wgsl'), `ran ${[...shaders].join(', ')}`);
  prepared.dispose();
});

for (const [activation, loss] of [
  ['relu', 'mse'],
  ['tanh', 'mse'],
  ['relu', 'cross-entropy'],
] as const) {
  test(`the fused MLP kernel equals the general path on teacher–student data (${activation}, ${loss}, per-replica noise)`, async () => {
    const engine = await testEngine();
    const model = buildModel({ kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 3, activation });
    const inner = new TeacherStudent(engine, {
      // 23 units: the kernel's last group of four teacher units is padded.
      teacher: { kind: 'mlp', inputDim: 2, hidden: [23], outputDim: 3, activation },
      teacherSeed: 4,
      sigmaX: SIGMA_X,
      sigmaEps: [0.5, 2, 0.1].map((a) => [
        [a, 0, 0],
        [0, 0.3, 0.05],
        [0, 0.05, 0.2],
      ]),
    });
    // Cross-entropy as the experiments build it: targets softmax(teacher + noise), 3 of 4 lanes.
    const data = loss === 'mse' ? inner : new SoftmaxTargets(engine, inner);
    await assertFusedEqualsGeneral(
      engine,
      { model, data, loss, learningRate: loss === 'mse' ? 0.05 : 0.5, batchSize: 12, seed: 5 },
      () => initParameters(engine, model, { kind: 'kaiming' }, { replicas: 3, seed: 23 }),
      'fused_mlp_narrow',
    );
    data.dispose();
  });
}

test('the fused MLP kernel holds the widest teacher that fits its workgroup memory; a wider one trains on the general path', async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 2, activation: 'relu' });
  const widest = teacherCapacity(2, 2);
  assert.ok((1 + 2 + 2) * Math.ceil(widest / 4) * 16 <= TEACHER_WORKGROUP_BYTES);
  const teacherOf = (hidden: number) =>
    new TeacherStudent(engine, {
      teacher: { kind: 'mlp', inputDim: 2, hidden: [hidden], outputDim: 2, activation: 'relu' },
      teacherSeed: 6,
      sigmaEps: SIGMA_EPS,
    });
  const fits = teacherOf(widest);
  await assertFusedEqualsGeneral(
    engine,
    { model, data: fits, learningRate: 0.05, batchSize: 4, seed: 5 },
    () => initParameters(engine, model, { kind: 'kaiming' }, { replicas: 2, seed: 23 }),
    'fused_mlp_narrow',
    20,
  );
  fits.dispose();

  const wider = teacherOf(widest + 4);
  const params = initParameters(engine, model, { kind: 'kaiming' }, { replicas: 1, seed: 23 });
  const options = {
    model,
    params,
    data: wider,
    loss: 'mse',
    learningRate: 0.05,
    batchSize: 4,
    steps: 2,
    seed: 5,
  } as const;
  let refusal: unknown;
  try {
    await train(engine, { ...options, path: 'fused' });
  } catch (error) {
    refusal = error;
  }
  assert.ok(refusal instanceof InputError && /workgroup memory/.test(refusal.message), String(refusal));
  const shaders = await shadersLaunched(engine, () => train(engine, options));
  assert.not.ok(shaders.has('fused_mlp_narrow.wgsl'), 'auto must not pick the fused kernel');
  for (const p of params) p.dispose();
  wider.dispose();
});

/**
 * RNN teacher–student data under MSE or cross-entropy against softmax targets (as the experiments
 * build it: SoftmaxTargets around the teacher–student data).
 */
function rnnData(
  engine: Engine,
  loss: LossKind,
  spec: { inputDim: number; outputDim: number; sequenceLength: number; teacherHidden: number },
  noise: { sigmaX?: number[][]; sigmaEps: number[][][] },
) {
  const { teacherHidden, ...shape } = spec;
  const inner = new TeacherStudent(engine, {
    teacher: { kind: 'rnn', hidden: teacherHidden, ...shape },
    teacherSeed: 2,
    ...noise,
  });
  return loss === 'mse' ? inner : new SoftmaxTargets(engine, inner);
}

// The anisotropy sweep's RNN: d = m = 8, h = 4, T = 4, a teacher of the student's size (held in
// registers), white inputs (drawn per time step), one Σ_ε per replica; 200 steps in two segments.
for (const [loss, learningRate] of [
  ['mse', 0.05],
  ['cross-entropy', 0.5],
] as const) {
  test(`the fused RNN kernel equals the general path (${loss}, the anisotropy sweep's 8-4-8, T = 4)`, async () => {
    const engine = await testEngine();
    const spec = { inputDim: 8, outputDim: 8, sequenceLength: 4 };
    const model = buildModel({ kind: 'rnn', hidden: 4, ...spec });
    const data = rnnData(
      engine,
      loss,
      { ...spec, teacherHidden: 4 },
      { sigmaEps: [4, 1, 0.25].map((a) => diagonal(8, (i) => (i % 2 ? a : 1))) },
    );
    await assertFusedEqualsGeneral(
      engine,
      { model, data, loss, learningRate, batchSize: 6, seed: 11 },
      () => initParameters(engine, model, { kind: 'xavier' }, { replicas: 3, seed: 29 }),
      'fused_rnn',
      200,
    );
    data.dispose();
  });
}

/** Σ_x for coloured inputs: tridiagonal with off-diagonal 0.3, eigenvalues in 1 ± 0.6 (positive definite). */
function tridiagonalCovariance(n: number): number[][] {
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => (i === j ? 1 : Math.abs(i - j) === 1 ? 0.3 : 0)),
  );
}

// Everything else the kernel handles: a teacher of 23 units (storage memory, its last group of four
// padded), widths that are not multiples of 4 (T·d = 15 inputs and m = 5 noise normals straddle
// Philox blocks; 5 outputs masked in the softmax), h = 3 and coloured inputs (Σ_x ≠ I).
test('the fused RNN kernel equals the general path (cross-entropy, teacher 23, d = 3, m = 5, T = 5, Σ_x ≠ I)', async () => {
  const engine = await testEngine();
  const spec = { inputDim: 3, outputDim: 5, sequenceLength: 5 };
  const model = buildModel({ kind: 'rnn', hidden: 3, ...spec });
  const features = spec.inputDim * spec.sequenceLength;
  const sigmaX = tridiagonalCovariance(features);
  const data = rnnData(
    engine,
    'cross-entropy',
    { ...spec, teacherHidden: 23 },
    { sigmaX, sigmaEps: [1, 0.1].map((a) => diagonal(5, (i) => a + 0.2 * i)) },
  );
  await assertFusedEqualsGeneral(
    engine,
    { model, data, loss: 'cross-entropy', learningRate: 0.3, batchSize: 5, seed: 13 },
    () => initParameters(engine, model, { kind: 'xavier' }, { replicas: 2, seed: 31 }),
    'fused_rnn',
    200,
  );
  data.dispose();
});

test('an RNN beyond the fused kernel is refused by path fused, naming the limits, and trains on the general path', async () => {
  const engine = await testEngine();
  const spec = { inputDim: 2, outputDim: 2, sequenceLength: 3 };
  const model = buildModel({ kind: 'rnn', hidden: RNN_MAX.hidden + 1, ...spec });
  const data = rnnData(engine, 'mse', { ...spec, teacherHidden: 4 }, { sigmaEps: [diagonal(2, () => 0.5)] });
  const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 3 });
  const options = {
    model,
    params,
    data,
    loss: 'mse',
    learningRate: 0.05,
    batchSize: 4,
    steps: 2,
    seed: 5,
  } as const;
  let refusal: unknown;
  try {
    await train(engine, { ...options, path: 'fused' });
  } catch (error) {
    refusal = error;
  }
  assert.ok(
    refusal instanceof InputError && refusal.message.includes(`RNN (hidden ≤ ${RNN_MAX.hidden}`),
    String(refusal),
  );
  const shaders = await shadersLaunched(engine, () => train(engine, options));
  assert.not.ok(shaders.has('fused_rnn.wgsl'), 'auto must not pick the fused kernel');
  for (const p of params) p.dispose();
  data.dispose();
});

test("'auto' leaves an RNN whose step is long (the widest teacher, a large batch) to the general path; 'fused' still runs it", async () => {
  const engine = await testEngine();
  const spec = { inputDim: 2, outputDim: 2, sequenceLength: 3 };
  const model = buildModel({ kind: 'rnn', hidden: 2, ...spec });
  const data = rnnData(
    engine,
    'mse',
    { ...spec, teacherHidden: RNN_MAX.teacherHidden },
    { sigmaEps: [diagonal(2, () => 0.5)] },
  );
  // T·H·(d + H) multiply–adds per sample for the teacher alone: the batch puts a step past the bound.
  const perSample = spec.sequenceLength * RNN_MAX.teacherHidden * (spec.inputDim + RNN_MAX.teacherHidden);
  const batchSize = Math.ceil(RNN_AUTO_MAX_WORK / perSample) + 1;
  const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 3 });
  const options = {
    model,
    params,
    data,
    loss: 'mse',
    learningRate: 0.01,
    batchSize,
    steps: 1,
    seed: 5,
  } as const;
  const auto = await shadersLaunched(engine, () => train(engine, options));
  assert.not.ok(auto.has('fused_rnn.wgsl'), `auto ran ${[...auto].join(', ')}`);
  const fused = await shadersLaunched(engine, () => train(engine, { ...options, path: 'fused' }));
  assert.ok(fused.has('fused_rnn.wgsl'), `path fused ran ${[...fused].join(', ')}`);
  for (const p of params) p.dispose();
  data.dispose();
});

/** Transformer teacher–student data (the teacher differs from the student only in its MLP width). */
function transformerData(
  engine: Engine,
  loss: LossKind,
  spec: Omit<Extract<ModelSpec, { kind: 'transformer' }>, 'kind' | 'mlpHidden'> & {
    teacherMlpHidden: number;
  },
  noise: { sigmaX?: number[][]; sigmaEps: number[][][] },
) {
  const { teacherMlpHidden, ...shape } = spec;
  const inner = new TeacherStudent(engine, {
    teacher: { kind: 'transformer', mlpHidden: teacherMlpHidden, ...shape },
    teacherSeed: 2,
    ...noise,
  });
  return loss === 'mse' ? inner : new SoftmaxTargets(engine, inner);
}

// The anisotropy sweep's Transformer: d = m = 8, T = 4, model width 8 in 2 heads, student MLP 4, the
// quick form's teacher MLP of 16, white inputs (drawn per token), one Σ_ε per replica.
for (const [loss, learningRate] of [
  ['mse', 0.04],
  ['cross-entropy', 0.3],
] as const) {
  test(`the fused Transformer kernel equals the general path (${loss}, the anisotropy sweep's shapes)`, async () => {
    const engine = await testEngine();
    const shape = { inputDim: 8, outputDim: 8, sequenceLength: 4, modelDim: 8, heads: 2 };
    const model = buildModel({ kind: 'transformer', mlpHidden: 4, ...shape });
    const data = transformerData(
      engine,
      loss,
      { ...shape, teacherMlpHidden: 16 },
      { sigmaEps: [4, 1, 0.25].map((a) => diagonal(8, (i) => (i % 2 ? a : 1))) },
    );
    await assertFusedEqualsGeneral(
      engine,
      { model, data, loss, learningRate, batchSize: 6, seed: 11 },
      () => initParameters(engine, model, { kind: 'xavier' }, { replicas: 3, seed: 29 }),
      'fused_transformer',
      200,
    );
    data.dispose();
  });
}

// Everything else the kernel handles: heads of 2 lanes (summed under masks), a teacher MLP of 23 (its
// last group of four padded), widths that are not multiples of 4 (T·d = 9 inputs and m = 5 noise
// normals straddle Philox blocks; 5 outputs masked in the softmax) and coloured inputs (Σ_x ≠ I).
test('the fused Transformer kernel equals the general path (cross-entropy, d = 3, m = 5, T = 3, D = 6 in 3 heads, MLP 5, teacher MLP 23, Σ_x ≠ I)', async () => {
  const engine = await testEngine();
  const shape = { inputDim: 3, outputDim: 5, sequenceLength: 3, modelDim: 6, heads: 3 };
  const model = buildModel({ kind: 'transformer', mlpHidden: 5, ...shape });
  const features = shape.inputDim * shape.sequenceLength;
  const sigmaX = tridiagonalCovariance(features);
  const data = transformerData(
    engine,
    'cross-entropy',
    { ...shape, teacherMlpHidden: 23 },
    { sigmaX, sigmaEps: [1, 0.1].map((a) => diagonal(5, (i) => a + 0.2 * i)) },
  );
  await assertFusedEqualsGeneral(
    engine,
    { model, data, loss: 'cross-entropy', learningRate: 0.3, batchSize: 5, seed: 13 },
    () => initParameters(engine, model, { kind: 'xavier' }, { replicas: 2, seed: 31 }),
    'fused_transformer',
    200,
  );
  data.dispose();
});

test('a Transformer beyond the fused kernel is refused by path fused, naming the limits, and trains on the general path', async () => {
  const engine = await testEngine();
  const shape = {
    inputDim: 2,
    outputDim: 2,
    sequenceLength: 2,
    modelDim: TRANSFORMER_MAX.width + 2,
    heads: 2,
  };
  const model = buildModel({ kind: 'transformer', mlpHidden: 2, ...shape });
  const data = transformerData(
    engine,
    'mse',
    { ...shape, teacherMlpHidden: 4 },
    { sigmaEps: [diagonal(2, () => 0.5)] },
  );
  const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 3 });
  const options = {
    model,
    params,
    data,
    loss: 'mse',
    learningRate: 0.05,
    batchSize: 4,
    steps: 2,
    seed: 5,
  } as const;
  let refusal: unknown;
  try {
    await train(engine, { ...options, path: 'fused' });
  } catch (error) {
    refusal = error;
  }
  assert.ok(
    refusal instanceof InputError &&
      refusal.message.includes(
        `Transformer (inputs, outputs, model width and MLP ≤ ${TRANSFORMER_MAX.width}`,
      ),
    String(refusal),
  );
  const shaders = await shadersLaunched(engine, () => train(engine, options));
  assert.not.ok(shaders.has('fused_transformer.wgsl'), 'auto must not pick the fused kernel');
  for (const p of params) p.dispose();
  data.dispose();
});

test("'auto' leaves a Transformer whose step is long to the general path unless its replicas are many", async () => {
  const engine = await testEngine();
  const shape = { inputDim: 2, outputDim: 2, sequenceLength: 2, modelDim: 4, heads: 2 };
  const model = buildModel({ kind: 'transformer', mlpHidden: 2, ...shape });
  const data = transformerData(
    engine,
    'mse',
    { ...shape, teacherMlpHidden: TRANSFORMER_MAX.teacherHidden },
    { sigmaEps: [diagonal(2, () => 0.5)] },
  );
  const network = { kind: 'transformer', shape: { ...shape, mlpHidden: 2 }, sequenceLength: 2 } as const;
  const perSample = transformerStepWork(
    { ...network, teacherMlpHidden: TRANSFORMER_MAX.teacherHidden, crossEntropy: false, teacherParams: [] },
    1,
  );
  const batchSize = Math.ceil(TRANSFORMER_AUTO_MAX_WORK / perSample) + 1;
  assert.not.ok(prefersFused(model, data, 'mse', batchSize, 1));
  assert.ok(prefersFused(model, data, 'mse', batchSize, TRANSFORMER_AUTO_MIN_REPLICAS));
  assert.ok(prefersFused(model, data, 'mse', Math.floor(TRANSFORMER_AUTO_MAX_WORK / perSample), 1));
  const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 3 });
  const options = {
    model,
    params,
    data,
    loss: 'mse',
    learningRate: 0.01,
    batchSize,
    steps: 1,
    seed: 5,
  } as const;
  const auto = await shadersLaunched(engine, () => train(engine, options));
  assert.not.ok(auto.has('fused_transformer.wgsl'), `auto ran ${[...auto].join(', ')}`);
  for (const p of params) p.dispose();
  data.dispose();
});

test("the quick anisotropy sweep's Transformer batches train on the fused kernel under 'auto'", async () => {
  const engine = await testEngine();
  const config = prepareExperiment(presetConfig('anisotropy-sweep'), { quick: true });
  const batches = planBatches(validateExperiment(config)).filter(
    (batch) => batch.members[0].group.model.spec.kind === 'transformer',
  );
  assert.is(batches.length, 2, 'one batch per loss');
  for (const batch of batches) {
    const prepared = prepareBatch(engine, batch, {});
    const shaders = await shadersLaunched(engine, () => train(engine, batchTrainOptions(prepared, 0, 1)));
    assert.ok(
      shaders.has('fused_transformer.wgsl'),
      `${prepared.resolved.loss}: ran ${[...shaders].join(', ')}`,
    );
    prepared.dispose();
  }
});

test('SGD drives the loss down to the label-noise floor ½·Tr Σ_ε', async () => {
  const engine = await testEngine();
  const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
  const weights = initialWeights(engine, 4, 0);
  const losses: number[] = [];
  const record = (_step: number, loss: Float32Array) => {
    losses.push(loss.reduce((a, b) => a + b, 0) / loss.length);
  };
  const options = { learningRate: 0.05, batchSize: 50, seed: 4, onLog: record };
  await trainLinear(engine, weights, data, { ...options, steps: 1, logEvery: 1 });
  await trainLinear(engine, weights, data, { ...options, startStep: 1, steps: 600, logEvery: 50 });
  const floor = 0.5 * (SIGMA_EPS[0][0] + SIGMA_EPS[1][1]);
  const late = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  // At a global minimum the minibatch loss is ½‖ε‖² averaged over 50 rows × 4 replicas: mean = floor,
  // standard error ≈ floor·√(2/200)/√5 over five log points; allow the residual fit error on top.
  assert.ok(losses[0] > 2 * floor, `initial loss ${losses[0]} should be well above the floor ${floor}`);
  assert.ok(Math.abs(late - floor) < 0.25 * floor, `late loss ${late} vs floor ${floor}`);
  for (const w of weights) w.dispose();
  data.dispose();
});

test('after the switch to GD on a fixed training set, the updates no longer depend on the seed', async () => {
  const engine = await testEngine();
  const source = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
  const data = FixedDataset.fromSource(engine, source, 64, 5);
  const finals: Float32Array[][] = [];
  for (const seed of [1, 2]) {
    const weights = initialWeights(engine, 2, 0);
    // SGD for 0 steps, then 20 GD steps: the full batch is the same for any seed.
    await trainLinear(engine, weights, data, { seed, steps: 20, switchToGdAt: 0 });
    finals.push((await Promise.all(weights.map((w) => w.read()))) as Float32Array[]);
    for (const w of weights) w.dispose();
  }
  finals[0].forEach((w, i) => {
    assert.equal(Array.from(w), Array.from(finals[1][i]), `W${i + 1}`);
  });
  const sgd: Float32Array[][] = [];
  for (const seed of [1, 2]) {
    const weights = initialWeights(engine, 2, 0);
    await trainLinear(engine, weights, data, { seed, steps: 20 });
    sgd.push((await Promise.all(weights.map((w) => w.read()))) as Float32Array[]);
    for (const w of weights) w.dispose();
  }
  assert.not.equal(Array.from(sgd[0][0]), Array.from(sgd[1][0]), 'SGD minibatches depend on the seed');
  data.dispose();
  source.dispose();
});

test('a diverging replica is reported with its step; the others train on unharmed', async () => {
  const engine = await testEngine();
  const data = new LinearTeacher(engine, { V, sigmaX: SIGMA_X, sigmaEps: SIGMA_EPS });
  const weights = initialWeights(engine, 3, 0);
  // Blow up replica 1's first layer: at this learning rate its loss explodes within a few steps.
  const w1 = (await weights[0].read()) as Float32Array;
  for (let i = 6; i < 12; i++) w1[i] *= 40;
  engine.write(weights[0], w1);
  const losses: Float32Array[] = [];
  const divergences = await trainLinear(engine, weights, data, {
    steps: 60,
    logEvery: 10,
    learningRate: 0.05,
    onLog: (_s, l) => void losses.push(l),
  });
  assert.is(divergences.length, 1);
  assert.is(divergences[0].replica, 1);
  assert.ok(divergences[0].step >= 9 && divergences[0].step < 60);
  const last = losses[losses.length - 1];
  assert.ok(
    Number.isFinite(last[0]) && Number.isFinite(last[2]) && last[0] < 5 && last[2] < 5,
    `healthy replicas: ${last}`,
  );
  for (const w of weights) w.dispose();
  data.dispose();
});

test('configuration mistakes fail before any GPU work, naming the field', async () => {
  const engine = await testEngine();
  const source = new LinearTeacher(engine, { V, sigmaEps: SIGMA_EPS });
  const data = FixedDataset.fromSource(engine, source, 16, 1);
  const weights = initialWeights(engine, 1, 0);
  const launches = engine.scheduler.launches;
  try {
    await trainLinear(engine, weights, data, { batchSize: 17 });
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /train\.batchSize: 17 is larger than the training set/);
  }
  const wrong = buildModel({ kind: 'deep-linear', inputDim: 3, hidden: [3], outputDim: 2 });
  try {
    await train(engine, {
      model: wrong,
      params: weights,
      data,
      loss: 'mse',
      learningRate: 0.1,
      batchSize: 4,
      steps: 1,
      seed: 1,
    });
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /^model\.inputDim/);
  }
  assert.throws(
    () => buildModel({ kind: 'mlp', inputDim: 2, hidden: [0], outputDim: 1, activation: 'relu' }),
    /model\.hidden\[0\]/,
  );
  assert.is(engine.scheduler.launches, launches);
  for (const w of weights) w.dispose();
  data.dispose();
  source.dispose();
});

test.run();
