import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { prepareExperiment } from '../src/experiments/config.ts';
import { type Checkpoint, type ResultRow, runExperiment } from '../src/experiments/executor.ts';
import { deepLinearTheory } from '../src/theory/index.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('experiment executor');
test.after(destroyTestEngine);

const CONFIG = {
  name: 'executor-test',
  description: 'two noise geometries on a depth-2 linear network',
  model: { kind: 'deep-linear', inputDim: 2, hidden: [2], outputDim: 2 },
  loss: 'mse',
  data: {
    kind: 'linear-teacher',
    V: [
      [1, 0],
      [0, 1],
    ],
    noiseStd: [1, 0.3],
  },
  init: { kind: 'normal', scale: 0.5 },
  train: { learningRate: 0.05, batchSize: 10, steps: 600 },
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
};

const key = (r: ResultRow) => `${r.group}|${r.seed}|${r.step}|${r.metric}`;

test('rows for every group, seed, log point and metric, plus theory and relative sharpness', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const { rows, divergences } = await runExperiment(engine, config);
  assert.equal(divergences, []);
  const steps = [99, 199, 299, 399, 499, 599];
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

test('a run resumed from a mid-run checkpoint produces exactly the rows of an uninterrupted run', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const checkpoints: Checkpoint[] = [];
  const full = await runExperiment(engine, config, {
    checkpoint: (c) => void checkpoints.push(structuredClone(c)),
  });
  // Resume in the second group, after its third log point (a state a killed run would leave).
  const middle = checkpoints.find((c) => c.groupIndex === 1 && c.step === 300);
  assert.ok(
    middle,
    `a checkpoint at group 1, step 300 (have ${checkpoints.map((c) => `${c.groupIndex}:${c.step}`)})`,
  );
  const resumed = await runExperiment(engine, config, { resume: middle });
  assert.is(resumed.rows.length, full.rows.length);
  const expected = new Map(full.rows.map((r) => [key(r), r.value]));
  for (const row of resumed.rows) assert.is(row.value, expected.get(key(row)), key(row));
  // And from inside the first group.
  const early = checkpoints.find((c) => c.groupIndex === 0 && c.step === 200);
  const resumedEarly = await runExperiment(engine, config, { resume: early });
  for (const row of resumedEarly.rows) assert.is(row.value, expected.get(key(row)), key(row));
});

test('a checkpoint from another experiment is refused', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const foreign: Checkpoint = {
    version: 1,
    experiment: 'other',
    groupIndex: 0,
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
