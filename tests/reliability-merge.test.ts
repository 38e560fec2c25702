// `merge` takes a shard only when its rows cover exactly its replicas × log points × metrics, once (a
// replica frozen as diverged ends at its recorded step); otherwise it exits 2 naming the shard,
// replica and step, and writes nothing. Shards are built here from the config (CPU only).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mergeShards } from '../runner/commands/merge.ts';
import { type ExperimentConfig, prepareExperiment } from '../src/experiments/config.ts';
import { logSteps } from '../src/experiments/executor.ts';
import type { Divergence, ExperimentResults, ResultRow } from '../src/experiments/results.ts';
import { runCli } from './helpers/cli.ts';

const test = suite('reliability: merge refuses incomplete shards');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// 2 groups (aniso, iso) × 3 seeds, 4 metrics, measured at the config's log points (0 included).
const BASE = JSON.parse(readFileSync(join(root, 'tests', 'fixtures', 'bad', 'base-config.json'), 'utf8'));
const CONFIG: ExperimentConfig = prepareExperiment(BASE);
const LOG_STEPS = logSteps({ train: CONFIG.train, measure: CONFIG.measure });
const [FIRST, SECOND] = LOG_STEPS;
const LAST = LOG_STEPS[LOG_STEPS.length - 1];
/** A log point in the middle of the run, and a later one where a replica diverges. */
const MIDDLE = LOG_STEPS[2];
const DIVERGED_AT = LOG_STEPS[3];
const METRICS = ['loss', 'sharpness', 'lambdaMax', 'fluctuation'];

/** Shard `index` of 2 (shard 0: aniso seeds 0–2, shard 1: iso seeds 0–2), complete, plus theory rows. */
function shardResults(
  index: number,
  divergences: Divergence[] = [],
): ExperimentResults & { shard: { index: number; count: number } } {
  const group = index === 0 ? 'aniso' : 'iso';
  const rows: ResultRow[] = [];
  for (let seed = 0; seed < 3; seed++) {
    const stop =
      divergences.find((d) => d.group === group && d.replica === seed)?.step ?? Number.POSITIVE_INFINITY;
    for (const step of LOG_STEPS)
      if (step < stop)
        for (const metric of METRICS)
          rows.push({ experiment: CONFIG.name, group, seed, step, metric, value: 1 + seed + step / 1000 });
  }
  rows.push({ experiment: CONFIG.name, group, seed: 'theory', step: 0, metric: 'sharpness', value: 2 });
  return {
    experiment: CONFIG.name,
    adapter: 'test',
    startedAt: '2026-01-01T00:00:00.000Z',
    wallSeconds: 1,
    config: CONFIG,
    rows,
    divergences,
    shard: { index, count: 2 },
  };
}

const shard = (index: number, results = shardResults(index)) => ({
  dir: `/sweep/${CONFIG.name}/shard-${index}-of-2`,
  results,
});

/** The InputError message of merging `second` after `first` (shard 0 as built by default). */
function refusal(
  results: ExperimentResults & { shard: { index: number; count: number } },
  first = shard(0),
): string {
  try {
    mergeShards([first, shard(1, results)]);
  } catch (error) {
    assert.is((error as Error).name, 'InputError');
    return (error as Error).message;
  }
  assert.unreachable('merged');
  return '';
}

const edit = (change: (rows: ResultRow[]) => ResultRow[]) => {
  const results = shardResults(1);
  return { ...results, rows: change(results.rows) };
};

test('complete shards merge; each kind of incomplete shard is refused naming shard, replica and step', () => {
  const merged = mergeShards([shard(0), shard(1)]);
  assert.is(
    merged.rows.filter((r) => r.seed !== 'theory' && r.metric !== 'relativeSharpness').length,
    2 * 3 * LOG_STEPS.length * METRICS.length,
  );
  const cases: [string, ExperimentResults & { shard: { index: number; count: number } }, RegExp][] = [
    [
      'one replica lost',
      edit((rows) => rows.filter((r) => r.seed !== 2)),
      new RegExp(`no row for group 'iso' seed 2 at step ${FIRST} \\(loss\\)`),
    ],
    [
      'last log point lost',
      edit((rows) => rows.filter((r) => r.step !== LAST)),
      new RegExp(`no row for group 'iso' seed 0 at step ${LAST}`),
    ],
    ['all rows lost', edit(() => []), new RegExp(`no row for group 'iso' seed 0 at step ${FIRST}`)],
    [
      'one metric lost',
      edit((rows) => rows.filter((r) => !(r.seed === 1 && r.step === MIDDLE && r.metric === 'fluctuation'))),
      new RegExp(`seed 1 at step ${MIDDLE} \\(fluctuation\\)`),
    ],
    [
      'rows twice',
      edit((rows) => [...rows, ...rows.slice(0, 4)]),
      new RegExp(`holds the row of group 'iso' seed 0 step ${FIRST} \\(loss\\) twice`),
    ],
    [
      'a row between log points',
      edit((rows) => [...rows, { ...rows[0], step: SECOND + 1 }]),
      new RegExp(`does not measure: group 'iso' seed 0 step ${SECOND + 1}`),
    ],
    [
      'the rows of a metric not configured (topEigenvalues)',
      edit((rows) => [...rows, { ...rows[0], metric: 'lambda1' }]),
      /does not measure: .*\(lambda1\)/,
    ],
    [
      'an unknown metric',
      edit((rows) => [...rows, { ...rows[0], metric: 'hessianNorm' }]),
      /does not measure: .*\(hessianNorm\)/,
    ],
    [
      'a diverged replica not recorded',
      {
        ...shardResults(1, [{ group: 'iso', replica: 1, step: DIVERGED_AT, loss: Number.NaN }]),
        divergences: [],
      },
      new RegExp(`no row for group 'iso' seed 1 at step ${DIVERGED_AT}`),
    ],
    [
      'rows after a recorded divergence',
      {
        ...shardResults(1),
        divergences: [{ group: 'iso', replica: 1, step: DIVERGED_AT, loss: Number.NaN }],
      },
      new RegExp(`does not measure: group 'iso' seed 1 step ${DIVERGED_AT}`),
    ],
  ];
  for (const [what, results, pattern] of cases) {
    const message = refusal(results);
    assert.match(message, /shard-1-of-2\/results\.json: /, what);
    assert.match(message, pattern, `${what}: ${message}`);
  }
  // Rows a route adds beside a configured metric (Hutchinson's standard error of sharpness) are kept.
  const withErrors = edit((rows) => [
    ...rows,
    ...rows.filter((r) => r.metric === 'sharpness').map((r) => ({ ...r, metric: 'sharpnessStandardError' })),
  ]);
  assert.ok(
    mergeShards([shard(0), shard(1, withErrors)]).rows.some((r) => r.metric === 'sharpnessStandardError'),
  );
  // A replica frozen as diverged, recorded in results.json, legitimately stops: the merge keeps it.
  const diverged = shardResults(1, [{ group: 'iso', replica: 1, step: DIVERGED_AT, loss: Number.NaN }]);
  const partial = mergeShards([shard(0), shard(1, diverged)]);
  assert.is(partial.divergences.length, 1);
  assert.not.ok(partial.rows.some((r) => r.group === 'iso' && r.seed === 1 && r.step >= DIVERGED_AT));
});

test('a density curve (rows at the end, one per eigenvalue) merges whole; a lost, repeated or early point is refused', () => {
  const config: ExperimentConfig = prepareExperiment({
    ...BASE,
    measure: { ...BASE.measure, metrics: [...BASE.measure.metrics, 'density'] },
  });
  const grid = [0, 0.5, 1];
  const withDensity = (index: number, change: (rows: ResultRow[]) => ResultRow[] = (rows) => rows) => {
    const results = shardResults(index);
    const group = index === 0 ? 'aniso' : 'iso';
    const curve = [0, 1, 2].flatMap((seed) =>
      grid.map((eigenvalue) => ({
        experiment: config.name,
        group,
        seed,
        step: LAST,
        metric: 'density',
        value: 1,
        eigenvalue,
      })),
    );
    return shard(index, { ...results, config, rows: change([...results.rows, ...curve]) });
  };
  const merged = mergeShards([withDensity(0), withDensity(1)]);
  assert.is(merged.rows.filter((r) => r.metric === 'density').length, 2 * 3 * grid.length);
  const refused = (change: (rows: ResultRow[]) => ResultRow[]) =>
    refusal(withDensity(1, change).results, withDensity(0));
  assert.match(
    refused((rows) => rows.filter((r) => !(r.metric === 'density' && r.seed === 2))),
    new RegExp(`no row for group 'iso' seed 2 at step ${LAST} \\(density\\)`),
  );
  assert.match(
    refused((rows) => [...rows, rows[rows.length - 1]]),
    /holds the row of group 'iso' seed 2 step \d+ \(density at λ = 1\) twice/,
  );
  assert.match(
    refused((rows) => [...rows, { ...rows[rows.length - 1], step: FIRST, eigenvalue: 7 }]),
    new RegExp(`does not measure: group 'iso' seed 2 step ${FIRST} \\(density`),
  );
});

test('CLI: an incomplete shard exits 2 naming it, writing nothing', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-merge-'));
  try {
    const write = (index: number, results: ExperimentResults) => {
      const dir = join(work, 'sweep', CONFIG.name, `shard-${index}-of-2`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'results.json'), JSON.stringify(results));
    };
    write(0, shardResults(0));
    write(
      1,
      edit((rows) => rows.filter((r) => r.step !== LAST)),
    );
    const before = readdirSync(join(work, 'sweep', CONFIG.name)).sort();
    const result = await runCli(['merge', 'sweep'], { cwd: work, timeoutMs: 60_000 });
    assert.is(result.code, 2, result.stderr);
    assert.is(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`shard-1-of-2/results\\.json: is incomplete: no row for group 'iso' seed 0 at step ${LAST}`),
    );
    assert.equal(readdirSync(join(work, 'sweep', CONFIG.name)).sort(), before, 'nothing written');
    assert.equal(readdirSync(join(work, 'sweep')), [CONFIG.name], 'no index.html');
    // Completed, the same shards merge.
    write(1, shardResults(1));
    const merged = await runCli(['merge', 'sweep'], { cwd: work, timeoutMs: 60_000 });
    assert.is(merged.code, 0, merged.stderr);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
