// The browser backend leaves nothing in TMPDIR: Chromium's own temporary files live inside the run's
// profile, which SIGINT/SIGTERM/SIGHUP remove (at launch and mid-run); after a SIGKILL of the parent,
// which no handler sees, the next run sweeps the dead run's profile and its browser.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { leftovers } from './helpers/browser-leaks.ts';

const test = suite('reliability: the browser backend leaves nothing');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What is in TMPDIR besides tsx's compile cache (tsx's, not ours), and live processes started there. */
function left(tmp: string): string[] {
  return [
    ...readdirSync(tmp)
      .filter((f) => !f.startsWith('tsx-'))
      .map((f) => `entry ${f}`),
    ...leftovers({ pid: -1, profileDir: tmp }).filter((l) => l.startsWith('process')),
  ];
}

/**
 * `info --backend browser` with the page job hanging, in a private TMPDIR; `signal` is sent at launch
 * (once the profile exists) or mid-run (once the page job waits). Resolves with the exit code.
 */
async function interrupted(
  tmp: string,
  signal: NodeJS.Signals,
  when: 'launch' | 'mid-run',
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(root, 'runner', 'bin.mjs'), 'info', '--backend', 'browser'], {
    cwd: root,
    env: { ...process.env, TMPDIR: tmp, SHARPNESS_LAB_BROWSER_FAULT: 'hang' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const closed = new Promise<number | null>((resolve) =>
    child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : null))),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  for (let i = 0; i < 2400; i++) {
    if (when === 'launch' && readdirSync(tmp).some((f) => f.startsWith('sharpness-lab-chromium-'))) break;
    if (when === 'mid-run' && stderr.includes('the page job is waiting')) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill(signal);
  const code = await closed;
  clearTimeout(killer);
  return { code, stderr };
}

for (const [signal, when, code] of [
  ['SIGTERM', 'launch', 143],
  ['SIGINT', 'mid-run', 130],
  ['SIGHUP', 'mid-run', 129],
] as const) {
  test(`${signal} ${when === 'launch' ? 'at launch' : 'mid-run'}: TMPDIR is empty afterwards`, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sharpness-lab-tmpdir-'));
    try {
      const run = await interrupted(tmp, signal, when);
      assert.is(run.code, code, run.stderr);
      assert.equal(left(tmp), []);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('SIGKILL of the parent mid-run: the next run sweeps the profile and the browser', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sharpness-lab-tmpdir-'));
  try {
    const run = await interrupted(tmp, 'SIGKILL', 'mid-run');
    assert.is(run.code, 128, run.stderr);
    const profiles = readdirSync(tmp).filter((f) => f.startsWith('sharpness-lab-chromium-'));
    assert.is(profiles.length, 1, 'the killed run left its profile (no handler sees SIGKILL)');
    // The next browser run, in the same TMPDIR, cleans up before it starts its own.
    const next = await new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        [join(root, 'runner', 'bin.mjs'), 'info', '--backend', 'browser'],
        {
          cwd: root,
          env: { ...process.env, TMPDIR: tmp },
          stdio: 'ignore',
        },
      );
      child.on('close', resolve);
    });
    assert.is(next, 0);
    assert.equal(left(tmp), []);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
