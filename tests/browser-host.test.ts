/**
 * The browser host end to end, in Chromium: parity of a seeded training job between the Node and the
 * browser backends, progress streaming, errors crossing back (InputError stays an input error), and
 * every failure path of the CLI (`info --backend browser` with an injected fault): a clear message,
 * exit code 1, and no Chromium process or temporary folder left, also after SIGINT/SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../runner/browser/bundle.ts';
import { runEngineJob } from '../runner/browser/commands.ts';
import { BrowserRunError, openBrowserSession } from '../runner/browser/host.ts';
import type { DeepLinearSgdParams, DeepLinearSgdProgress } from '../runner/browser/jobs.ts';
import { InputError } from '../src/errors.ts';
import { leftovers } from './helpers/browser-leaks.ts';

const test = suite('browser host (Chromium)');

/** Parity tolerance of the issue: node and browser results equal within 1e-4 relative. */
const RELATIVE = 1e-4;

const PARAMS: DeepLinearSgdParams = {
  V: [
    [1, 0.5],
    [-0.3, 2],
  ],
  sigmaX: [
    [2, 0.6],
    [0.6, 1],
  ],
  sigmaEps: [
    [0.5, 0],
    [0, 0.05],
  ],
  hidden: [3, 3],
  initScale: 0.5,
  replicas: 8,
  learningRate: 0.02,
  batchSize: 16,
  steps: 300,
  seed: 11,
  logEvery: 100,
};

function worstRelative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const scale = Math.max(Math.abs(a[i]), Math.abs(b[i]));
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Number.POSITIVE_INFINITY;
    if (scale > 0) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  }
  return worst;
}

test('parity: seeded replica-batched SGD, --backend node vs --backend browser (300 fused steps, 100 general-path steps)', async () => {
  const paths = ['fused', 'general'] as const;
  /** The general path (autodiff tape, one submit per step) costs ~30 ms a step on SwiftShader. */
  const steps = { fused: 300, general: 100 };
  const onNode = { positional: [], flags: {} };
  const onBrowser = { positional: [], flags: { backend: 'browser' } };
  const quiet = () => {};
  const node = [];
  const browser = [];
  const progress: DeepLinearSgdProgress[][] = [[], []];
  for (const [i, path] of paths.entries()) {
    // What the `run` command calls: the same job on either backend.
    const params = { ...PARAMS, path, steps: steps[path] };
    node.push(await runEngineJob(onNode, 'train-deep-linear', params, { log: quiet }));
    const onProgress = (p: DeepLinearSgdProgress) => progress[i].push(p);
    browser.push(await runEngineJob(onBrowser, 'train-deep-linear', params, { log: quiet, onProgress }));
  }
  for (const [i, path] of paths.entries()) {
    assert.equal(browser[i].shapes, node[i].shapes);
    assert.is(browser[i].weights.length, 3);
    for (const [layer, w] of node[i].weights.entries()) {
      assert.instance(browser[i].weights[layer], Float32Array);
      const worst = worstRelative(browser[i].weights[layer], w);
      assert.ok(worst <= RELATIVE, `${path} W${layer + 1}: worst relative difference ${worst}`);
    }
    // Progress streamed before the result: every log point (updates applied: 0, every 100, the end),
    // in order, equal to the returned log.
    assert.equal(
      progress[i].map((p) => p.step),
      path === 'fused' ? [0, 100, 200, 300] : [0, 100],
    );
    assert.equal(
      progress[i].map((p) => Array.from(p.loss)),
      browser[i].log.map((p) => Array.from(p.loss)),
    );
    for (const [k, entry] of node[i].log.entries()) {
      const worst = worstRelative(browser[i].log[k].loss, entry.loss);
      assert.ok(worst <= RELATIVE, `${path} loss at step ${entry.step}: ${worst}`);
    }
    // Training did something: the loss fell from the initialisation towards the noise floor.
    assert.ok(
      node[i].log.at(-1)!.loss.every((l) => l < 1),
      `${path}: ${node[i].log.at(-1)!.loss}`,
    );
  }
});

test('an InputError thrown in the page comes back as an InputError naming the field; a timeout ends the session', async () => {
  const session = await openBrowserSession({ log: () => {}, fault: undefined });
  const { pid, profileDir } = session.chromium;
  try {
    await session.run('train-deep-linear', {
      ...PARAMS,
      sigmaEps: [
        [1, 2],
        [2, 1],
      ],
    });
    assert.unreachable('a Σ_ε that is not positive definite was accepted');
  } catch (error) {
    assert.instance(error, InputError);
    assert.is((error as InputError).field, 'sigmaEps');
  } finally {
    await session.close();
  }
  assert.equal(
    leftovers({ pid, profileDir, folders: session.bundle.temporary ? [session.bundle.outdir] : [] }),
    [],
  );

  const hanging = await openBrowserSession({ log: () => {}, fault: 'hang' });
  try {
    await hanging.run('info', undefined, { timeoutMs: 500 });
    assert.unreachable('a hanging job finished');
  } catch (error) {
    assert.instance(error, BrowserRunError);
    assert.is((error as BrowserRunError).kind, 'timeout');
    assert.match((error as Error).message, /job 'info' did not finish within 0\.5 s/);
  } finally {
    await hanging.close();
  }
  assert.equal(
    leftovers({ ...hanging.chromium, folders: hanging.bundle.temporary ? [hanging.bundle.outdir] : [] }),
    [],
  );
});

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Everything our run created under its private TMPDIR, and processes started from there. */
  left: string[];
}

/**
 * `sharpness-lab ARGS` with a private TMPDIR (so its profile and bundle folders are easy to find),
 * optionally signalled once Chromium is up. Returns what it printed and what it left behind.
 */
async function cli(args: string[], env: Record<string, string>, signal?: NodeJS.Signals): Promise<CliRun> {
  const tmp = mkdtempSync(join(tmpdir(), 'sharpness-lab-cli-test-'));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'runner', 'bin.mjs'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, sig) => resolve([code, sig])),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  if (signal) {
    // SIGTERM as soon as Chromium's profile exists (mid-launch); SIGINT once the page job is waiting.
    for (let i = 0; i < 600; i++) {
      if (signal === 'SIGTERM' && readdirSync(tmp).some((f) => f.startsWith('sharpness-lab-chromium-')))
        break;
      if (signal === 'SIGINT' && stderr.includes('the page job is waiting')) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    child.kill(signal);
  }
  const [code, sig] = await exited;
  clearTimeout(killer);
  const left = [
    ...readdirSync(tmp)
      .filter((f) => f.startsWith('sharpness-lab-')) // (tsx keeps its compile cache there too)
      .map((f) => `folder ${f}`),
    ...leftovers({ pid: -1, profileDir: tmp }).filter((l) => l.startsWith('process')),
  ];
  rmSync(tmp, { recursive: true, force: true });
  return { code, signal: sig, stdout, stderr, left };
}

test('info --backend browser prints the page adapter in the Node backend format', async () => {
  const browser = await cli(['info', '--backend', 'browser', '--json'], {});
  assert.is(browser.code, 0, browser.stderr);
  assert.equal(browser.left, []);
  const node = await cli(['info', '--json'], {});
  assert.is(node.code, 0, node.stderr);
  const b = JSON.parse(browser.stdout);
  const n = JSON.parse(node.stdout);
  assert.equal(Object.keys(b), Object.keys(n));
  assert.match(b.host, /^chromium \d+ \(puppeteer\)$/);
  assert.is(b.vendor, n.vendor);
  assert.is(b.architecture, n.architecture);
  assert.ok(b.features.includes('timestamp-query'));
  assert.ok(b.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20, JSON.stringify(b.limits));
  const table = await cli(['info', '--backend', 'browser'], {});
  assert.match(table.stdout, /^vendor {8}google\n/);
  assert.match(table.stdout, /\nhost {10}chromium \d+ \(puppeteer\)\n/);
  assert.match(table.stdout, /\n {2}maxComputeWorkgroupsPerDimension +\d+\n/);
});

const FAULTS: [fault: string, message: RegExp][] = [
  [
    'throw',
    /^sharpness-lab: in the page: injected fault: the job threw.*\n\s+at injectFault \(runner\/browser\/page-runtime\.ts:\d+:\d+\)/,
  ],
  ['uncaught', /^sharpness-lab: uncaught exception in the page: injected fault: uncaught exception/],
  ['rejection', /^sharpness-lab: uncaught exception in the page: injected fault: unhandled rejection/],
  [
    'console-error',
    /^sharpness-lab: page console error: injected fault: a console error .*\(at runner\/browser\/page-runtime\.ts:\d+:\d+\)/,
  ],
  ['crash', /^sharpness-lab: Chromium \(pid \d+\) exited unexpectedly \(killed by SIGKILL\)/],
  ['gpu-crash', /sharpness-lab: in the page: GPU device lost/],
];

for (const [fault, message] of FAULTS) {
  test(`a page failure (${fault}) ends the run with a clear error, exit code 1, nothing left behind`, async () => {
    const run = await cli(['info', '--backend', 'browser'], { SHARPNESS_LAB_BROWSER_FAULT: fault });
    assert.is(run.code, 1, run.stderr);
    assert.is(run.stdout, '');
    // (Lines the page logged and the fault's own announcement come first.)
    assert.match(run.stderr.replace(/^(chromium: |sharpness-lab: injected fault ').*\n/gm, ''), message);
    assert.equal(run.left, []);
  });
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  const when = signal === 'SIGTERM' ? 'while Chromium starts' : 'while the page runs a job';
  test(`${signal} ${when} closes Chromium and deletes its profile (exit ${code})`, async () => {
    const run = await cli(['info', '--backend', 'browser'], { SHARPNESS_LAB_BROWSER_FAULT: 'hang' }, signal);
    assert.is(run.code, code, `${run.code} ${run.signal} ${run.stderr}`);
    assert.equal(run.left, []);
  });
}

let started = 0;
test.before.each(() => {
  started = performance.now();
});
test.after.each((context) => {
  if (process.env.SHARPNESS_LAB_TEST_TIMES)
    console.log(`${((performance.now() - started) / 1000).toFixed(1)} s  ${context.__test__}`);
});

test.run();
