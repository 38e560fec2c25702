// Result rows: CSV header and RFC 4180 quoting (and the round trip), per-step mean ± standard error
// over seeds, late-window final values and ratios to a reference group — each checked against numbers
// computed here, step by step, from the synthetic rows themselves — plus results.json parsing and the
// closed-form theory rows.
import { parse as parseCsv } from 'csv-parse/sync';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../src/errors.ts';
import { towardTheory } from '../src/experiments/captions.ts';
import {
  applyQuick,
  type PanelSpec,
  parseExperimentConfig,
  validateExperiment,
} from '../src/experiments/config.ts';
import { groupsCsv, PARAMETER_COLUMNS } from '../src/experiments/group-parameters.ts';
import { MEASURED_LABEL, metricLabel, timeseriesValues } from '../src/experiments/plots.ts';
import { PRESET_NAMES, presetConfig } from '../src/experiments/presets/index.ts';
import {
  CSV_HEADER,
  finalValues,
  fromCsv,
  parseCsvRecords,
  parseResults,
  type ResultRow,
  relativeFinalValues,
  summarise,
  toCsv,
} from '../src/experiments/results.ts';
import { conditionNumber, theoryRows } from '../src/experiments/theory-rows.ts';
import { deepLinearTheory } from '../src/theory/deep-linear.ts';

/** Deterministic pseudo-random values in [0, 1). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Two groups × 4 seeds × steps 0, 10, …, 100 of two metrics, plus theory rows. */
function syntheticRows(): ResultRow[] {
  const random = lcg(42);
  const rows: ResultRow[] = [];
  for (const group of ['iso', 'aniso']) {
    for (let seed = 0; seed < 4; seed++) {
      for (let step = 0; step <= 100; step += 10) {
        for (const metric of ['sharpness', 'loss']) {
          const level = (group === 'iso' ? 10 : 30) * (metric === 'loss' ? 0.1 : 1);
          rows.push({
            experiment: 'e',
            group,
            seed,
            step,
            metric,
            value: level * (1 + step / 100) + random(),
          });
        }
      }
    }
    for (const step of [0, 100]) {
      rows.push({
        experiment: 'e',
        group,
        seed: 'theory',
        step,
        metric: 'sharpness',
        value: group === 'iso' ? 12 : 36,
      });
    }
  }
  return rows;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** s/√n with the n − 1 sample variance, spelt out. */
function standardError(values: number[]): number {
  const m = mean(values);
  let squares = 0;
  for (const v of values) squares += (v - m) * (v - m);
  return Math.sqrt(squares / (values.length - 1)) / Math.sqrt(values.length);
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test('CSV: exact header, RFC 4180 quoting, CRLF records, lossless round trip', () => {
  const rows: ResultRow[] = [
    { experiment: 'exp', group: 'plain', seed: 0, step: 10, metric: 'sharpness', value: 1.5 },
    { experiment: 'exp', group: 'a,b', seed: 1, step: 20, metric: 'say "hi"', value: -0.1 + 0.2 },
    { experiment: 'exp', group: 'two\nlines', seed: 'theory', step: 0, metric: 'loss', value: Number.NaN },
    { experiment: 'exp', group: 'inf', seed: 2, step: 5, metric: 'loss', value: Number.POSITIVE_INFINITY },
  ];
  const csv = toCsv(rows);
  const lines = csv.split('\r\n');
  assert.is(lines[0], 'experiment,group,seed,step,metric,value');
  assert.is(CSV_HEADER, 'experiment,group,seed,step,metric,value');
  assert.is(lines[1], 'exp,plain,0,10,sharpness,1.5');
  assert.is(lines[2], `exp,"a,b",1,20,"say ""hi""",${String(-0.1 + 0.2)}`);
  assert.ok(csv.includes('exp,"two\nlines",theory,0,loss,NaN\r\n'));
  assert.ok(csv.endsWith('exp,inf,2,5,loss,Infinity\r\n'));
  const back = fromCsv(csv);
  assert.is(back.length, rows.length);
  back.forEach((row, i) => {
    assert.equal({ ...row, value: 0 }, { ...rows[i], value: 0 });
    assert.ok(
      Object.is(row.value, rows[i].value) || (Number.isNaN(row.value) && Number.isNaN(rows[i].value)),
    );
  });
  assert.equal(parseCsvRecords('a,"b\r\nc",d\nx,,z'), [
    ['a', 'b\r\nc', 'd'],
    ['x', '', 'z'],
  ]);
  assert.throws(
    () => fromCsv('group,seed\n'),
    (e: unknown) => e instanceof InputError,
  );
  assert.is(toCsv([]), 'experiment,group,seed,step,metric,value\r\n');
});

test('summarise: per (group, metric, step) mean and standard error over seeds; theory apart', () => {
  const rows = syntheticRows();
  const summary = summarise(rows);
  // 2 groups × 2 metrics × 11 steps measured, plus 2 theory points per group.
  assert.is(summary.length, 2 * 2 * 11 + 2 * 2);
  for (const s of summary) {
    const values = rows
      .filter(
        (r) =>
          r.group === s.group &&
          r.metric === s.metric &&
          r.step === s.step &&
          (r.seed === 'theory') === s.theory,
      )
      .map((r) => r.value);
    assert.is(s.count, values.length);
    close(s.mean, mean(values), `${s.group}/${s.metric}/${s.step} mean`);
    if (s.theory) assert.is(s.standardError, 0);
    else close(s.standardError, standardError(values), `${s.group}/${s.metric}/${s.step} s.e.`);
  }
  // Order: groups and metrics as first seen, measured before theory, steps ascending.
  assert.equal(
    summary.slice(0, 3).map((s) => [s.group, s.metric, s.step]),
    [
      ['iso', 'sharpness', 0],
      ['iso', 'sharpness', 10],
      ['iso', 'sharpness', 20],
    ],
  );
  // Non-finite values (a diverged replica) are left out of the mean and the count.
  const withNaN = [
    ...rows,
    { experiment: 'e', group: 'iso', seed: 9, step: 0, metric: 'loss', value: Number.NaN },
  ];
  const point = summarise(withNaN).find((s) => s.group === 'iso' && s.metric === 'loss' && s.step === 0);
  assert.is(point?.count, 4);
});

test("timeseries values: the estimates' own s.e. of each seed mean, √(Σ s.e.²) / seeds, beside the seeds' band", () => {
  const rows = syntheticRows();
  const errors = new Map<string, number[]>();
  for (const r of rows.filter((r) => r.metric === 'sharpness' && r.seed !== 'theory')) {
    // A per-replica s.e. that differs by seed and step.
    const se = 0.1 + 0.01 * Number(r.seed) + r.step / 1000;
    rows.push({ ...r, metric: 'sharpnessStandardError', value: se });
    const key = `${r.group}/${r.step}`;
    errors.set(key, [...(errors.get(key) ?? []), se]);
  }
  const panel: PanelSpec = { name: 'p', kind: 'timeseries', metrics: ['sharpness', 'loss'], title: 'p' };
  const values = timeseriesValues(panel, rows);
  for (const v of values) {
    if (v.kind !== MEASURED_LABEL || v.metric !== metricLabel('sharpness')) {
      assert.is(v.estimateUpper, undefined, 'no band without StandardError rows (or for theory)');
      continue;
    }
    const se = errors.get(`${v.group}/${v.step}`) ?? [];
    const want = Math.sqrt(se.reduce((a, x) => a + x * x, 0)) / se.length;
    close((v.estimateUpper as number) - (v.mean as number), want, `${v.group}/${v.step} upper`);
    close((v.mean as number) - (v.estimateLower as number), want, `${v.group}/${v.step} lower`);
  }
  assert.ok(values.some((v) => v.estimateUpper !== undefined));
});

test('captions: a metric still moving beside its theory says how far it got and the steps the rest takes at its late rate', () => {
  // 50 of 258 after 100,000 steps, rising by 10 over the last 20,000: 208 / (10 / 20,000) = 416,000.
  assert.is(
    towardTheory(
      'T',
      { mean: 50, standardError: 1.2, theory: 258 },
      { mean: 10, standardError: 1 },
      20_000,
      100_000,
    ),
    " at 100,000 steps: 50 of T* = 258; at the late window's rate the rest takes about 416,000 more steps",
  );
  assert.is(
    towardTheory(
      'T',
      { mean: 300, standardError: 1, theory: 258 },
      { mean: 10, standardError: 1 },
      20_000,
      100_000,
    ),
    ' at 100,000 steps: 300 of T* = 258, moving away from it',
  );
  // Flat within 2 s.e., at the theory within 2 s.e., or no theory: nothing to add.
  assert.is(
    towardTheory('T', { mean: 50, standardError: 1, theory: 258 }, { mean: 1, standardError: 1 }, 1, 2),
    '',
  );
  assert.is(
    towardTheory('T', { mean: 257, standardError: 1, theory: 258 }, { mean: 9, standardError: 1 }, 1, 2),
    '',
  );
  assert.is(towardTheory('T', { mean: 50, standardError: 1 }, { mean: 9, standardError: 1 }, 1, 2), '');
});

test('finalValues: each seed averaged over the late window, then mean ± s.e. over seeds; theory value attached', () => {
  const rows = syntheticRows();
  for (const lateWindow of [0.2, 0.5, 1]) {
    const finals = finalValues(rows, lateWindow);
    assert.is(finals.length, 4);
    for (const f of finals) {
      // Logged steps 0 … 100: the window is the steps ≥ 100 − f·100.
      const from = 100 - lateWindow * 100;
      assert.equal(f.window, [from, 100]);
      const perSeed = [0, 1, 2, 3].map((seed) =>
        mean(
          rows
            .filter((r) => r.group === f.group && r.metric === f.metric && r.seed === seed && r.step >= from)
            .map((r) => r.value),
        ),
      );
      assert.is(f.count, 4);
      close(f.mean, mean(perSeed), `${f.group}/${f.metric} mean (window ${lateWindow})`);
      close(f.standardError, standardError(perSeed), `${f.group}/${f.metric} s.e.`);
      if (f.metric === 'sharpness') assert.is(f.theory, f.group === 'iso' ? 12 : 36);
      else assert.is(f.theory, undefined);
    }
  }
  // Per-group windows.
  const perGroup = finalValues(rows, (group) => (group === 'iso' ? 0.1 : 1));
  assert.equal(perGroup.find((f) => f.group === 'iso')?.window, [90, 100]);
  assert.equal(perGroup.find((f) => f.group === 'aniso')?.window, [0, 100]);
  assert.throws(
    () => finalValues(rows, 0),
    (e: unknown) => e instanceof InputError,
  );
});

test('relativeFinalValues: ratio to the reference group seed by seed, then mean ± s.e.; theory ratio', () => {
  const rows = syntheticRows();
  const references = { iso: 'iso', aniso: 'iso' };
  const relative = relativeFinalValues(rows, 0.3, references);
  const lateMean = (group: string, seed: number) =>
    mean(
      rows
        .filter((r) => r.group === group && r.metric === 'sharpness' && r.seed === seed && r.step >= 70)
        .map((r) => r.value),
    );
  const ratios = [0, 1, 2, 3].map((seed) => lateMean('aniso', seed) / lateMean('iso', seed));
  const aniso = relative.find((f) => f.group === 'aniso' && f.metric === 'sharpness');
  assert.ok(aniso);
  close(aniso.mean, mean(ratios), 'relative mean');
  close(aniso.standardError, standardError(ratios), 'relative s.e.');
  close(aniso.theory as number, 3, 'theory ratio');
  const iso = relative.find((f) => f.group === 'iso' && f.metric === 'sharpness');
  close(iso?.mean as number, 1, 'reference ÷ itself');
  assert.is(iso?.standardError, 0);
  assert.is(relativeFinalValues(rows, 0.3, {}).length, 0);
});

test('results.json: null values (JSON has no NaN) read back as NaN; bad files name the field', () => {
  const config = parseExperimentConfig(presetConfig('sgd-vs-gd'));
  const rows: ResultRow[] = [
    { experiment: 'sgd-vs-gd', group: 'sgd', seed: 0, step: 0, metric: 'loss', value: Number.NaN },
    { experiment: 'sgd-vs-gd', group: 'sgd', seed: 'theory', step: 0, metric: 'sharpness', value: 257.9 },
    {
      experiment: 'sgd-vs-gd',
      group: 'sgd',
      seed: 0,
      step: 9,
      metric: 'density',
      value: 0.5,
      eigenvalue: 2.5,
    },
  ];
  const text = JSON.stringify({
    experiment: 'sgd-vs-gd',
    adapter: 'test',
    startedAt: '2026-01-01T00:00:00.000Z',
    wallSeconds: 1,
    config,
    rows,
    divergences: [{ group: 'sgd', replica: 0, step: 0, loss: Number.POSITIVE_INFINITY }],
  });
  const results = parseResults(JSON.parse(text));
  assert.ok(Number.isNaN(results.rows[0].value));
  assert.is(results.rows[1].seed, 'theory');
  assert.is(results.rows[2].eigenvalue, 2.5, 'a density row keeps its eigenvalue');
  assert.ok(Number.isNaN(results.divergences[0].loss));
  assert.equal(results.config, config);
  const broken = JSON.parse(text);
  broken.rows[1].step = 'late';
  assert.throws(
    () => parseResults(broken),
    (e: unknown) => e instanceof InputError && e.field === 'results.json.rows[1].step',
  );
  const badConfig = JSON.parse(text);
  badConfig.config.train.steps = -1;
  assert.throws(
    () => parseResults(badConfig),
    (e: unknown) => e instanceof InputError && e.field === 'results.json.config.train.steps',
  );
});

test('theory rows: T*, S*, λ_max* and per-layer condition numbers of the closed-form minimum', () => {
  const config = parseExperimentConfig(presetConfig('layer-balance'));
  const [balanced, imbalanced] = validateExperiment(config);
  const rows = theoryRows(imbalanced, [0, 100]);
  const theory = deepLinearTheory({
    depth: 3,
    V: [
      [1, 0],
      [0, 1],
    ],
    sigmaEps: [
      [100, 0],
      [0, 0.01],
    ],
  });
  const at = (metric: string) => rows.filter((r) => r.metric === metric);
  assert.equal(
    at('sharpness').map((r) => [r.step, r.value, r.seed, r.group]),
    [
      [0, theory.sharpness, 'theory', 'imbalanced'],
      [100, theory.sharpness, 'theory', 'imbalanced'],
    ],
  );
  assert.is(at('fluctuation')[0].value, theory.fluctuation);
  assert.is(at('lambdaMax').length, 0, 'layer-balance does not measure λ_max');
  // λ_max* stands beside λ_max at the nearest minimum, never beside λ_max at SGD's iterate.
  const initScale = validateExperiment(parseExperimentConfig(presetConfig('init-scale')))[0];
  const lambdaRows = theoryRows(initScale, [0]).filter((r) => r.metric.startsWith('lambdaMax'));
  assert.equal(
    lambdaRows.map((r) => [r.metric, r.value]),
    [
      [
        'lambdaMaxAtMinimum',
        deepLinearTheory({
          depth: 3,
          V: initScale.resolved.data.kind === 'linear-teacher' ? initScale.resolved.data.V : [],
          sigmaEps: initScale.sigmaEps,
        }).lambdaMax,
      ],
    ],
  );
  for (const [i, name] of ['W1', 'W2', 'W3'].entries()) {
    assert.is(at(`layerCondition.${name}`)[0].value, conditionNumber(theory.weights[i]));
  }
  // Isotropic noise and V = I: the selected minimum is balanced, every layer perfectly conditioned.
  for (const row of theoryRows(balanced, [0]).filter((r) => r.metric.startsWith('layerCondition.')))
    close(row.value, 1, row.metric);
  // Condition number by hand for a diagonal matrix.
  close(
    conditionNumber([
      [3, 0],
      [0, 0.5],
    ]),
    6,
    'κ(diag(3, 0.5))',
  );
  // No closed form for nonlinear models.
  const teacher = validateExperiment(parseExperimentConfig(presetConfig('sharpening-teacher')));
  assert.is(theoryRows(teacher[0], [0]).length, 0);
});

test('groups.csv: every preset, full and quick, gives one row per group with every parameter column; hidden widths of an MLP and an RNN', () => {
  const kinds = new Set<string>();
  for (const name of PRESET_NAMES) {
    const full = parseExperimentConfig(presetConfig(name));
    for (const [form, config] of [
      ['full', full],
      ['quick', applyQuick(full)],
    ] as const) {
      const groups = validateExperiment(config);
      const records = parseCsv(groupsCsv(groups)) as string[][];
      assert.equal(records[0], ['group', ...PARAMETER_COLUMNS.map((c) => c.key)], `${name} ${form}`);
      assert.is(records.length, groups.length + 1, `${name} ${form}`);
      const hidden = records[0].indexOf('hidden');
      groups.forEach((g, i) => {
        assert.is(records[i + 1][0], g.resolved.group, `${name} ${form}`);
        const model = g.resolved.model;
        kinds.add(model.kind);
        const expected = 'hidden' in model ? [model.hidden].flat().join(' ') : '';
        assert.is(records[i + 1][hidden], expected, `${name} ${form} ${g.resolved.group}`);
      });
    }
  }
  assert.ok(kinds.has('rnn') && kinds.has('mlp'), 'the presets cover an RNN and an MLP');
});

test.run();
