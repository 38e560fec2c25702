import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { prepareExperiment } from '../src/experiments/config.ts';
import { type Checkpoint, type ResultRow, runExperiment } from '../src/experiments/executor.ts';
import { initParameters } from '../src/models/init.ts';
import { buildModel } from '../src/models/model.ts';
import { deepLinearTheory } from '../src/theory/deep-linear.ts';
import { sharpnessAt } from '../src/theory/hessian.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('experiment executor');
test.after(destroyTestEngine);

const CONFIG = deepLinearConfig({
  name: 'executor-test',
  description: 'two noise geometries on a depth-2 linear network',
  steps: 600,
  measure: {
    every: 100,
    evaluationSamples: 64,
    metrics: ['loss', 'sharpness', 'lambdaMax', 'fluctuation', 'layerCondition'],
  },
  seeds: 2,
  seed: 3,
  groups: [
    { name: 'anisotropic', reference: 'isotropic' },
    { name: 'isotropic', overrides: { data: { noiseStd: [1, 1] } } },
  ],
  panels: [],
});

const key = (r: ResultRow) => `${r.group}|${r.seed}|${r.step}|${r.metric}`;

test('rows for every group, seed, log point and metric, plus theory and relative sharpness', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const { rows, divergences } = await runExperiment(engine, config);
  assert.equal(divergences, []);
  // A row's step is the number of updates applied: 0 (the initialisation), every 100, and the end.
  const steps = [0, 100, 200, 300, 400, 500, 600];
  for (const group of ['anisotropic', 'isotropic']) {
    for (const seed of [0, 1]) {
      for (const metric of [
        'loss',
        'sharpness',
        'lambdaMax',
        'fluctuation',
        'layerCondition.W1',
        'layerCondition.W2',
      ]) {
        const got = rows
          .filter((r) => r.group === group && r.seed === seed && r.metric === metric)
          .map((r) => r.step);
        assert.equal(got, steps, `${group} seed ${seed} ${metric}`);
      }
    }
    const theory = rows.filter((r) => r.group === group && r.seed === 'theory' && r.metric === 'sharpness');
    const sigmaEps =
      group === 'anisotropic'
        ? [
            [1, 0],
            [0, 0.09],
          ]
        : [
            [1, 0],
            [0, 1],
          ];
    const expected = deepLinearTheory({
      depth: 2,
      V: [
        [1, 0],
        [0, 1],
      ],
      sigmaEps,
    }).sharpness;
    assert.ok(theory.length === 2 && theory.every((r) => Math.abs(r.value - expected) < 1e-9 * expected));
  }
  // relativeSharpness = T(anisotropic) / T(isotropic), seed by seed and step by step.
  const relative = rows.filter((r) => r.metric === 'relativeSharpness');
  assert.is(relative.filter((r) => r.seed !== 'theory').length, 2 * steps.length);
  assert.is(relative.filter((r) => r.seed === 'theory').length, 2, 'theory ratio at both ends');
  const index = new Map(rows.map((r) => [key(r), r.value]));
  for (const r of relative) {
    const ratio =
      (index.get(`anisotropic|${r.seed}|${r.step}|sharpness`) ?? Number.NaN) /
      (index.get(`isotropic|${r.seed}|${r.step}|sharpness`) ?? Number.NaN);
    assert.ok(Math.abs(r.value - ratio) <= 1e-12 * ratio);
  }
  // Every measurement is a finite number; sharpness is a trace of a PSD Gauss–Newton-dominated Hessian.
  assert.ok(rows.every((r) => Number.isFinite(r.value)));
  assert.ok(rows.filter((r) => r.metric === 'sharpness' && r.seed !== 'theory').every((r) => r.value > 0));
});

test('step 0 is the initialisation: Tr H of the population loss at the initial weights', async () => {
  const engine = await testEngine();
  const config = prepareExperiment({
    ...CONFIG,
    train: { ...CONFIG.train, steps: 1 },
    measure: { ...CONFIG.measure, every: 1 },
  });
  const { rows } = await runExperiment(engine, config);
  const measured = rows.filter((r) => r.seed !== 'theory' && r.metric === 'sharpness');
  // One update: log points 0 (before it) and 1 (the end of training).
  assert.equal([...new Set(measured.map((r) => r.step))], [0, 1]);
  // The same initial weights drawn here (replica g·seeds + s of the run), and the Gauss–Newton trace
  // Σ_i ‖L_i‖² Tr(R_i R_iᵀ) of theory.md, which is the population Tr H at any weights (Σ_x = I).
  const model = buildModel(CONFIG.model as never);
  const params = initParameters(engine, model, { kind: 'normal', scale: 0.5 }, { replicas: 4, seed: 3 });
  const values = await Promise.all(params.map((p) => p.read()));
  for (const [g, group] of ['anisotropic', 'isotropic'].entries()) {
    for (const seed of [0, 1]) {
      const r = 2 * g + seed;
      const weights = [
        [
          Array.from(values[0].subarray(4 * r, 4 * r + 2)),
          Array.from(values[0].subarray(4 * r + 2, 4 * r + 4)),
        ],
        [
          Array.from(values[1].subarray(4 * r, 4 * r + 2)),
          Array.from(values[1].subarray(4 * r + 2, 4 * r + 4)),
        ],
      ];
      const expected = sharpnessAt(weights, [
        [1, 0],
        [0, 1],
      ]);
      const got =
        measured.find((row) => row.group === group && row.seed === seed && row.step === 0)?.value ??
        Number.NaN;
      assert.ok(Math.abs(got - expected) < 1e-9 * expected, `${group} seed ${seed}: ${got} vs ${expected}`);
    }
  }
  for (const p of params) p.dispose();
});

test('topEigenvalues, gradientNorm and layerSharpness rows: λ1 = λ_max, λ1 ≥ λ2 ≥ λ3, Σ block traces = Tr H (population); λ1 = λ_max on the GPU route', async () => {
  const engine = await testEngine();
  const metrics = ['sharpness', 'lambdaMax', 'topEigenvalues', 'gradientNorm', 'layerSharpness'];
  const config = prepareExperiment({
    ...CONFIG,
    train: { ...CONFIG.train, steps: 100 },
    measure: { ...CONFIG.measure, every: 50, metrics, topEigenvalues: 3 },
  });
  const { rows } = await runExperiment(engine, config);
  const value = (group: string, seed: number, step: number, metric: string) =>
    rows.find((r) => r.group === group && r.seed === seed && r.step === step && r.metric === metric)?.value ??
    Number.NaN;
  for (const step of [0, 50, 100]) {
    const [l1, l2, l3] = ['lambda1', 'lambda2', 'lambda3'].map((m) => value('isotropic', 1, step, m));
    const T = value('isotropic', 1, step, 'sharpness');
    assert.ok(Math.abs(l1 - value('isotropic', 1, step, 'lambdaMax')) <= 1e-12 * l1, 'λ1 = λ_max');
    assert.ok(l1 >= l2 && l2 >= l3, 'descending');
    const blocks =
      value('isotropic', 1, step, 'layerSharpness.W1') + value('isotropic', 1, step, 'layerSharpness.W2');
    assert.ok(Math.abs(blocks - T) <= 1e-12 * T, `Σ block traces ${blocks} = Tr H ${T}`);
    assert.ok(value('isotropic', 1, step, 'gradientNorm') > 0);
    assert.ok(value('isotropic', 1, step, 'layerLambdaMax.W1') <= l1 * (1 + 1e-12), 'a block λ_max ≤ λ_max');
  }
  // An MLP measures on the GPU (dense Hessian of the evaluation set): λ1 is its λ_max there too.
  const mlp = prepareExperiment({
    ...config,
    name: 'executor-mlp',
    model: { kind: 'mlp', inputDim: 2, hidden: [3], outputDim: 2, activation: 'tanh' },
    measure: { ...config.measure, metrics: ['lambdaMax', 'topEigenvalues', 'gradientNorm'] },
  });
  const gpu = (await runExperiment(engine, mlp)).rows;
  const at = (metric: string) =>
    gpu.find((r) => r.seed === 0 && r.step === 100 && r.metric === metric)?.value;
  assert.ok(Math.abs((at('lambda1') ?? 0) - (at('lambdaMax') ?? 1)) <= 1e-6 * Math.abs(at('lambdaMax') ?? 1));
  assert.ok((at('gradientNorm') ?? -1) >= 0);
});

test('a run resumed from a mid-run checkpoint produces exactly the rows of an uninterrupted run', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const checkpoints: Checkpoint[] = [];
  const full = await runExperiment(engine, config, {
    checkpoint: (c) => void checkpoints.push(structuredClone(c)),
  });
  // Both groups train as one batch; resume after its third log point (a state a killed run would leave).
  const middle = checkpoints.find((c) => c.batchIndex === 0 && c.step === 300);
  assert.ok(
    middle,
    `a checkpoint at batch 0, step 300 (have ${checkpoints.map((c) => `${c.batchIndex}:${c.step}`)})`,
  );
  const resumed = await runExperiment(engine, config, { resume: middle });
  assert.is(resumed.rows.length, full.rows.length);
  const expected = new Map(full.rows.map((r) => [key(r), r.value]));
  for (const row of resumed.rows) assert.is(row.value, expected.get(key(row)), key(row));
  // And from an earlier log point.
  const early = checkpoints.find((c) => c.batchIndex === 0 && c.step === 200);
  const resumedEarly = await runExperiment(engine, config, { resume: early });
  for (const row of resumedEarly.rows) assert.is(row.value, expected.get(key(row)), key(row));
});

test('logPoint sees every log point, the last included, with the rows so far and their weights; a throw stops the run', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const checkpoints = new Map<number, number[][]>();
  const seen: { step: number; rows: number; params: number[][] }[] = [];
  const full = await runExperiment(engine, config, {
    checkpoint: (c) => void checkpoints.set(c.step, c.params),
    logPoint: (point) => {
      seen.push({
        step: point.step,
        rows: point.rows.length,
        params: point.params.map((p) => Array.from(p)),
      });
    },
  });
  assert.equal(
    seen.map((p) => p.step),
    [0, 100, 200, 300, 400, 500, 600],
  );
  // Rows grow by one log point each time: 2 groups × 2 seeds × 6 metric rows (4 + 2 layer conditions).
  assert.equal(
    seen.map((p) => p.rows),
    [24, 48, 72, 96, 120, 144, 168],
  );
  const measured = full.rows.filter((r) => r.seed !== 'theory' && r.metric !== 'relativeSharpness');
  assert.is(measured.length, 168);
  // The weights are the log point's: those a checkpoint written there holds (checkpoints are written
  // between the first and the last log point).
  for (const point of seen.slice(1, -1))
    assert.equal(point.params, checkpoints.get(point.step), `step ${point.step}`);
  assert.is(seen[6].params[0].length, 4 * 4, 'W1 of 4 replicas (2×2 each)');

  const stop = new Error('stopped at step 300');
  let stepsSeen = 0;
  try {
    await runExperiment(engine, config, {
      logPoint: (point) => {
        stepsSeen++;
        if (point.step === 300) throw stop;
      },
    });
    assert.unreachable('the throw ends the run');
  } catch (error) {
    assert.is(error, stop);
  }
  assert.is(stepsSeen, 4);
});

/**
 * Measurements go through batched matmuls whose kernel (and so float summation order) depends on the
 * batch size; a length-k f32 dot product is exact to about k·u relative, and a Hessian entry chains
 * three such products over at most 64 samples: 3·64·2⁻²⁴ ≈ 1.1e-5. Training (the fused kernel, one
 * invocation per replica) does not depend on the batch and must match exactly.
 */
const MEASUREMENT_TOLERANCE = 1e-4;

function assertSameRows(got: ResultRow[], want: ResultRow[], what: string) {
  const expected = new Map(want.map((r) => [key(r), r.value]));
  assert.is(got.length, expected.size, `${what}: row count`);
  for (const row of got) {
    const value = expected.get(key(row));
    assert.ok(value !== undefined, `${what}: unexpected row ${key(row)}`);
    const exact = row.metric === 'loss' || row.metric.startsWith('layerCondition') || row.seed === 'theory';
    if (exact) assert.is(row.value, value, `${what}: ${key(row)}`);
    else
      assert.ok(
        Math.abs(row.value - value) <= MEASUREMENT_TOLERANCE * Math.abs(value),
        `${what}: ${key(row)} ${row.value} vs ${value}`,
      );
  }
}

test('groups batched together train exactly as each group alone (replicas keep their streams)', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const together = await runExperiment(engine, config);
  for (const [index, group] of config.groups.entries()) {
    // The group alone still needs the other's replica numbering: run the same config as a shard.
    const alone = await runExperiment(engine, config, { shard: { index, count: 2 } });
    const want = together.rows.filter((r) => r.group === group.name && r.metric !== 'relativeSharpness');
    assert.ok(
      alone.rows.every((r) => r.group === group.name),
      'a shard holds only its group',
    );
    assertSameRows(alone.rows, want, group.name);
  }
});

test('shards of uneven size cover every replica once and reproduce the single run', async () => {
  const engine = await testEngine();
  const config = prepareExperiment({ ...CONFIG, train: { ...CONFIG.train, steps: 200 } });
  const single = await runExperiment(engine, config);
  const merged: ResultRow[] = [];
  for (let index = 0; index < 3; index++) {
    const part = await runExperiment(engine, config, { shard: { index, count: 3 } });
    for (const row of part.rows) {
      // Theory rows come with every shard that touches the group.
      if (row.seed === 'theory' && merged.some((r) => key(r) === key(row))) continue;
      merged.push(row);
    }
  }
  assertSameRows(
    merged,
    single.rows.filter((r) => r.metric !== 'relativeSharpness'),
    'merged shards',
  );
});

test('bad shard specs are input errors naming --shard', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  for (const shard of [
    { index: 3, count: 2 },
    { index: -1, count: 2 },
    { index: 0, count: 0 },
    { index: 0, count: 5 },
    { index: 0.5, count: 2 },
  ]) {
    try {
      await runExperiment(engine, config, { shard });
      assert.unreachable(`shard ${JSON.stringify(shard)}`);
    } catch (error) {
      assert.match((error as Error).message, /^--shard: /, JSON.stringify(shard));
    }
  }
});

test('a checkpoint from another experiment is refused', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const foreign: Checkpoint = {
    version: 2,
    experiment: 'other',
    shard: null,
    batchIndex: 0,
    step: 100,
    params: [],
    rows: [],
    divergences: [],
  };
  try {
    await runExperiment(engine, config, { resume: foreign });
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /--resume: the checkpoint belongs to another run/);
  }
});

test.run();
