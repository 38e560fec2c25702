// A GPU device lost mid-run (destroyed right after the first checkpoint, through the runner's
// SHARPNESS_LAB_FAULT hook), or an uncaptured GPU error at that point, ends `run` with exit code 1, a
// message saying what happened and how to resume, and the checkpoint on disk; `--resume` on a new
// device then gives exactly the files of an uninterrupted run.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('reliability: device loss');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const NAME = 'device-loss';
const EVERY = 50;
const CONFIG = {
  name: NAME,
  description: 'the device fails after the first checkpoint',
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
  train: { learningRate: 0.05, batchSize: 10, steps: 400 },
  measure: { every: EVERY, evaluationSamples: 32, metrics: ['loss', 'sharpness', 'fluctuation'] },
  seeds: 2,
  seed: 7,
  groups: [{ name: 'only' }],
  panels: [],
};

function cli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'runner', 'bin.mjs'), ...args], {
      cwd,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

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
      const experiment = join(work, out, NAME);
      // Only the checkpoint: no results of a half-finished run.
      assert.equal(
        readdirSync(experiment).filter((f) => !/\.tmp-/.test(f)),
        ['checkpoint.json'],
        `${fault}: files after the failure`,
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
