// The benchmark suite's peers compute what ours computes, and its JSON records what it promises:
// the tfjs-webgpu SGD loop's first step equals a float64 CPU SGD step on the same weights and data;
// jax-js's H·v (wasm backend, jvp of grad) equals a float64 central-difference Hessian times v and
// our H·v on small instances of every model family; `bench matmul --json FILE` on one small shape
// writes the adapter, host, date, commit, cores and a finite positive figure for every engine.
// No speed is asserted.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { forwardMultiplyAdds, sgdStepFlops } from '../bench/flops.ts';
import { HVP_PEER_TOLERANCE, type HvpPeerCase, hvpPeersJob } from '../bench/hvp-peers.ts';
import { numpyDeepLinearInput } from '../bench/init-scale.ts';
import { MATMUL_ENGINES, matmulShapes } from '../bench/matmul.ts';
import { takeJsonFile } from '../bench/meta.ts';
import { quickPresetNames } from '../bench/quick-presets.ts';
import { disposeTfjsWebgpu, loadTfjsGradients, loadTfjsWebgpu } from '../bench/tfjs.ts';
import { tfjsDeepLinearSgd } from '../bench/tfjs-train.ts';
import { validateExperiment } from '../src/experiments/config.ts';
import { loadPreset, PRESET_NAMES } from '../src/experiments/presets/index.ts';
import type { LossKind } from '../src/models/losses.ts';
import { buildModel, type ModelSpec } from '../src/models/model.ts';
import { runCli } from './helpers/cli.ts';
import { centralGradient, centralHessian, cpuLoss } from './helpers/cpu-models.ts';
import { F32_EPS, seededRandom } from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const randomF32 = (random: () => number, n: number, scale: number) =>
  Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);

test('tfjs SGD peer: one step on given data equals a float64 SGD step (per replica)', async () => {
  const engine = await testEngine();
  const t = await loadTfjsWebgpu(engine.context.adapterInfo);
  await loadTfjsGradients();
  const spec: ModelSpec = { kind: 'deep-linear', inputDim: 2, hidden: [3], outputDim: 2 };
  const widths = [2, 3, 2];
  const [R, B, eta] = [2, 5, 0.1];
  const random = seededRandom(17);
  const initial = widths.slice(1).map((out, i) => randomF32(random, R * out * widths[i], 1));
  const x = randomF32(random, R * B * 2, 2);
  const y = randomF32(random, R * B * 2, 2);
  const loop = tfjsDeepLinearSgd(t.tf, {
    widths,
    replicas: R,
    batchSize: B,
    learningRate: eta,
    V: [
      [1, 0],
      [0, 1],
    ],
    noiseStd: [1, 1],
    initial,
    seed: 1,
  });
  loop.step({ x, y });
  const got = await loop.weights();
  loop.dispose();
  for (let r = 0; r < R; r++) {
    // θ of replica r in buildModel order (W1 then W2), each row-major.
    const slices = initial.map((w, i) => {
      const n = widths[i + 1] * widths[i];
      return w.subarray(r * n, (r + 1) * n);
    });
    const theta = Float64Array.from(slices.flatMap((s) => Array.from(s)));
    const rows = (a: Float32Array, m: number) =>
      Array.from({ length: B }, (_, b) =>
        Float64Array.from(a.subarray((r * B + b) * m, (r * B + b + 1) * m)),
      );
    const g = centralGradient((th) => cpuLoss(spec, 'mse', th, rows(x, 2), rows(y, 2)), theta);
    const want = theta.map((v, i) => v - eta * g[i]);
    const gotTheta = got.flatMap((w, i) => {
      const n = widths[i + 1] * widths[i];
      return Array.from(w.subarray(r * n, (r + 1) * n));
    });
    // f32: weights round at ε|W|; each gradient entry is a sum of B·width products (γ ≈ 16ε of the
    // sum of |terms| ≤ max|g|·16 here); central differences add ~1e-9. A wrong step is O(η|g|).
    const maxW = Math.max(...theta.map(Math.abs));
    const maxStep = Math.max(...g.map((v) => Math.abs(eta * v)));
    const tolerance = 4 * F32_EPS * maxW + 256 * F32_EPS * maxStep;
    assert.ok(
      maxStep > 100 * tolerance,
      `the step must be large enough to test (${maxStep} vs ${tolerance})`,
    );
    gotTheta.forEach((v, i) => {
      assert.ok(
        Math.abs(v - want[i]) <= tolerance,
        `replica ${r}, θ[${i}]: tfjs ${v}, float64 ${want[i]} (tolerance ${tolerance.toExponential(2)})`,
      );
    });
  }
});

test('tfjs SGD peer: fresh data each step (two steps from the same weights differ from one on repeated data)', async () => {
  const engine = await testEngine();
  const t = await loadTfjsWebgpu(engine.context.adapterInfo);
  await loadTfjsGradients();
  const options = {
    widths: [2, 2, 2],
    replicas: 1,
    batchSize: 4,
    learningRate: 0.1,
    V: [
      [1, 0],
      [0, 1],
    ],
    noiseStd: [1, 1],
    initial: [Float32Array.of(1, 0, 0, 1), Float32Array.of(0.5, 0.1, -0.2, 0.7)],
    seed: 3,
  };
  // The update of step 0 and of step 1 from the same start: equal only if the data repeated.
  const a = tfjsDeepLinearSgd(t.tf, options);
  a.step();
  const afterOne = await a.weights();
  a.step();
  const afterTwo = await a.weights();
  a.dispose();
  const b = tfjsDeepLinearSgd(t.tf, options);
  b.step();
  const again = await b.weights();
  b.dispose();
  assert.equal(Array.from(again[0]), Array.from(afterOne[0]), 'the same (seed, step) gives the same data');
  const firstStep = afterOne[1].map((v, i) => v - options.initial[1][i]);
  const secondStep = afterTwo[1].map((v, i) => v - afterOne[1][i]);
  assert.ok(
    firstStep.some((v, i) => Math.abs(v - secondStep[i]) > 1e-3),
    'consecutive steps must see different minibatches',
  );
});

/** Small instances of every model family: (spec, loss, rows). */
const HVP_CASES: { spec: ModelSpec; loss: LossKind; rows: number }[] = [
  { spec: { kind: 'deep-linear', inputDim: 2, hidden: [3, 2], outputDim: 2 }, loss: 'mse', rows: 6 },
  {
    spec: { kind: 'mlp', inputDim: 3, hidden: [4], outputDim: 2, activation: 'tanh' },
    loss: 'mse',
    rows: 5,
  },
  {
    spec: { kind: 'mlp', inputDim: 3, hidden: [4], outputDim: 3, activation: 'relu' },
    loss: 'cross-entropy',
    rows: 5,
  },
  {
    spec: { kind: 'rnn', inputDim: 2, hidden: 3, outputDim: 2, sequenceLength: 3 },
    loss: 'mse',
    rows: 4,
  },
  {
    spec: {
      kind: 'transformer',
      inputDim: 2,
      modelDim: 4,
      heads: 2,
      mlpHidden: 3,
      outputDim: 2,
      sequenceLength: 2,
    },
    loss: 'mse',
    rows: 3,
  },
];

test('jax-js H·v (wasm, jvp of grad) equals float64 H·v and ours, every model family', async () => {
  const engine = await testEngine();
  const random = seededRandom(29);
  const cases: HvpPeerCase[] = HVP_CASES.map(({ spec, loss, rows }) => {
    const model = buildModel(spec);
    const shapes = model.parameters.map((p) => p.shape);
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    let y = randomF32(random, rows * model.outputDim, 1);
    if (loss === 'cross-entropy') {
      // Soft targets: rows of positive weights summing to 1.
      const k = model.outputDim;
      y = y.map((v) => Math.abs(v) + 0.1);
      for (let r = 0; r < rows; r++) {
        const sum = y.subarray(r * k, (r + 1) * k).reduce((a, b) => a + b, 0);
        for (let j = 0; j < k; j++) y[r * k + j] /= sum;
      }
    }
    return {
      name: spec.kind,
      spec,
      loss,
      params: shapes.map((s) => randomF32(random, size(s), 0.8)),
      vector: shapes.map((s) => randomF32(random, size(s), 1)),
      x: randomF32(random, rows * model.inputFeatures, 1),
      y,
      rows,
      shapes,
    };
  });
  const run = await hvpPeersJob(engine, { cases, jaxDevice: 'wasm', minSeconds: 0 }, { log: () => {} });
  assert.is(run.jaxInitError, undefined, run.jaxInitError);

  // jax-js's own H·v, read back directly (not through the job), against float64.
  const jax = await import('../bench/jax-models.ts');
  for (const [i, c] of cases.entries()) {
    const timing = run.cases[i];
    assert.is(timing.jaxError, undefined, `${c.name}: ${timing.jaxError}`);
    assert.is(timing.oursError, undefined, `${c.name}: ${timing.oursError}`);
    assert.ok(
      (timing.agreement as number) <= HVP_PEER_TOLERANCE,
      `${c.name}: jax vs ours ${timing.agreement}`,
    );
    assert.ok((timing.jaxMs as number) > 0 && (timing.oursMs as number) > 0, `${c.name}: both timed`);

    const hvp = jax.jaxHvp(c);
    const got = (await hvp.result()).flatMap((a) => Array.from(a));
    hvp.dispose();
    const theta = Float64Array.from(c.params.flatMap((a) => Array.from(a)));
    const v = c.vector.flatMap((a) => Array.from(a));
    const k = c.x.length / c.rows;
    const m = c.y.length / c.rows;
    const xs = Array.from({ length: c.rows }, (_, r) => Float64Array.from(c.x.subarray(r * k, (r + 1) * k)));
    const ys = Array.from({ length: c.rows }, (_, r) => Float64Array.from(c.y.subarray(r * m, (r + 1) * m)));
    const H = centralHessian((th) => cpuLoss(c.spec, c.loss, th, xs, ys), theta);
    const want = H.map((row) => row.reduce((s, h, j) => s + h * v[j], 0));
    const scale = Math.max(...want.map(Math.abs));
    // f32 H·v: a few layers of sums of ≲ 50 products each (~1e-5 of the scale at most); the
    // float64 central differences add O(h²) + O(u/h²) ≈ 1e-8. A wrong term or transpose is O(1).
    const err = Math.max(...got.map((g, j) => Math.abs(g - want[j])));
    assert.ok(err <= 1e-4 * scale, `${c.name}: max |jax − float64| ${err} vs scale ${scale}`);
  }
});

const cli = (args: string[], env: Record<string, string>) => runCli(['bench', ...args], { env });

test('bench matmul --json FILE: adapter, host, date, commit, cores and every engine, finite and positive', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-bench-'));
  try {
    const file = join(dir, 'bench.json');
    const run = await cli(['matmul', '--min-time', '0.05', '--json', file], {
      SHARPNESS_LAB_BENCH_MATMUL_SHAPES: '4x16x16x16',
    });
    assert.is(run.code, 0, run.stderr);
    const report = JSON.parse(readFileSync(file, 'utf8'));
    for (const key of ['vendor', 'architecture', 'description', 'backend'])
      assert.type(report.adapter[key], 'string', `adapter.${key}`);
    assert.is(report.host, 'node');
    assert.ok(Number.isFinite(Date.parse(report.date)), `date ${report.date}`);
    assert.ok(
      report.commit === null || /^[0-9a-f]{40}(\+dirty)?$/.test(report.commit),
      `commit ${report.commit}`,
    );
    assert.ok(Number.isInteger(report.cores) && report.cores >= 1, `cores ${report.cores}`);
    const engines = report.results.map((r: { engine: string }) => r.engine).sort();
    assert.equal(engines, [...MATMUL_ENGINES].sort(), 'ours and every peer');
    for (const r of report.results) {
      assert.is(r.suite, 'matmul');
      assert.equal(r.shape, [4, 16, 16, 16]);
      assert.is(r.error, undefined, `${r.engine}: ${r.error}`);
      assert.ok(Number.isFinite(r.gflops) && r.gflops > 0, `${r.engine}: gflops ${r.gflops}`);
    }
    // The tables go to stdout in markdown, headed by the adapter.
    assert.match(run.stdout, /^adapter: /m);
    assert.match(run.stdout, /\| \[4, 16, 16, 16\] \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--json FILE: the argument after --json is the file unless it is a flag or a suite name', () => {
  const suites = ['matmul', 'train'];
  assert.equal(takeJsonFile(['matmul', '--json', 'out.json'], suites), {
    argv: ['matmul', '--json'],
    file: 'out.json',
  });
  assert.equal(takeJsonFile(['--json', 'matmul'], suites), { argv: ['--json', 'matmul'] });
  assert.equal(takeJsonFile(['--json', '--min-time', '1'], suites), { argv: ['--json', '--min-time', '1'] });
  assert.equal(takeJsonFile(['--json'], suites), { argv: ['--json'] });
  assert.equal(takeJsonFile(['train'], suites), { argv: ['train'] });
});

test('step flops: an MLP or deep linear forward is one multiply-add per weight; closed forms per family', () => {
  // MLP and deep linear: each weight entry multiplies one input per sample (biases add, not multiply).
  const mnist: ModelSpec = { kind: 'mlp', inputDim: 784, hidden: [128], outputDim: 10, activation: 'relu' };
  const deep: ModelSpec = { kind: 'deep-linear', inputDim: 2, hidden: [3, 5], outputDim: 2 };
  for (const spec of [mnist, deep]) {
    const weights = buildModel(spec)
      .parameters.filter((p) => p.role === 'weight')
      .reduce((sum, p) => sum + p.shape[0] * p.shape[1], 0);
    assert.is(forwardMultiplyAdds(spec), weights);
  }
  // One SGD step of MNIST's MLP, batch 128, 8 replicas: 2 flops × (forward + 2 × forward backward).
  assert.is(
    sgdStepFlops({ student: mnist, batchSize: 128, replicas: 8 }),
    2 * 3 * (784 * 128 + 128 * 10) * 128 * 8,
  );
  // A teacher labelling the batch adds its forward once: MLP 2-4-2 with teacher 2-100-2, batch 100.
  const teacher: ModelSpec = { kind: 'mlp', inputDim: 2, hidden: [100], outputDim: 2, activation: 'relu' };
  const student: ModelSpec = { kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 2, activation: 'relu' };
  assert.is(sgdStepFlops({ student, teacher, batchSize: 100, replicas: 1 }), 2 * (3 * 16 + 400) * 100);
  // RNN 8-4-8, T = 4: Wx at 4 steps (4·4·8), Wh at 3 (h₀ = 0; 3·4·4), Wo once (8·4).
  const rnn: ModelSpec = { kind: 'rnn', inputDim: 8, hidden: 4, outputDim: 8, sequenceLength: 4 };
  assert.is(forwardMultiplyAdds(rnn), 128 + 48 + 32);
  // Transformer d = 8, 2 heads of 4, T = 4, MLP 4: embedding 4·8·8 = 256; per head q, k, v 3·4·4·8 = 384,
  // scores and mixing 2·4·4·4 = 128, output projection 4·8·4 = 128; MLP 4·(4·8 + 8·4) = 256; readout 64.
  const transformer: ModelSpec = {
    kind: 'transformer',
    inputDim: 8,
    modelDim: 8,
    heads: 2,
    mlpHidden: 4,
    outputDim: 8,
    sequenceLength: 4,
  };
  assert.is(forwardMultiplyAdds(transformer), 256 + 2 * (384 + 128 + 128) + 256 + 64);
});

test('SHARPNESS_LAB_BENCH_MATMUL_SHAPES: batch×m×k×n lists, anything else an input error', () => {
  assert.equal(matmulShapes('64x32x32x32, 1x8x4x2'), [
    [64, 32, 32, 32],
    [1, 8, 4, 2],
  ]);
  assert.throws(() => matmulShapes('64x32x32'), /batch×m×k×n/);
  assert.throws(() => matmulShapes('1x0x2x2'), /batch×m×k×n/);
});

test('SHARPNESS_LAB_BENCH_PRESETS: every preset by default, a named subset, unknown names an input error', () => {
  assert.equal(quickPresetNames(''), [...PRESET_NAMES]);
  assert.equal(quickPresetNames(undefined), [...PRESET_NAMES]);
  assert.equal(quickPresetNames('init-scale, sharpening-mnist'), ['init-scale', 'sharpening-mnist']);
  assert.throws(
    () => quickPresetNames('init-scale,nope'),
    /SHARPNESS_LAB_BENCH_PRESETS.*unknown preset 'nope'/,
  );
});

test.after(async () => {
  await disposeTfjsWebgpu();
  await destroyTestEngine();
});

test('numpy peer of init-scale: trains what the preset trains, and refuses what it cannot', () => {
  const config = loadPreset('init-scale');
  const input = numpyDeepLinearInput(validateExperiment(config));
  const scales = config.groups.map((g) => (g.overrides as { init: { scale: number } }).init.scale);
  assert.equal(
    input.replicaScales,
    scales.flatMap((s) => new Array(config.seeds).fill(s)),
  );
  assert.equal(input.widths, [2, 2, 2, 2]);
  assert.is(input.steps, config.train.steps);
  assert.is(input.batch, config.train.batchSize);
  assert.is(input.learningRate, config.train.learningRate);
  const std = (config.data as { noiseStd: number[] }).noiseStd;
  assert.equal(input.sigmaEps, [
    [std[0] ** 2, 0],
    [0, std[1] ** 2],
  ]);
  const mixed = {
    ...config,
    groups: [...config.groups, { name: 'fast', overrides: { train: { learningRate: 0.01 } } }],
  };
  assert.throws(() => numpyDeepLinearInput(validateExperiment(mixed)), /differ only in their init scale/);
  assert.throws(
    () => numpyDeepLinearInput(validateExperiment(loadPreset('sharpening-mnist'))),
    /deep linear networks on a linear teacher/,
  );
});

test.run();
