// Experiment configs: every preset (full and quick) passes the schema and the CPU-side checks; bad
// fields are rejected as InputError naming the JSON path where the user wrote them (inside a group's
// overrides or the quick override when that is where the value came from); overrides deep-merge.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../src/errors.ts';
import {
  applyQuick,
  type ExperimentConfigInput,
  matchesPattern,
  mergeOverrides,
  noiseCovariance,
  parseExperimentConfig,
  prepareExperiment,
  resolveGroup,
  resolveGroups,
  validateExperiment,
} from '../src/experiments/config.ts';
import { PRESET_NAMES, PRESETS, presetConfig } from '../src/experiments/presets/index.ts';

/** A small valid config to break in one place per case. */
function base(): ExperimentConfigInput {
  return {
    name: 'unit',
    description: 'test config',
    model: { kind: 'deep-linear', inputDim: 2, hidden: [2, 2], outputDim: 2 },
    loss: 'mse',
    data: {
      kind: 'linear-teacher',
      V: [
        [1, 0],
        [0, 1],
      ],
      noiseStd: [1, 1],
    },
    init: { kind: 'xavier' },
    train: { learningRate: 0.01, batchSize: 10, steps: 100 },
    measure: { every: 10, evaluationSamples: 50, metrics: ['loss', 'sharpness', 'fluctuation'] },
    seeds: 2,
    seed: 1,
    groups: [
      { name: 'iso', value: 1, overrides: {} },
      { name: 'aniso', value: 100, overrides: { data: { noiseStd: [1, 0.1] } } },
    ],
    panels: [
      { name: 'sharpening', kind: 'timeseries', metrics: ['sharpness', 'fluctuation'], title: 'T and S' },
    ],
    quick: { train: { steps: 50 }, measure: { every: 5 } },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: each case edits the config as free-form JSON, deliberately breaking its type.
type Loose = any;

/** Runs every check (parse, validate full and quick) and returns the InputError's field and message. */
function rejection(edit: (config: Record<string, Loose>) => void): { field: string; message: string } {
  const config = base() as Record<string, Loose>;
  edit(config);
  try {
    prepareExperiment(config);
  } catch (error) {
    if (error instanceof InputError) return { field: error.field, message: error.message };
    throw error;
  }
  assert.unreachable('the config was accepted');
  return { field: '', message: '' };
}

function rejects(edit: (config: Record<string, Loose>) => void, field: string, message: RegExp): void {
  const error = rejection(edit);
  assert.is(error.field, field, error.message);
  assert.match(error.message, message);
  assert.ok(error.message.startsWith(`${field}: `), error.message);
}

test('every preset passes the schema and the CPU-side checks, full and quick', () => {
  assert.equal(PRESET_NAMES, [
    'init-scale',
    'sharpening-linear',
    'sharpening-teacher',
    'sharpening-mnist',
    'anisotropy-sweep',
    'sgd-vs-gd',
    'layer-balance',
    'depth',
  ]);
  for (const name of PRESET_NAMES) {
    const config = parseExperimentConfig(presetConfig(name));
    assert.is(config.name, name);
    assert.ok(config.quick, `${name} has a quick form`);
    const full = validateExperiment(config);
    const quick = applyQuick(config);
    assert.is(quick.quick, undefined);
    const quickGroups = validateExperiment(quick);
    assert.ok(full.length > 0 && quickGroups.length > 0);
    // The quick form is smaller: fewer total replica-steps.
    const work = (c: typeof config) =>
      resolveGroups(c).reduce((sum, g) => sum + g.train.steps * g.seeds * g.train.batchSize, 0);
    assert.ok(work(quick) < work(config), `${name}: quick form is cheaper`);
    // Re-parsing a resolved config (what results.json stores) gives it back unchanged.
    assert.equal(parseExperimentConfig(JSON.parse(JSON.stringify(quick))), quick);
  }
});

test('presets follow the paper: linear panels show T and S, five seeds for Figs 2 and 5, models and losses of Fig 3', () => {
  for (const name of PRESET_NAMES) {
    const config = parseExperimentConfig(PRESETS[name]);
    for (const panel of config.panels) {
      const groups = config.groups.filter((g) =>
        (panel.groups ?? ['*']).some((pattern) => matchesPattern(g.name, pattern)),
      );
      const linear = groups.some((g) => resolveGroup(config, g.name).model.kind === 'deep-linear');
      if (linear) {
        assert.ok(panel.metrics.includes('sharpness'), `${name}/${panel.name} shows T`);
        assert.ok(panel.metrics.includes('fluctuation'), `${name}/${panel.name} shows S`);
      }
    }
  }
  for (const name of ['sharpening-linear', 'sharpening-teacher', 'sharpening-mnist']) {
    assert.is(parseExperimentConfig(PRESETS[name]).seeds, 5, name);
  }
  const linear = resolveGroup(parseExperimentConfig(PRESETS['sharpening-linear']), 'anisotropic');
  assert.equal(linear.train, { learningRate: 0.01, batchSize: 10, steps: 100_000 });
  assert.equal(linear.noiseCovariance, [
    [100, 0],
    [0, 0.1 * 0.1],
  ]);
  const sweep = parseExperimentConfig(PRESETS['anisotropy-sweep']);
  const kinds = new Set(resolveGroups(sweep).map((g) => `${g.model.kind}/${g.loss}`));
  for (const model of ['deep-linear', 'mlp', 'rnn', 'transformer'])
    for (const loss of ['mse', 'cross-entropy']) assert.ok(kinds.has(`${model}/${loss}`), `${model}/${loss}`);
  assert.equal(
    sweep.panels.map((p) => p.name),
    ['linear', 'mlp', 'rnn', 'transformer'],
  );
  for (const g of resolveGroups(sweep)) {
    const eigen = g.noiseCovariance.map((row, i) => row[i]);
    const kappa = Math.max(...eigen) / Math.min(...eigen);
    assert.ok(Math.abs(kappa / (g.value as number) - 1) < 1e-9, `${g.group}: κ(Σ_ε) = value`);
  }
});

test('rejects bad fields with the JSON path of the bad value', () => {
  rejects(
    (c) => (c.train.learningRate = 'fast'),
    'train.learningRate',
    /expected a number, got the string "fast"/,
  );
  rejects((c) => delete c.model, 'model', /missing/);
  rejects((c) => (c.train.batchSize = 0), 'train.batchSize', /positive/);
  rejects((c) => (c.seeds = -3), 'seeds', /positive/);
  rejects((c) => (c.seeds = 2.5), 'seeds', /integer/);
  rejects((c) => (c.train.learningRate = -0.1), 'train.learningRate', /must be positive/);
  rejects(
    (c) => (c.model = { kind: 'cnn', inputDim: 2 }),
    'model.kind',
    /unknown kind "cnn".*deep-linear, mlp, rnn, transformer/,
  );
  rejects((c) => (c.loss = 'hinge'), 'loss', /"mse", "cross-entropy"/);
  rejects((c) => (c.sedes = 3), 'sedes', /unknown field/);
  rejects((c) => (c.model.hidden[1] = -2), 'model.hidden[1]', /positive/);
  rejects((c) => (c.data.V[1][0] = 'x'), 'data.V[1][0]', /expected a number/);
  rejects((c) => (c.measure.metrics = ['sharpness', 'curvature']), 'measure.metrics[1]', /must be one of/);
  // λ_max at the nearest minimum needs the population loss (deep linear, linear teacher, MSE).
  rejects(
    (c) => {
      c.measure.metrics = ['sharpness', 'lambdaMaxAtMinimum'];
      c.model = { kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 2, activation: 'relu' };
    },
    'measure.metrics[1]',
    /needs the population loss.*mlp on linear-teacher/,
  );
  rejects((c) => (c.measure.lateWindow = 1.5), 'measure.lateWindow', /\(0, 1\]/);
  rejects(
    (c) => (c.measure.evaluationChunks = 1),
    'measure.evaluationChunks',
    /at least 2 \(a standard error/,
  );
  rejects((c) => (c.measure.evaluationChunks = 2.5), 'measure.evaluationChunks', /integer/);
  rejects(
    (c) => {
      c.measure.evaluationSamples = 4;
      c.measure.evaluationChunks = 8;
    },
    'measure.evaluationChunks',
    /is 8, more than the 4 evaluation samples/,
  );
  rejects((c) => (c.train.switchToGdAt = 500), 'train.switchToGdAt', /at most train\.steps \(100\)/);
});

test('label noise: exactly one of sigmaEps and noiseStd; Σ matrices must be covariances of the right size', () => {
  rejects(
    (c) => {
      c.data.sigmaEps = [
        [1, 0],
        [0, 1],
      ];
      c.groups[1].overrides = {};
    },
    'data.noiseStd',
    /either as sigmaEps or as noiseStd, not both/,
  );
  rejects(
    (c) => {
      delete c.data.noiseStd;
      c.groups[1].overrides = {};
    },
    'data.sigmaEps',
    /missing/,
  );
  // Not positive semi-definite (eigenvalues 3 and −1), written in a group's overrides.
  rejects(
    (c) => {
      c.groups[0].overrides = {
        data: {
          sigmaEps: [
            [1, 2],
            [2, 1],
          ],
        },
      };
    },
    'groups[0].overrides.data.sigmaEps',
    /positive definite.*smallest eigenvalue is -1/,
  );
  rejects(
    (c) =>
      (c.data.sigmaX = [
        [1, 0.5],
        [0.4, 1],
      ]),
    'data.sigmaX[1][0]',
    /symmetric/,
  );
  rejects(
    (c) =>
      (c.data.sigmaX = [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]),
    'data.sigmaX',
    /2×2/,
  );
  rejects(
    (c) => (c.groups[1].overrides.data.noiseStd = [1, 2, 3]),
    'groups[1].overrides.data.noiseStd',
    /2 entries/,
  );
  rejects((c) => (c.data.noiseStd = [1, 0]), 'data.noiseStd[1]', /positive/);
  rejects(
    (c) =>
      (c.groups[1].overrides.data.noiseRotation = [
        [1, 1],
        [0, 1],
      ]),
    'groups[1].overrides.data.noiseRotation',
    /orthogonal/,
  );
});

test('group overrides: bad fields are reported inside the override, base values name the group', () => {
  rejects(
    (c) => (c.groups[1].overrides.train = { learningRate: -1 }),
    'groups[1].overrides.train.learningRate',
    /must be positive/,
  );
  rejects((c) => (c.groups[1].overrides.trian = { steps: 5 }), 'groups[1].overrides.trian', /unknown field/);
  rejects((c) => (c.groups[0].overrides = { groups: [] }), 'groups[0].overrides.groups', /cannot override/);
  rejects(
    (c) => (c.groups[0].overrides = { model: { kind: 'rnn', inputDim: 2, hidden: 3, outputDim: 2 } }),
    'groups[0].overrides.model.sequenceLength',
    /missing/,
  );
  rejects(
    (c) =>
      (c.groups[0].overrides = {
        model: { kind: 'mlp', inputDim: 3, hidden: [4], outputDim: 2, activation: 'relu' },
      }),
    'groups[0].overrides.model.inputDim',
    /reads 3 features per row but the teacher V \(2×2\) gives 2/,
  );
  // The base value is fine alone but not with the group's steps: named at the override that caused it.
  rejects(
    (c) => {
      c.train.switchToGdAt = 80;
      c.groups[1].overrides.train = { steps: 50 };
      delete c.quick;
    },
    'groups[1].overrides.train.switchToGdAt',
    /at most train\.steps \(50\)/,
  );
  rejects((c) => (c.groups[1].name = 'iso'), 'groups[1].name', /also the name of groups\[0\]/);
  rejects(
    (c) => (c.groups[1].reference = 'isotropic'),
    'groups[1].reference',
    /no group is named 'isotropic'/,
  );
  rejects((c) => (c.groups[1].name = 'has space'), 'groups[1].name', /letters, digits/);
});

test('panels and quick: unknown metrics, unmatched groups, relative without reference, bad quick values', () => {
  rejects((c) => (c.panels[0].metrics = ['sharpnes']), 'panels[0].metrics[0]', /unknown metric 'sharpnes'/);
  rejects((c) => (c.panels[0].groups = ['mlp-*']), 'panels[0].groups[0]', /matches no group/);
  rejects((c) => (c.panels[0].metrics = ['lambdaMax']), 'panels[0].metrics[0]', /measures 'lambdaMax'/);
  rejects((c) => (c.panels[0].relative = true), 'panels[0].relative', /only final-vs-group/);
  rejects(
    (c) =>
      (c.panels[0] = {
        name: 'final',
        kind: 'final-vs-group',
        metrics: ['sharpness'],
        title: 't',
        relative: true,
      }),
    'panels[0].relative',
    /group 'iso' has no reference/,
  );
  rejects(
    (c) => {
      delete c.groups[0].value;
      c.panels[0].kind = 'final-vs-group';
    },
    'panels[0].kind',
    /no value/,
  );
  rejects((c) => (c.quick.train.steps = -5), 'quick.train.steps', /positive/);
  rejects(
    (c) => (c.quick.groups = [{ name: 'x', overrides: { data: { noiseStd: [1] } } }]),
    'quick.groups[0].overrides.data.noiseStd',
    /2 entries/,
  );
  // A base value that only the quick form breaks (its steps are below measure.every): named at the
  // base value, with a note that the quick form was being checked.
  rejects(
    (c) => (c.quick = { train: { steps: 5 } }),
    'measure.every',
    /at most train\.steps \(5\).*with quick applied/,
  );
  rejects((c) => (c.measure.every = 0), 'measure.every', /positive/);
});

test('resolveGroup deep-merges: objects by key, arrays replace, kind change replaces, null deletes, noise forms swap', () => {
  const config = parseExperimentConfig(base());
  const aniso = resolveGroup(config, 'aniso');
  assert.equal(aniso.data, {
    kind: 'linear-teacher',
    V: [
      [1, 0],
      [0, 1],
    ],
    noiseStd: [1, 0.1],
  });
  assert.equal(aniso.train, config.train);
  assert.is(aniso.measure.lateWindow, 0.2);
  assert.is(aniso.experiment, 'unit');
  assert.is(aniso.index, 1);
  assert.is(aniso.value, 100);
  assert.equal(resolveGroup(config, 1), aniso);
  assert.equal(resolveGroup(config, config.groups[1]), aniso);
  assert.throws(
    () => resolveGroup(config, 'nope'),
    (e: unknown) => e instanceof InputError && /iso, aniso/.test(e.message),
  );

  assert.equal(mergeOverrides({ a: { b: 1, c: [1, 2] }, d: 2 }, { a: { c: [3] }, d: null }), {
    a: { b: 1, c: [3] },
  });
  assert.equal(
    mergeOverrides(
      { kind: 'deep-linear', inputDim: 2, hidden: [2], outputDim: 2 },
      { kind: 'rnn', inputDim: 2, hidden: 4, outputDim: 2, sequenceLength: 3 },
    ),
    { kind: 'rnn', inputDim: 2, hidden: 4, outputDim: 2, sequenceLength: 3 },
  );
  assert.equal(mergeOverrides({ V: [[1]], noiseStd: [1], noiseRotation: [[1]] }, { sigmaEps: [[2]] }), {
    V: [[1]],
    sigmaEps: [[2]],
  });
  assert.equal(mergeOverrides({ V: [[1]], sigmaEps: [[2]] }, { noiseStd: [3] }), { V: [[1]], noiseStd: [3] });
  // Overrides are copied, never shared with the config.
  const merged = mergeOverrides({}, { a: { b: [1] } }) as { a: { b: number[] } };
  merged.a.b.push(2);
  assert.equal(config.groups[1].overrides, { data: { noiseStd: [1, 0.1] } });

  const quick = applyQuick(config);
  assert.is(quick.train.steps, 50);
  assert.is(quick.measure.every, 5);
  assert.is(resolveGroup(quick, 'aniso').train.steps, 50);
  assert.is(prepareExperiment(base(), { quick: true }).train.steps, 50);
});

test('noiseCovariance: Σ_ε = R diag(std²) Rᵀ, or sigmaEps as given', () => {
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  const R = [
    [c, -s],
    [s, c],
  ];
  const sigma = noiseCovariance({ kind: 'mnist', noiseStd: [2, 0.5], noiseRotation: R });
  // Hand-expanded: Σ_ij = Σ_k R_ik std_k² R_jk.
  const expected = [0, 1].map((i) => [0, 1].map((j) => R[i][0] * 4 * R[j][0] + R[i][1] * 0.25 * R[j][1]));
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 2; j++) assert.ok(Math.abs(sigma[i][j] - expected[i][j]) < 1e-12);
  // The trace and determinant are rotation invariant.
  assert.ok(Math.abs(sigma[0][0] + sigma[1][1] - 4.25) < 1e-12);
  assert.ok(Math.abs(sigma[0][0] * sigma[1][1] - sigma[0][1] * sigma[1][0] - 1) < 1e-12);
  assert.equal(
    noiseCovariance({
      kind: 'mnist',
      sigmaEps: [
        [2, 1],
        [1, 2],
      ],
    }),
    [
      [2, 1],
      [1, 2],
    ],
  );
});

test('group patterns and non-object input', () => {
  assert.ok(matchesPattern('mlp-mse-k10', 'mlp-*'));
  assert.ok(matchesPattern('mlp-mse-k10', '*-k10'));
  assert.not.ok(matchesPattern('rnn-mse-k10', 'mlp-*'));
  assert.not.ok(matchesPattern('mlpxmse', 'mlp.mse'), 'dots are literal');
  assert.throws(
    () => parseExperimentConfig([1, 2]),
    (e: unknown) => e instanceof InputError && e.field === 'config',
  );
});

test.run();
