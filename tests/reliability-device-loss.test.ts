// A GPU device lost mid-run (destroyed right after the first checkpoint, through the runner's
// SHARPNESS_LAB_FAULT hook), or an uncaptured GPU error at that point, ends `run` with exit code 1, a
// message saying what happened and how to resume, and the checkpoint on disk; `--resume` on a new
// device then gives exactly the files of an uninterrupted run.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runOutput } from '../runner/node/output-set.ts';
import { runCli } from './helpers/cli.ts';
import { deepLinearConfig } from './helpers/configs.ts';

const test = suite('reliability: device loss');

const NAME = 'device-loss';
const EVERY = 50;
const CONFIG = deepLinearConfig({
  name: NAME,
  description: 'the device fails after the first checkpoint',
  steps: 400,
  measure: { every: EVERY, evaluationSamples: 32, metrics: ['loss', 'sharpness', 'fluctuation'] },
  seeds: 2,
  seed: 7,
  groups: [{ name: 'only' }],
  panels: [],
});

const cli = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  runCli(args, { cwd, env, timeoutMs: 300_000 });

const FAULTS: [string, RegExp][] = [
  ['device-lost-after-checkpoint', /GPU device lost/],
  ['gpu-error-after-checkpoint', /GPU error: /],
];

test('a lost device or GPU error exits 1 with the checkpoint kept; --resume completes equal to an uninterrupted run', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-device-loss-'));
  try {
    writeFileSync(join(work, 'c.json'), JSON.stringify(CONFIG));
    const whole = await cli(['run', 'c.json', '--out', 'whole'], work);
    assert.is(whole.code, 0, whole.stderr);
    const expected = readFileSync(join(work, 'whole', NAME, 'results.csv'), 'utf8');
    for (const [fault, message] of FAULTS) {
      const out = fault;
      const failed = await cli(['run', 'c.json', '--out', out], work, { SHARPNESS_LAB_FAULT: fault });
      assert.is(failed.code, 1, `${fault}: exit code\n${failed.stderr}`);
      assert.match(failed.stderr, message);
      assert.match(failed.stderr, /checkpoint .* is kept; continue .*--resume/);
      const output = runOutput(join(work, out), NAME);
      const experiment = output.dir;
      const listed = (dir: string) =>
        readdirSync(dir)
          .filter((f) => !/\.tmp-/.test(f))
          .sort();
      // Only the checkpoint: no results of a half-finished run in the experiment folder; the live data
      // files written at that log point stay in the run's staging folder.
      assert.equal(listed(experiment), ['checkpoint.json'], `${fault}: files after the failure`);
      assert.equal(
        listed(output.staging),
        ['config.json', 'groups.csv', 'results.csv', 'results.json'],
        `${fault}: live files after the failure`,
      );
      // The state saved before the fault is kept; nothing computed after it was saved.
      const state = JSON.parse(readFileSync(join(experiment, 'checkpoint.json'), 'utf8'));
      assert.is(state.step, EVERY, `${fault}: the checkpoint is the one written before the fault`);

      const resumed = await cli(['run', 'c.json', '--out', out, '--resume'], work);
      assert.is(resumed.code, 0, `${fault}: resume\n${resumed.stderr}`);
      assert.not.ok(existsSync(join(experiment, 'checkpoint.json')));
      assert.is(readFileSync(join(experiment, 'results.csv'), 'utf8'), expected, `${fault}: results`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
