import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadMnist } from '../runner/node/mnist.ts';
import { FixedDataset } from '../src/data/fixed.ts';
import { NoisyMnist } from '../src/data/mnist.ts';
import { TeacherStudent } from '../src/data/teacher-student.ts';
import { InputError } from '../src/errors.ts';
import { initParameters, initStd } from '../src/models/init.ts';
import { buildModel } from '../src/models/model.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('initialisers and data sources');
test.after(destroyTestEngine);

function moments(values: ArrayLike<number>): { mean: number; variance: number } {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i] / values.length;
  let variance = 0;
  for (let i = 0; i < values.length; i++) variance += (values[i] - mean) ** 2 / (values.length - 1);
  return { mean, variance };
}

test('Kaiming, Xavier and N(0, s²) weights have the prescribed variance; biases start at zero', async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'mlp', inputDim: 200, hidden: [300], outputDim: 10, activation: 'relu' });
  for (const scheme of [{ kind: 'kaiming' }, { kind: 'xavier' }, { kind: 'normal', scale: 0.3 }] as const) {
    const params = initParameters(engine, model, scheme, { replicas: 2, seed: 5 });
    for (const [i, p] of params.entries()) {
      const spec = model.parameters[i];
      const values = await p.read();
      const std = initStd(scheme, spec);
      if (std === 0) {
        assert.ok(
          values.every((v) => v === 0),
          `${spec.name} is zero`,
        );
        continue;
      }
      const { mean, variance } = moments(values);
      const n = values.length;
      // Sample mean ± 5 standard errors; sample variance ± 5·σ²·√(2/n).
      assert.ok(Math.abs(mean) < (5 * std) / Math.sqrt(n), `${scheme.kind} ${spec.name} mean ${mean}`);
      assert.ok(
        Math.abs(variance - std ** 2) < 5 * std ** 2 * Math.sqrt(2 / n),
        `${scheme.kind} ${spec.name} variance ${variance} vs ${std ** 2}`,
      );
    }
    for (const p of params) p.dispose();
  }
  assert.throws(
    () => initParameters(engine, model, { kind: 'normal', scale: -1 }, { replicas: 1, seed: 1 }),
    /init\.scale/,
  );
});

test("a replica's initial weights do not depend on how many replicas share its job", async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'rnn', inputDim: 3, hidden: 4, outputDim: 2, sequenceLength: 2 });
  const all = initParameters(engine, model, { kind: 'xavier' }, { replicas: 5, seed: 8 });
  const alone = initParameters(engine, model, { kind: 'xavier' }, { replicas: 1, seed: 8, replicaOffset: 3 });
  for (const [i, p] of all.entries()) {
    const values = await p.read();
    const single = await alone[i].read();
    assert.equal(
      Array.from(single),
      Array.from(values.slice(3 * p.size, 4 * p.size)),
      model.parameters[i].name,
    );
  }
  for (const p of [...all, ...alone]) p.dispose();
});

test('teacher-student: labels are the fixed teacher plus noise of covariance Σ_ε', async () => {
  const engine = await testEngine();
  const sigmaEps = [
    [0.8, 0.2],
    [0.2, 0.3],
  ];
  const data = new TeacherStudent(engine, {
    teacher: { kind: 'mlp', inputDim: 3, hidden: [50], outputDim: 2, activation: 'relu' },
    teacherSeed: 3,
    sigmaEps,
  });
  const rows = 8000;
  const { x, y } = data.sample({ seed: 1, step: 0, rows, replicas: 1 });
  const clean = data.label(x);
  const ys = await y.read();
  const fs = await clean.read();
  const c = [
    [0, 0],
    [0, 0],
  ];
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++)
        c[i][j] += ((ys[2 * r + i] - fs[2 * r + i]) * (ys[2 * r + j] - fs[2 * r + j])) / rows;
  }
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      const se = Math.sqrt((sigmaEps[i][j] ** 2 + sigmaEps[i][i] * sigmaEps[j][j]) / rows);
      assert.ok(Math.abs(c[i][j] - sigmaEps[i][j]) < 5 * se, `Σ_ε[${i}][${j}] = ${c[i][j]}`);
    }
  }
  // The teacher is the same for every replica and every training seed.
  const other = await data.sample({ seed: 2, step: 7, rows: 4, replicas: 3 });
  const relabelled = await data.label(other.x).read();
  const again = await data.label(other.x).read();
  assert.equal(Array.from(relabelled), Array.from(again));
  for (const t of [x, y, clean, other.x, other.y]) t.dispose();
  data.dispose();
});

test('sequence teacher-student (RNN and Transformer teachers) yields [rows, T·d] inputs and finite labels', async () => {
  const engine = await testEngine();
  for (const teacher of [
    { kind: 'rnn', inputDim: 8, hidden: 100, outputDim: 8, sequenceLength: 4 },
    {
      kind: 'transformer',
      inputDim: 8,
      modelDim: 8,
      heads: 2,
      mlpHidden: 100,
      outputDim: 8,
      sequenceLength: 4,
    },
  ] as const) {
    const data = new TeacherStudent(engine, {
      teacher,
      teacherSeed: 1,
      sigmaEps: Array.from({ length: 8 }, (_, i) => Array.from({ length: 8 }, (_, j) => (i === j ? 0.1 : 0))),
    });
    const { x, y } = data.sample({ seed: 1, step: 0, rows: 6, replicas: 2 });
    assert.equal([...x.shape], [6, 32]);
    assert.equal([...y.shape], [6, 8]);
    assert.is(y.batch, 2);
    assert.ok((await y.read()).every(Number.isFinite));
    x.dispose();
    y.dispose();
    data.dispose();
  }
});

test('MNIST: 10,000 real digits; targets are softmax(one-hot + ε), rows summing to one', async () => {
  const engine = await testEngine();
  const { train, test: held } = loadMnist();
  assert.is(train.labels.length + held.labels.length, 10000);
  // Noise std 1e-4: each of the ten logits moves by < 5e-4 (5σ) and the softmax is 1-Lipschitz per
  // logit, so the target's peak is within 10 · 5e-4 of its noise-free value.
  const small = new Array(10).fill(1e-8);
  const diag = (v: number[]) => v.map((a, i) => v.map((_, j) => (i === j ? a : 0)));
  // With tiny noise the target is softmax of the one-hot: e/(e + 9) on the label.
  const data = new NoisyMnist(engine, train, diag(small));
  const { x, y } = data.sample({ seed: 4, step: 0, rows: 64, replicas: 2 });
  const xs = await x.read();
  const ys = await y.read();
  for (let r = 0; r < 128; r++) {
    const row = Array.from(ys.subarray(r * 10, r * 10 + 10));
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    const label = row.indexOf(Math.max(...row));
    const peak = Math.E / (Math.E + 9);
    assert.ok(Math.abs(row[label] - peak) < 5e-3, `row ${r} peak ${row[label]}`);
    // The image is one of the training digits with that label.
    const pixels = xs.subarray(r * 784, r * 784 + 784);
    let found = false;
    for (let i = 0; i < train.labels.length && !found; i++) {
      if (train.labels[i] !== label || train.images[i * 784 + 300] !== pixels[300]) continue;
      found = train.images.subarray(i * 784, i * 784 + 784).every((v, k) => v === pixels[k]);
    }
    assert.ok(found, `row ${r}: image of a ${label} from the training set`);
  }
  x.dispose();
  y.dispose();
  data.dispose();
});

test('a fixed training set: batches larger than the set are refused; full batch sees every row', async () => {
  const engine = await testEngine();
  const source = new TeacherStudent(engine, {
    teacher: { kind: 'mlp', inputDim: 2, hidden: [10], outputDim: 1, activation: 'tanh' },
    teacherSeed: 2,
    sigmaEps: [[0.1]],
  });
  const data = FixedDataset.fromSource(engine, source, 32, 9);
  assert.throws(
    () => data.sample({ seed: 1, step: 0, rows: 33, replicas: 1 }),
    (e: unknown) => e instanceof InputError && /larger than the training set/.test((e as Error).message),
  );
  const full = data.fullBatch();
  assert.equal([...full.x.shape], [32, 2]);
  const { x } = data.sample({ seed: 1, step: 0, rows: 16, replicas: 2 });
  const all = await full.x.read();
  const drawn = await x.read();
  for (let r = 0; r < 32; r++) {
    const pair = [drawn[2 * r], drawn[2 * r + 1]];
    let found = false;
    for (let i = 0; i < 32; i++) if (all[2 * i] === pair[0] && all[2 * i + 1] === pair[1]) found = true;
    assert.ok(found, `minibatch row ${r} comes from the set`);
  }
  x.dispose();
  data.dispose();
  source.dispose();
});

test.run();
