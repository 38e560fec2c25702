// A run's files are one set: a full disk at any write leaves the previous complete set (and the
// checkpoint, with a one-line --resume hint), never a mix; two runs on one folder are refused while
// the first lives and a dead one's lock is taken over; Ctrl-C prints the --resume command; finished
// results of another config are not replaced without --overwrite. Real CLI, injected write failures.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULT_ENV, nodeExecutor, runAndReport } from '../runner/node/experiment.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('reliability: outputs as a set');
test.after(destroyTestEngine);

const NAME = 'outputs';
const config = (learningRate: number, steps = 300) => {
  const c = deepLinearConfig({
    name: NAME,
    description: 'written as one set',
    steps,
    measure: { every: 50, evaluationSamples: 32, metrics: ['loss', 'sharpness'] },
    seeds: 2,
    seed: 2,
    groups: [{ name: 'only' }],
    panels: [{ name: 'sharpness', kind: 'timeseries', metrics: ['sharpness'], title: 'T' }],
  });
  c.train.learningRate = learningRate;
  return c;
};
const SET = [
  'config.json',
  'groups.csv',
  'report.html',
  'results.csv',
  'results.json',
  'sharpness.svg',
  'sharpness.vl.json',
  'weights.safetensors',
];
/** The files also written live (into the staging folder) at log points, before the first checkpoint. */
const LIVE = ['config.json', 'groups.csv', 'results.csv', 'results.json'];

/** stderr lines that are neither the adapter notice, the staging notice nor the progress bar. */
const messages = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/SwiftShader|writing into|steps\/s|^\S+\s+[\d.]+ %/.test(l));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(path: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path) && Date.now() < deadline) await sleep(10);
  assert.ok(existsSync(path), `${path} never appeared`);
}

test('a full disk at each write leaves the previous complete set and a --resume hint', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-outputs-'));
  const out = join(work, 'out');
  const dir = join(out, NAME);
  try {
    const engine = await testEngine();
    const run = (learningRate: number, options: { resume?: boolean } = {}) => {
      const prepared = prepareExperiment(config(learningRate));
      return runAndReport(nodeExecutor(engine, prepared), prepared, {
        out,
        overwrite: true,
        resumeCommand: 'RESUME',
        ...options,
      });
    };
    await run(0.05);
    const previous = Object.fromEntries(SET.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
    for (const file of ['checkpoint.json', ...SET, 'index.html']) {
      process.env[FAULT_ENV] = `disk-full:${file}`;
      let message = '';
      try {
        await run(0.04);
      } catch (error) {
        assert.is((error as Error).name, 'OutputFailure', (error as Error).stack);
        message = (error as Error).message;
      } finally {
        delete process.env[FAULT_ENV];
      }
      assert.match(message, /ENOSPC/, file);
      if (file === 'checkpoint.json')
        assert.match(message, /cannot write the checkpoint .* no checkpoint was saved yet/);
      else if (LIVE.includes(file))
        assert.match(
          message,
          // Before this run's first checkpoint: an earlier failure's checkpoint may be on disk.
          /^cannot write the live results in .*\.staging \(ENOSPC: .*\); the run stopped; (no checkpoint was saved yet; run it again|the checkpoint .* is kept; continue with: RESUME)$/,
          `${file}: ${message}`,
        );
      else assert.match(message, /checkpoint .* is kept; continue with: RESUME$/, `${file}: ${message}`);
      // The previous set, whole; the index is written after the commit, so there the new set.
      const now = readdirSync(dir).sort();
      assert.equal(
        now.filter((f) => f !== 'checkpoint.json'),
        SET,
        `${file}: ${now}`,
      );
      const expected = file === 'index.html' ? 0.04 : 0.05;
      for (const f of ['config.json', 'results.json'])
        assert.ok(
          JSON.stringify(JSON.parse(readFileSync(join(dir, f), 'utf8'))).includes(
            `"learningRate":${expected}`,
          ),
          `${file}: ${f}`,
        );
      if (file !== 'index.html')
        for (const f of SET)
          assert.is(readFileSync(join(dir, f), 'utf8'), previous[f], `${file}: ${f} unchanged`);
      assert.ok(
        readdirSync(out).every((f) => !f.endsWith('.lock')),
        'lock released',
      );
    }
    // The last failure kept a checkpoint: resuming completes the new run.
    await run(0.04, { resume: true });
    assert.equal(readdirSync(dir).sort(), SET);
    assert.ok(readFileSync(join(dir, 'config.json'), 'utf8').includes('0.04'));
    assert.equal(readdirSync(out).sort(), ['index.html', NAME], 'no staging or lock left');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('CLI: a full disk is one line on stderr with the --resume command, exit 1, no stack', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-diskfull-'));
  try {
    writeFileSync(join(work, 'c.json'), JSON.stringify(config(0.05)));
    const failed = await runCli(['run', 'c.json', '--out', 'out'], {
      cwd: work,
      // Written only at the end (results.json is also written live, before any checkpoint).
      env: { [FAULT_ENV]: 'disk-full:report.html' },
    });
    assert.is(failed.code, 1, failed.stderr);
    const lines = messages(failed.stderr);
    assert.is(lines.length, 1, failed.stderr);
    assert.match(
      lines[0],
      /^sharpness-lab: cannot write the results \(ENOSPC: .* continue with: sharpness-lab run c\.json --out out --resume$/,
    );
    assert.not.match(failed.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('finished results of another config (a preset edited, same name) are kept unless --overwrite', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-overwrite-'));
  try {
    writeFileSync(join(work, 'a.json'), JSON.stringify(config(0.05, 100)));
    writeFileSync(join(work, 'b.json'), JSON.stringify(config(0.05, 150)));
    assert.is((await runCli(['run', 'a.json', '--out', 'out'], { cwd: work })).code, 0);
    const before = readFileSync(join(work, 'out', NAME, 'results.json'), 'utf8');
    const refused = await runCli(['run', 'b.json', '--out', 'out'], { cwd: work });
    assert.is(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /^sharpness-lab: --overwrite: .* holds finished results of a different config \(train\.steps is 150 now but 100 there\)/,
    );
    assert.not.match(refused.stderr, /SwiftShader/, 'refused before the GPU');
    assert.is(readFileSync(join(work, 'out', NAME, 'results.json'), 'utf8'), before);
    // The same config again is no overwrite of another run's results.
    assert.is((await runCli(['run', 'a.json', '--out', 'out'], { cwd: work })).code, 0);
    const replaced = await runCli(['run', 'b.json', '--out', 'out', '--overwrite'], { cwd: work });
    assert.is(replaced.code, 0, replaced.stderr);
    assert.match(readFileSync(join(work, 'out', NAME, 'config.json'), 'utf8'), /"steps": 150/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('two runs on one folder: the second is refused naming the pid; a dead run’s lock is taken over; Ctrl-C prints --resume', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-lock-'));
  try {
    writeFileSync(join(work, 'c.json'), JSON.stringify(config(0.05, 20_000)));
    const lock = join(work, 'out', `.${NAME}.lock`);
    const checkpoint = join(work, 'out', NAME, 'checkpoint.json');
    const first = startCli(['run', 'c.json', '--out', 'out'], work);
    await waitFor(lock);
    const second = await runCli(['run', 'c.json', '--out', 'out'], { cwd: work, timeoutMs: 60_000 });
    assert.is(second.code, 2, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(`^sharpness-lab: --out: .* is being written by another run \\(pid ${first.child.pid},`),
    );
    // SIGKILL leaves the lock of a dead process: the next run takes it over and is itself
    // interrupted with Ctrl-C after its first checkpoint.
    await waitFor(checkpoint);
    first.child.kill('SIGKILL');
    await first.done;
    assert.ok(existsSync(lock), 'SIGKILL left the lock');
    rmSync(checkpoint);
    const third = startCli(['run', 'c.json', '--out', 'out'], work);
    await waitFor(checkpoint);
    third.child.kill('SIGINT');
    const interrupted = await third.done;
    assert.is(interrupted.code, 130, interrupted.stderr);
    assert.match(
      interrupted.stderr,
      /sharpness-lab: interrupted; the checkpoint .*checkpoint\.json .* is kept; continue with: sharpness-lab run c\.json --out out --resume/,
    );
    assert.not.ok(existsSync(lock), 'the lock is released on Ctrl-C');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
