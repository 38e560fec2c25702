/**
 * The kernel test suite, run a second time in Chromium: the same test files (one copy of every test,
 * assertion and tolerance) are bundled for the page with a uvu-compatible collector and the page's
 * engine helper, and every page suite is mirrored here as a uvu suite whose tests run in the page one
 * by one. The last suite closes the browser and checks that no process or temporary folder is left.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../runner/browser/bundle.ts';
import { type BrowserSession, openBrowserSession } from '../runner/browser/host.ts';
import type { KernelTestJobs, TestOutcome } from './helpers/browser-kernel-page.ts';
import { leftovers } from './helpers/browser-leaks.ts';

const TESTS = join(REPO_ROOT, 'tests');
const HELPERS = join(TESTS, 'helpers');

/** The kernel tests: every tests/kernels-*.test.ts and the registry tests. */
const files = readdirSync(TESTS)
  .filter((f) => /^kernels-.*\.test\.ts$/.test(f) || f === 'registry.test.ts')
  .sort();

const testFilesModule = `export default [${files
  .map((f) => `[${JSON.stringify(`tests/${f}`)}, () => import(${JSON.stringify(join(TESTS, f))})]`)
  .join(',\n')}];`;

function toError(outcome: TestOutcome, mapStack: (text: string) => string): Error {
  const e = outcome.error ?? { name: 'Error', message: 'failed' };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the page's ANSI colours.
  const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '');
  const error = new Error(
    `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}${e.operator ? `  (${e.operator})` : ''}${e.details ? `\n${plain(e.details)}` : ''}`,
  );
  error.stack = `${error.message}\n${mapStack((e.stack ?? '').split('\n').slice(1).join('\n'))}`;
  return error;
}

let session: BrowserSession<KernelTestJobs> | undefined;
let startError: Error | undefined;
try {
  session = await openBrowserSession<KernelTestJobs>({
    entry: join(HELPERS, 'browser-kernel-page.ts'),
    replace: {
      uvu: join(HELPERS, 'browser-uvu.ts'),
      [join(HELPERS, 'gpu.ts')]: join(HELPERS, 'browser-gpu.ts'),
      [join(REPO_ROOT, 'runner', 'node', 'shaders.ts')]: join(REPO_ROOT, 'runner', 'browser', 'shaders.ts'),
    },
    modules: { 'sharpness-lab:test-files': testFilesModule },
    log: () => {},
  });
} catch (error) {
  startError = error as Error;
}

if (session) {
  const page = session;
  const listing = await page.run('listSuites', undefined);
  for (const [index, s] of listing.entries()) {
    const test = suite(`browser ${s.file.replace(/^tests\//, '')}: ${s.name}`);
    test.before(async () => {
      const outcome = await page.run('runHook', { suite: index, hook: 'before' });
      if (!outcome.ok) throw toError(outcome, page.mapStack);
    });
    test.after(async () => {
      const outcome = await page.run('runHook', { suite: index, hook: 'after' });
      if (!outcome.ok) throw toError(outcome, page.mapStack);
    });
    for (const [number, name] of s.tests.entries()) {
      test(name, async () => {
        const outcome = await page.run('runTest', { suite: index, test: number });
        if (!outcome.ok) throw toError(outcome, page.mapStack);
      });
    }
    for (let i = 0; i < s.skips; i++) test.skip(`skipped ${i}`, () => {});
    test.run();
  }
}

const teardown = suite('browser teardown');
teardown('Chromium started with WebGPU and the kernel test files', () => {
  if (startError) throw startError;
  assert.ok(session);
  assert.ok(files.includes('kernels-matmul.test.ts') && files.includes('registry.test.ts'), files.join());
});
teardown('closing the browser leaves no Chromium process, profile or bundle folder', async () => {
  if (!session) return;
  const { pid, profileDir } = session.chromium;
  await session.close();
  const { outdir, temporary } = session.bundle;
  assert.equal(leftovers({ pid, profileDir, folders: temporary ? [outdir] : [] }), []);
});
teardown.run();
