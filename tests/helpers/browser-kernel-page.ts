/**
 * Page entry of the browser kernel tests: loads the test files listed by the Node side (virtual
 * module `sharpness-lab:test-files`, each file's suites registered with browser-uvu.ts) and offers
 * jobs to list the suites, run their hooks and run one test at a time.
 */

import testFiles from 'sharpness-lab:test-files';
import { startPage } from '../../runner/browser/page-runtime.ts';
import { beginFile, type CollectedSuite, collected, selected } from './browser-uvu.ts';

export interface SuiteListing {
  file: string;
  name: string;
  tests: string[];
  skips: number;
}

export interface TestOutcome {
  ok: boolean;
  error?: { name: string; message: string; stack?: string; details?: string; operator?: string };
}

let loaded: Promise<CollectedSuite[]> | undefined;

async function load(): Promise<CollectedSuite[]> {
  for (const [file, importFile] of testFiles) {
    beginFile(file);
    await importFile();
  }
  return collected.filter((s) => s.tests.length + s.only.length > 0);
}

function suiteAt(index: number): Promise<CollectedSuite> {
  loaded ??= load();
  return loaded.then((suites) => {
    if (!suites[index]) throw new Error(`no suite ${index}`);
    return suites[index];
  });
}

function outcome(error: unknown): TestOutcome {
  if (!(error instanceof Error)) return { ok: false, error: { name: 'Error', message: String(error) } };
  const { details, operator } = error as { details?: unknown; operator?: unknown };
  return {
    ok: false,
    error: {
      name: error.name,
      message: error.message,
      stack: error.stack,
      ...(typeof details === 'string' ? { details } : {}),
      ...(typeof operator === 'string' ? { operator } : {}),
    },
  };
}

export const kernelTestJobs = {
  async listSuites(): Promise<SuiteListing[]> {
    loaded ??= load();
    const suites = await loaded;
    return suites.map((s) => ({
      file: s.file,
      name: s.name,
      tests: selected(s).map((t) => t.name),
      skips: s.skips + (s.only.length > 0 ? s.tests.length : 0),
    }));
  },
  async runHook(
    _context: unknown,
    params: { suite: number; hook: 'before' | 'after' },
  ): Promise<TestOutcome> {
    const s = await suiteAt(params.suite);
    try {
      for (const hook of params.hook === 'before' ? s.before : s.after) await hook(s.state);
      return { ok: true };
    } catch (error) {
      return outcome(error);
    }
  },
  async runTest(_context: unknown, params: { suite: number; test: number }): Promise<TestOutcome> {
    const s = await suiteAt(params.suite);
    const test = selected(s)[params.test];
    s.state.__test__ = test.name;
    try {
      for (const hook of s.beforeEach) await hook(s.state);
      await test.handler(s.state);
      for (const hook of s.afterEach) await hook(s.state);
      return { ok: true };
    } catch (error) {
      try {
        for (const hook of s.afterEach) await hook(s.state);
      } catch {}
      return outcome(error);
    } finally {
      s.state.__test__ = '';
    }
  },
};

export type KernelTestJobs = typeof kernelTestJobs;

startPage(kernelTestJobs);
