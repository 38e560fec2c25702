// Divergence is reported, never invented: a replica whose loss or weights leave the finite range (or
// whose loss passes the one divergence bound) is frozen at that log point — no later rows, no final
// value, recorded once — and no learning rate crashes the run or hands non-finite weights to the
// exact Hessian. Groups whose replicas all diverged say so instead of printing numbers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeExperimentReport } from '../runner/node/report.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { type Checkpoint, logSteps, runExperiment } from '../src/experiments/executor.ts';
import {
  describeDivergence,
  type ExperimentResults,
  finalValues,
  groupDivergences,
  type ResultRow,
} from '../src/experiments/results.ts';
import { DIVERGENCE_BOUND, isDivergedLoss } from '../src/train/trainer.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('reliability: divergence');
test.after(destroyTestEngine);

const STEPS = 200;
const METRICS = ['loss', 'sharpness', 'lambdaMax', 'fluctuation', 'layerCondition'] as const;
const CONFIG = deepLinearConfig({
  name: 'divergence',
  description: 'one healthy group, one that blows up at once, one that keeps blowing up',
  steps: STEPS,
  measure: { every: 50, evaluationSamples: 32, metrics: [...METRICS] },
  seeds: 2,
  seed: 4,
  groups: [
    { name: 'healthy' },
    // Same batch as 'healthy' (only init differs): weights of ~100 give a loss far above the bound.
    { name: 'wild', overrides: { init: { kind: 'normal', scale: 100 } } },
    // Depth 1 has a non-zero gradient at zero weights, so at η = 1e30 a frozen (zeroed) replica
    // diverges again at every log point: the double divergence that used to reach the Hessian as NaN.
    {
      name: 'relapsing',
      overrides: {
        model: { kind: 'deep-linear', inputDim: 2, hidden: [], outputDim: 2 },
        train: { learningRate: 1e30 },
      },
    },
  ],
  panels: [],
});
/** The log points of CONFIG (updates applied: 0 = the initialisation, …, STEPS). */
const LOG_POINTS = logSteps(prepareExperiment(CONFIG));
const LAST = LOG_POINTS[LOG_POINTS.length - 1];

test('the bound has one home; non-finite and beyond-bound losses diverge, finite ones below it do not', () => {
  assert.is(DIVERGENCE_BOUND, 1e6);
  for (const loss of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.0000001e6, 2.5e30])
    assert.ok(isDivergedLoss(loss), String(loss));
  for (const loss of [0, 1.472, 1e6, -1e6]) assert.not.ok(isDivergedLoss(loss), String(loss));
});

test('diverged replicas are frozen: recorded once, no rows from their step on, weights always finite', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const checkpoints: Checkpoint[] = [];
  const { rows, divergences } = await runExperiment(engine, config, {
    checkpoint: (state) => {
      checkpoints.push(state);
    },
  });
  // Each recorded once: 'wild' at the initialisation (log point 0: weights of ~100 put its loss far
  // above the bound before any update), 'relapsing' at the first log point after updates at η = 1e30.
  const [initialisation, firstAfterUpdates] = logSteps(config);
  assert.is(initialisation, 0);
  assert.equal(divergences.map((d) => `${d.group}/${d.replica}@${d.step}`).sort(), [
    `relapsing/0@${firstAfterUpdates}`,
    `relapsing/1@${firstAfterUpdates}`,
    `wild/0@${initialisation}`,
    `wild/1@${initialisation}`,
  ]);
  for (const d of divergences) assert.ok(isDivergedLoss(d.loss), `${d.group} loss ${d.loss}`);
  const replicaRows = (group: string) => rows.filter((r) => r.group === group && r.seed !== 'theory');
  assert.is(replicaRows('wild').length, 0, 'no row of a replica frozen at its first log point');
  // 'relapsing' was measured at the initialisation only (its loss finite there), then frozen.
  const relapsingRows = replicaRows('relapsing');
  assert.equal(
    relapsingRows.filter((r) => r.metric === 'loss').map((r) => r.seed),
    [0, 1],
  );
  assert.ok(relapsingRows.every((r) => r.step === initialisation && Number.isFinite(r.value)));
  // The healthy group, batched with 'wild', has all its rows, finite: seeds × log points × metrics
  // (layerCondition: one per layer, W1 and W2).
  const healthy = replicaRows('healthy');
  assert.is(healthy.length, 2 * logSteps(config).length * (METRICS.length - 1 + 2));
  assert.ok(
    healthy.every((r) => Number.isFinite(r.value)),
    'healthy values finite',
  );
  // Every state handed to the checkpoint (the weights the exact Hessian read) is finite, also after
  // 'relapsing' diverged again from its zeroed weights.
  assert.ok(checkpoints.length >= 6, `${checkpoints.length} checkpoints`);
  for (const state of checkpoints)
    assert.ok(
      state.params.every((values) => values.every((v) => Number.isFinite(v))),
      `batch ${state.batchIndex} step ${state.step}`,
    );
  const relapsing = checkpoints.filter((c) => c.batchIndex === 1);
  assert.ok(
    relapsing.every((c) => c.params.every((values) => values.every((v) => v === 0))),
    'frozen weights stay zeroed',
  );
});

/** Rows of one group: `seeds` replicas at CONFIG's log points, a replica stopping where it diverged. */
function groupRows(group: string, seeds: number, stopped: Record<number, number>): ResultRow[] {
  const rows: ResultRow[] = [];
  for (let seed = 0; seed < seeds; seed++)
    for (const step of LOG_POINTS) {
      if (stopped[seed] !== undefined && step >= stopped[seed]) break;
      rows.push({ experiment: 'd', group, seed, step, metric: 'sharpness', value: 10 + seed });
    }
  return rows;
}

test('final values leave out a replica that stopped; the report says "3 of 4 seeds" and "all … diverged"', async () => {
  // Seed 3 diverged at the last log point: its row at the log point before lies in the late window
  // (the later half) but it has no final value. Seeds 0–2 have 10, 11, 12: mean 11.
  const [, second, third] = LOG_POINTS;
  assert.ok(
    LOG_POINTS[LOG_POINTS.length - 2] >= LAST / 2,
    'the log point before the last is in the late window',
  );
  const rows = [...groupRows('partly', 4, { 3: LAST }), ...groupRows('gone', 2, { 0: second, 1: third })];
  const finals = finalValues(rows, 0.5);
  const partly = finals.find((f) => f.group === 'partly');
  assert.is(partly?.count, 3);
  assert.is(partly?.mean, 11);
  const config = prepareExperiment({
    ...CONFIG,
    name: 'd',
    seeds: 4,
    groups: [{ name: 'partly' }, { name: 'gone', overrides: { seeds: 2 } }],
  });
  const divergences = [
    { group: 'partly', replica: 3, step: LAST, loss: Number.NaN },
    { group: 'gone', replica: 0, step: second, loss: 3e7 },
    { group: 'gone', replica: 1, step: third, loss: Number.POSITIVE_INFINITY },
  ];
  const described = groupDivergences(config, divergences).map(describeDivergence);
  assert.equal(described, [
    `3 of 4 seeds; seed 3 diverged at step ${LAST}`,
    `all 2 seeds diverged (seed 0 diverged at step ${second}, seed 1 diverged at step ${third}): no results`,
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-divergence-'));
  try {
    const results: ExperimentResults = {
      experiment: 'd',
      adapter: 'test',
      startedAt: '2026-01-01T00:00:00.000Z',
      wallSeconds: 1,
      config,
      rows,
      divergences,
    };
    const written = await writeExperimentReport(dir, results);
    const html = readFileSync(join(written.dir, 'report.html'), 'utf8');
    assert.ok(html.includes(`3 of 4 seeds; seed 3 diverged at step ${LAST}`), 'partial count in the report');
    const goneRow = html
      .split('\n')
      .find((line) => line.startsWith('<tr><td>gone') && line.includes('colspan'));
    assert.ok(goneRow?.includes('all 2 seeds diverged'), goneRow);
    assert.not.ok(goneRow?.includes('±'), 'no numbers for a group whose replicas all diverged');
    const stored = JSON.parse(readFileSync(join(written.dir, 'results.json'), 'utf8'));
    assert.is(stored.divergences.length, 3, 'divergences recorded in results.json');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
