// Plots and reports: the Vega-Lite spec of a timeseries panel has a standard-error band and a dashed
// theory layer, final-vs-group panels have error bars; vega renders SVGs carrying the panel and axis
// titles; the report writer produces every file (atomically) and the index links them; the `config`
// and `report` commands; the progress bar on a TTY and in plain logs.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { experimentSegments, ProgressBar } from '../runner/node/progress.ts';
import { renderSvg } from '../runner/node/render.ts';
import {
  findExperiments,
  formatMeasurement,
  rerenderExperiment,
  writeExperimentReport,
  writeIndex,
} from '../runner/node/report.ts';
import {
  applyQuick,
  type ExperimentConfig,
  parseExperimentConfig,
  prepareExperiment,
  resolveGroups,
  validateExperiment,
} from '../src/experiments/config.ts';
import { planBatches } from '../src/experiments/executor.ts';
import { MEASURED_LABEL, metricLabel, panelSpec, THEORY_LABEL } from '../src/experiments/plots.ts';
import { presetConfig } from '../src/experiments/presets/index.ts';
import { CSV_HEADER, type ExperimentResults, type ResultRow } from '../src/experiments/results.ts';
import { runCli } from './helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-report-'));

type Layer = {
  name?: string;
  mark: Record<string, unknown>;
  encoding: Record<string, Record<string, unknown>>;
};

/** Synthetic rows for every group of `config`: a value relaxing toward a level, noise per seed, theory lines. */
function synthetic(config: ExperimentConfig): ResultRow[] {
  let state = 7;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const rows: ResultRow[] = [];
  for (const g of resolveGroups(config)) {
    const level = 10 * (1 + Math.log10(g.value ?? 1));
    const add = (seed: number | 'theory', step: number, metric: string, value: number) =>
      rows.push({ experiment: config.name, group: g.group, seed, step, metric, value });
    for (let seed = 0; seed < g.seeds; seed++) {
      for (let step = 0; step <= g.train.steps; step += g.measure.every) {
        const relax = 1 - 0.6 * Math.exp((-4 * step) / g.train.steps);
        for (const metric of g.measure.metrics) {
          if (metric === 'layerCondition') {
            for (const layer of ['W1', 'W2', 'W3'])
              add(seed, step, `layerCondition.${layer}`, 1 + relax * (1 + random()));
          } else {
            const scale = metric === 'fluctuation' ? 30 : metric === 'loss' ? 0.5 : 1;
            add(seed, step, metric, scale * level * relax * (1 + 0.1 * random()));
          }
        }
      }
    }
    for (const step of [0, g.train.steps]) {
      add('theory', step, 'sharpness', level);
      add('theory', step, 'fluctuation', 30 * level);
    }
  }
  return rows;
}

function results(config: ExperimentConfig, extra: Partial<ExperimentResults> = {}): ExperimentResults {
  return {
    experiment: config.name,
    adapter: 'Test adapter <SwiftShader> & co',
    startedAt: '2026-01-02T03:04:05.000Z',
    wallSeconds: 75.5,
    config,
    rows: synthetic(config),
    divergences: [],
    ...extra,
  };
}

const quickLinear = applyQuick(parseExperimentConfig(presetConfig('sharpening-linear')));

test('timeseries spec: mean line, ± s.e. band (area) and a dashed theory layer per group; log scale; facets per metric', () => {
  const rows = synthetic(quickLinear);
  const panel = { ...quickLinear.panels[0], metrics: ['sharpness'] };
  const spec = panelSpec(quickLinear, panel, rows) as {
    layer: Layer[];
    data: { values: Record<string, unknown>[] };
  };
  const band = spec.layer.find((l) => l.mark.type === 'area');
  assert.ok(band, 'band layer');
  assert.is(band.encoding.y.field, 'lower');
  assert.is(band.encoding.y2.field, 'upper');
  assert.ok((band.mark.opacity as number) < 0.5);
  const theory = spec.layer.find((l) => l.name === 'theory');
  assert.ok(theory, 'theory layer');
  assert.equal(theory.mark.strokeDash, [6, 4]);
  assert.is(theory.mark.type, 'line');
  assert.equal(spec.layer.find((l) => l.name === 'mean')?.encoding.color.field, 'group');
  assert.equal((band.encoding.y.scale as { type: string }).type, 'log');
  // The band is mean ± standard error of the seeds at a logged step.
  const step = rows.filter((r) => r.group === 'anisotropic' && r.seed !== 'theory').map((r) => r.step)[2];
  const point = spec.data.values.find(
    (v) => v.group === 'anisotropic' && v.step === step && v.kind === MEASURED_LABEL,
  ) as Record<string, number>;
  const values = rows
    .filter(
      (r) => r.group === 'anisotropic' && r.step === step && r.metric === 'sharpness' && r.seed !== 'theory',
    )
    .map((r) => r.value);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  assert.ok(Math.abs(point.mean - mean) < 1e-9);
  assert.ok(point.upper > point.mean && point.lower < point.mean);
  assert.ok(Math.abs(point.upper - point.mean - (point.mean - point.lower)) < 1e-9);
  assert.ok(spec.data.values.some((v) => v.kind === THEORY_LABEL));

  // Several metrics: one view each, side by side, over its metric's rows, its y axis titled with it.
  const views = (
    panelSpec(quickLinear, quickLinear.panels[0], rows) as {
      concat: { transform: { filter: { field: string; equal: string } }[]; layer: Layer[] }[];
    }
  ).concat;
  const labels = ['sharpness', 'fluctuation', 'lambdaMax', 'lambdaMaxAtMinimum'].map(metricLabel);
  assert.equal(
    views.map((v) => v.transform[0].filter.equal),
    labels,
  );
  views.forEach((v, i) => {
    assert.is(v.transform[0].filter.field, 'metric');
    assert.is(v.layer.find((l) => l.name === `mean_${i + 1}`)?.encoding.y.title, labels[i]);
  });
});

test('final-vs-group spec: error bars, points, dashed theory line, relative values, log x', () => {
  const sweep = applyQuick(parseExperimentConfig(presetConfig('anisotropy-sweep')));
  const panel = sweep.panels.find((p) => p.name === 'linear');
  assert.ok(panel);
  const spec = panelSpec(sweep, panel, synthetic(sweep)) as {
    layer?: Layer[];
    concat?: { layer: Layer[] }[];
    data: { values: Record<string, unknown>[] };
  };
  // One view, or one per metric (the first checked).
  const layers = spec.layer ?? spec.concat?.[0].layer ?? [];
  assert.ok(layers.some((l) => l.name?.startsWith('errorbars') && l.mark.type === 'rule' && l.encoding.y2));
  assert.equal(layers.find((l) => l.name?.startsWith('theory'))?.mark.strokeDash, [6, 4]);
  assert.equal((layers[0].encoding.x.scale as { type: string }).type, 'log');
  // Relative: the reference group (κ = 1) sits at exactly 1, and only linear groups are shown.
  const values = spec.data.values;
  assert.ok(values.length > 0);
  assert.ok(values.every((v) => String(v.group).startsWith('linear-')));
  for (const v of values.filter((v) => v.x === 1 && v.kind === MEASURED_LABEL)) assert.is(v.mean, 1);
  assert.equal(new Set(values.map((v) => v.series)), new Set(['MSE', 'cross-entropy']));
});

test('rendering: vega produces an SVG with the panel title, axis titles and facet headers', async () => {
  const rows = synthetic(quickLinear);
  const svg = await renderSvg(panelSpec(quickLinear, quickLinear.panels[0], rows));
  assert.ok(svg.startsWith('<svg'), svg.slice(0, 80));
  assert.ok(svg.includes(quickLinear.panels[0].title.replace(/&/g, '&amp;')), 'panel title');
  assert.ok(svg.includes('training step'), 'x axis title');
  assert.ok(svg.includes(metricLabel('fluctuation')), 'facet header');
  assert.ok(svg.includes('theory (closed form)'), 'dash legend');
  assert.ok(svg.includes('anisotropic'), 'group legend');

  const init = applyQuick(parseExperimentConfig(presetConfig('init-scale')));
  const final = init.panels.find((p) => p.kind === 'final-vs-group');
  assert.ok(final);
  const single = { ...final, metrics: ['sharpness'], y: 'final sharpness' };
  const finalSvg = await renderSvg(panelSpec(init, single, synthetic(init)));
  assert.ok(finalSvg.includes(final.title));
  assert.ok(finalSvg.includes(final.x as string), 'x axis title');
  assert.ok(finalSvg.includes('final sharpness'), 'y axis title');
});

test('report: every file written in DIR/NAME, nothing temporary left, HTML escaped; index links each report', async () => {
  const layers = applyQuick(parseExperimentConfig(presetConfig('layer-balance')));
  const divergence = { group: 'imbalanced', replica: 1, step: 400, loss: Number.NaN };
  const written = await writeExperimentReport(
    dir,
    results(layers, { divergences: [divergence], quick: true }),
  );
  await writeExperimentReport(dir, results(quickLinear));
  const out = join(dir, 'layer-balance');
  assert.is(written.dir, out);
  const files = readdirSync(out).sort();
  assert.equal(files, [
    'config.json',
    'groups.csv',
    'layers.svg',
    'layers.vl.json',
    'report.html',
    'results.csv',
    'results.json',
  ]);
  assert.equal(written.files.sort(), files);
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')), layers);
  assert.ok(readFileSync(join(out, 'results.csv'), 'utf8').startsWith(`${CSV_HEADER}\r\n`));
  const stored = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.equal(Object.keys(stored), [
    'experiment',
    'adapter',
    'startedAt',
    'wallSeconds',
    'quick',
    'config',
    'rows',
    'divergences',
  ]);
  assert.is(stored.rows.length, results(layers).rows.length);
  assert.is(stored.divergences[0].loss, null);
  const svg = readFileSync(join(out, 'layers.svg'), 'utf8');
  assert.ok(svg.includes('condition number κ(W2)'));
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes('<img src="layers.svg"'));
  assert.ok(html.includes('Test adapter &#60;SwiftShader&#62; &#38; co'), 'adapter, escaped');
  assert.ok(html.includes('1 min 16 s'), 'wall time');
  assert.ok(html.includes('Divergences') && html.includes('<td>imbalanced</td>'), 'divergences');
  assert.ok(html.includes(metricLabel('layerCondition.W3')), 'final-value table');
  assert.ok(html.includes('<details class="config">'), 'the config is collapsed');
  assert.ok(html.includes('theory '), 'theory in the table');
  assert.ok(html.includes('&#34;learningRate&#34;: 0.05'), 'config');
  assert.ok(html.includes(layers.description.slice(0, 40)), 'description');

  const index = writeIndex(dir);
  assert.equal(findExperiments(dir), ['layer-balance', 'sharpening-linear']);
  const indexHtml = readFileSync(index, 'utf8');
  assert.ok(indexHtml.includes('href="layer-balance/report.html"'));
  assert.ok(indexHtml.includes('href="sharpening-linear/report.html"'));
  const leftovers = [dir, out, join(dir, 'sharpening-linear')].flatMap((d) =>
    readdirSync(d).filter((f) => f.includes('.tmp-')),
  );
  assert.equal(leftovers, []);

  // Re-rendering from results.json alone reproduces the same SVG and report.
  rmSync(join(out, 'layers.svg'));
  rmSync(join(out, 'report.html'));
  await rerenderExperiment(out);
  assert.is(readFileSync(join(out, 'layers.svg'), 'utf8'), svg);
  assert.is(readFileSync(join(out, 'report.html'), 'utf8'), html);
});

test("report: a sample estimate's own s.e. rows go into the metric's final-value cell, not a column of their own", async () => {
  const teacher = applyQuick(parseExperimentConfig(presetConfig('sharpening-teacher')));
  const rows = synthetic(teacher);
  // Each seed's sharpness estimate carries its own s.e. (0.5 + seed) at every log point.
  const errorOf = (seed: number) => 0.5 + seed;
  for (const row of [...rows])
    if (row.metric === 'sharpness' && row.seed !== 'theory')
      rows.push({ ...row, metric: 'sharpnessStandardError', value: errorOf(row.seed) });
  const own = join(dir, 'estimates');
  await writeExperimentReport(own, { ...results(teacher), rows });
  const html = readFileSync(join(own, 'sharpening-teacher', 'report.html'), 'utf8');
  const table = html.slice(html.indexOf('<h2>Final values</h2>'), html.indexOf('<h2>Configuration</h2>'));
  assert.not.ok(table.includes('sharpnessStandardError</th>'), 'no column of its own');
  // The cell shows the seeds' mean of the estimates' s.e. (each constant over the late window).
  const seeds = resolveGroups(teacher)[0].seeds;
  const meanError = Array.from({ length: seeds }, (_, s) => errorOf(s)).reduce((a, b) => a + b, 0) / seeds;
  assert.ok(table.includes(`each seed's estimate ± ${meanError}`), `estimate s.e. ${meanError} in the cell`);
});

test('final values: s.e. to 2 digits and the mean to its decimal place; many metrics of few groups: a column per group', async () => {
  for (const [mean, error, text] of [
    [11.83, 0.4659, '11.83 ± 0.47'],
    [1193, 17.74, '1193 ± 18'],
    [1482, 146.7, '1480 ± 150'],
    [3.021, 0.003689, '3.0210 ± 0.0037'],
  ] as const)
    assert.is(formatMeasurement(mean, error), text);
  const own = join(dir, 'transposed');
  await writeExperimentReport(own, results(quickLinear));
  const html = readFileSync(join(own, 'sharpening-linear', 'report.html'), 'utf8');
  const table = html.slice(html.indexOf('<h2>Final values</h2>'), html.indexOf('<h2>Configuration</h2>'));
  const header = table.slice(table.indexOf('<thead>'), table.indexOf('</thead>'));
  assert.ok(header.includes('<th>isotropic</th>') && header.includes('<th>anisotropic</th>'), header);
  assert.ok(table.includes(`<th>${metricLabel('lambdaMaxAtMinimum')}</th>`), 'a row per metric');
});

test('config command prints a preset; an unknown name lists the presets (exit 2)', async () => {
  const full = await runCli(['config', 'depth']);
  assert.is(full.code, 0, full.stderr);
  assert.equal(JSON.parse(full.stdout), parseExperimentConfig(presetConfig('depth')));
  const unknown = await runCli(['config', 'fig9']);
  assert.is(unknown.code, 2);
  assert.is(unknown.stdout, '');
  assert.match(unknown.stderr, /unknown preset 'fig9'.*init-scale.*depth/);
});

test('report command re-renders every experiment and the index; a missing folder is an input error', async () => {
  const index = join(dir, 'index.html');
  rmSync(index);
  rmSync(join(dir, 'sharpening-linear', 'sharpening.svg'));
  writeFileSync(join(dir, 'not-an-experiment.txt'), 'x');
  const run = await runCli(['report', '--out', dir]);
  assert.is(run.code, 0, run.stderr);
  assert.ok(existsSync(index));
  assert.ok(existsSync(join(dir, 'sharpening-linear', 'sharpening.svg')));
  assert.match(run.stdout, /index of 2 experiments/);
  const missing = await runCli(['report', '--out', join(dir, 'nope')]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /--out: .* is not a folder/);
});

test('progress bar: one rewritten line on a TTY, throttled plain lines elsewhere', () => {
  let now = 0;
  const tty: string[] = [];
  const bar = new ProgressBar({
    total: 1000,
    label: 'demo',
    stream: { write: (t: string) => tty.push(t), isTTY: true, columns: 120 },
    now: () => now,
  });
  now = 2000;
  bar.update(250, 'group iso');
  assert.is(tty.length, 1);
  assert.ok(tty[0].startsWith('\r\x1b[2K['), 'rewrites the line');
  assert.match(tty[0], /demo +25\.0 % {2}250\/1000 steps {2}125 steps\/s {2}ETA 6 s {2}group iso/);
  now = 2050;
  bar.update(260);
  assert.is(tty.length, 1, 'redraws at most every 100 ms');
  now = 8000;
  bar.finish();
  assert.match(tty[tty.length - 2], /100\.0 %.*done in 8 s/);
  assert.is(tty[tty.length - 1], '\n');

  now = 0;
  const plain: string[] = [];
  const log = new ProgressBar({
    total: 100,
    stream: { write: (t: string) => plain.push(t) },
    now: () => now,
  });
  for (let step = 1; step <= 100; step++) {
    now = step * 200; // 20 s in all: lines at most every 5 s
    log.update(step);
  }
  log.finish();
  assert.ok(plain.length >= 4 && plain.length <= 6, `${plain.length} lines`);
  assert.ok(plain.every((line) => line.endsWith('\n') && !line.includes('\r')));
});

test('progress bar: rate and ETA follow the current segment, not the whole run', () => {
  let now = 0;
  const lines: string[] = [];
  const bar = new ProgressBar({
    total: 2000,
    stream: { write: (t: string) => lines.push(t) },
    plainIntervalMs: 0,
    now: () => now,
  });
  // Segment 0: 1000 steps at 1000 steps/s.
  now = 1000;
  bar.update(1000, 'fast', { id: 0, done: 1000 });
  assert.match(lines.at(-1) as string, /1000 steps\/s {2}ETA 1 s/);
  // Segment 1 runs at 10 steps/s: 100 steps in the 10 s since segment 0 ended.
  now = 11_000;
  bar.update(1100, 'slow', { id: 1, done: 100 });
  // 900 steps left at 10 steps/s (the run's average, 100 steps/s, would say 9 s).
  assert.match(lines.at(-1) as string, /10\.0 steps\/s {2}ETA 1 min 30 s {2}slow/);
});

test('progress bar: with segments, ETA extrapolates each later segment by its kind and weight', () => {
  let now = 0;
  const lines: string[] = [];
  // Kinds a and b; b's prior weight says a unit costs 100 of a's.
  const segments = [
    { units: 1000, kind: 'a', weight: 1 },
    { units: 1000, kind: 'b', weight: 100 },
    { units: 500, kind: 'a', weight: 2 },
  ];
  const bar = new ProgressBar({
    total: 2500,
    stream: { write: (t: string) => lines.push(t) },
    plainIntervalMs: 0,
    now: () => now,
    segments,
  });
  // Segment 0 at 1000 units/s (1 ms per weighted unit): 500 units left of it (0.5 s), segment 1
  // by the prior 1000 × 100 × 1 ms = 100 s, segment 2 (kind a, measured) 500 × 2 × 1 ms = 1 s.
  now = 500;
  bar.update(500, 'a', { id: 0, done: 500 });
  assert.match(lines.at(-1) as string, /ETA 1 min 42 s/);
  // Segment 1 is measured at 20 units/s: 900 units left (45 s), then segment 2 at kind a's rate (1 s),
  // not at segment 1's (which would say 500 / 20 = 25 s).
  now = 1000;
  bar.update(1000, 'a', { id: 0, done: 1000 });
  now = 1000 + 5000;
  bar.update(1100, 'b', { id: 1, done: 100 });
  assert.match(lines.at(-1) as string, /20\.0 steps\/s {2}ETA 46 s/);

  // A bar made at the first update (as the runner does) counts the first segment from `startedAt`.
  now = 2000;
  const late = new ProgressBar({
    total: 2500,
    stream: { write: (t: string) => lines.push(t) },
    plainIntervalMs: 0,
    now: () => now,
    segments,
    startedAt: 0,
  });
  late.update(500, 'a', { id: 0, done: 500 });
  assert.match(lines.at(-1) as string, /250 steps\/s/);
});

test('experiment segments: one per replica batch, the steps the executor counts, costlier models weigh more', () => {
  const config = prepareExperiment(presetConfig('anisotropy-sweep'), { quick: true });
  const segments = experimentSegments(config);
  const batches = planBatches(validateExperiment(config));
  assert.equal(
    segments.map((s) => s.units),
    batches.map((b) => b.members[0].group.resolved.train.steps),
  );
  const weightOf = (kind: string) =>
    Math.max(...segments.filter((s) => s.kind.startsWith(kind)).map((s) => s.weight));
  // Every quick batch trains fused, as the trainer runs them (tests/train.test.ts checks the kernels
  // the quick sweep's batches launch); the full sweep's RNN batches (teacher 100, batch 300) do not.
  assert.equal(
    segments.map((s) => s.kind.split(' ')[0]),
    batches.map(() => 'fused'),
  );
  assert.ok(weightOf('fused deep-linear') < weightOf('fused rnn'), 'RNN above the deep linear net');
  assert.ok(weightOf('fused rnn') < weightOf('fused transformer'), 'Transformer above the RNN');
  const full = experimentSegments(prepareExperiment(presetConfig('anisotropy-sweep'), { quick: false }));
  assert.equal(
    full
      .filter((s) => / (rnn|transformer) /.test(s.kind))
      .map((s) => s.kind.split(' ').slice(0, 2).join(' ')),
    ['general rnn', 'general rnn', 'fused transformer', 'fused transformer'],
  );
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
