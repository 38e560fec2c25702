// A run killed with SIGKILL right after its first checkpoint leaves only complete files, and
// `run … --resume` then writes exactly the files of an uninterrupted run (counter-based RNG).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runOutput } from '../runner/node/output-set.ts';
import { fromCsv } from '../src/experiments/results.ts';
import { startCli } from './helpers/cli.ts';
import { deepLinearConfig } from './helpers/configs.ts';

const test = suite('reliability: SIGKILL and resume');

const NAME = 'resume-after-kill';
const STEPS = 4000;
const EVERY = 100;
const CONFIG = deepLinearConfig({
  name: NAME,
  description: 'killed mid-run and resumed',
  steps: STEPS,
  measure: {
    every: EVERY,
    evaluationSamples: 32,
    metrics: ['loss', 'sharpness', 'lambdaMax', 'fluctuation'],
  },
  seeds: 2,
  seed: 11,
  groups: [
    { name: 'anisotropic', reference: 'isotropic' },
    { name: 'isotropic', overrides: { data: { noiseStd: [1, 1] } } },
  ],
  panels: [{ name: 'sharpness', kind: 'timeseries', metrics: ['sharpness'], title: 'T' }],
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('SIGKILL after the first checkpoint, then --resume, gives the files of an uninterrupted run', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-resume-'));
  try {
    writeFileSync(join(work, 'c.json'), JSON.stringify(CONFIG));
    const output = runOutput(join(work, 'killed'), NAME);
    const experiment = output.dir;
    const checkpoint = output.checkpoint;
    const killed = startCli(['run', 'c.json', '--out', 'killed'], work);
    let exited = false;
    void killed.done.then(() => {
      exited = true;
    });
    // Poll for the first checkpoint (written by rename, so it is complete once it exists).
    const deadline = Date.now() + 120_000;
    while (!existsSync(checkpoint) && !exited && Date.now() < deadline) await sleep(5);
    assert.ok(existsSync(checkpoint), 'no checkpoint appeared');
    killed.child.kill('SIGKILL');
    const outcome = await killed.done;
    assert.is(outcome.signal, 'SIGKILL', 'the run ended before it could be killed');

    // Only complete files: the checkpoint parses and names a log point; in the staging folder the
    // live data files of that log point or a later one (results.json marked in progress); anything
    // else is a temporary (NAME.tmp-PID-N) that a rename never published.
    const published = (dir: string) =>
      readdirSync(dir)
        .filter((f) => !/\.tmp-\d+-\d+$/.test(f))
        .sort();
    assert.equal(published(experiment), ['checkpoint.json'], 'no result set is committed before the end');
    assert.equal(
      published(output.staging),
      ['config.json', 'groups.csv', 'results.csv', 'results.json'],
      `unexpected live files after the kill: ${readdirSync(output.staging).join(', ')}`,
    );
    const state = JSON.parse(readFileSync(checkpoint, 'utf8'));
    assert.is(state.experiment, NAME);
    assert.ok(
      state.step % EVERY === 0 && state.step > 0 && state.step < STEPS,
      `checkpoint at step ${state.step}`,
    );
    const live = JSON.parse(readFileSync(join(output.staging, 'results.json'), 'utf8'));
    assert.is(live.inProgress, true, 'the live results.json says the run is in progress');
    const liveSteps = live.rows
      .filter((r: { seed: unknown }) => r.seed !== 'theory')
      .map((r: { step: number }) => r.step);
    assert.ok(
      Math.min(...liveSteps) === 0 && Math.max(...liveSteps) >= state.step,
      'live rows from step 0 to the checkpoint',
    );
    assert.is(fromCsv(readFileSync(join(output.staging, 'results.csv'), 'utf8')).length, live.rows.length);

    const resumed = await startCli(['run', 'c.json', '--out', 'killed', '--resume'], work).done;
    assert.is(resumed.code, 0, resumed.stderr);
    assert.not.ok(existsSync(checkpoint), 'the checkpoint is removed once the run completes');
    assert.ok(
      readdirSync(experiment).every((f) => !/\.tmp-/.test(f)),
      'temporaries left by the kill are cleaned up',
    );
    assert.not.ok(existsSync(output.staging), 'the staging folder is committed');
    // The resumed run continues the clock of the killed one (read from its live results.json).
    const finished = JSON.parse(readFileSync(join(experiment, 'results.json'), 'utf8'));
    assert.is(finished.inProgress, undefined);
    assert.is(finished.startedAt, live.startedAt, 'startedAt of the run that was killed');
    assert.ok(
      finished.wallSeconds > live.wallSeconds,
      `${finished.wallSeconds} s after ${live.wallSeconds} s`,
    );

    const whole = await startCli(['run', 'c.json', '--out', 'whole'], work).done;
    assert.is(whole.code, 0, whole.stderr);
    const read = (dir: string, file: string) => readFileSync(join(work, dir, NAME, file), 'utf8');
    const csv = read('killed', 'results.csv');
    // 2 groups × 2 seeds × 40 log points × 4 metrics, plus theory and relativeSharpness rows.
    assert.ok(csv.split('\r\n').length > 2 * 2 * (STEPS / EVERY) * 4, 'results.csv holds every log point');
    assert.is(csv, read('whole', 'results.csv'), 'results.csv equals the uninterrupted run');
    assert.is(read('killed', 'config.json'), read('whole', 'config.json'));
    const rows = (dir: string) => JSON.parse(read(dir, 'results.json')).rows;
    assert.equal(rows('killed'), rows('whole'), 'results.json rows equal the uninterrupted run');
    assert.is(read('killed', 'sharpness.svg'), read('whole', 'sharpness.svg'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
