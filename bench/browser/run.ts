/**
 * The bench command's page, Node side: bundles bench/browser/page.ts (the product's engine jobs plus
 * the benchmark jobs) and runs its jobs in a fresh Chromium through the product's browser host. The
 * product page (`run`, `info`) never contains benchmark code.
 */
import { fileURLToPath } from 'node:url';
import type { ParsedArgs } from '../../runner/args.ts';
import { browserOptions } from '../../runner/browser/commands.ts';
import { type BrowserHostOptions, type RunOptions, withBrowserEngine } from '../../runner/browser/host.ts';
import type { JobParams, JobProgress, JobResult } from '../../runner/browser/protocol.ts';
import { InputError } from '../../src/errors.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import type { BenchResult } from '../suite.ts';
import type { BenchPageJobs } from './page.ts';
import { PAGE_BENCH_SUITE_NAMES } from './suites.ts';

/** The bench page's entry module, bundled in place of the product page (runner/browser/page.ts). */
export const BENCH_PAGE_ENTRY = fileURLToPath(new URL('./page.ts', import.meta.url));

/**
 * `bench --backend browser`: the suites run in the page; results as the Node suites return them.
 * Named suites that do not run in the page are an input error; without names, those are skipped.
 */
export async function browserBench(
  args: ParsedArgs,
  suites: string[],
  minSeconds: number,
  log: (line: string) => void,
): Promise<{ adapter: AdapterDescription; suites: { name: string; results: BenchResult[] }[] }> {
  const unsupported = suites.filter((name) => !PAGE_BENCH_SUITE_NAMES.includes(name));
  if (unsupported.length > 0 && args.positional.length > 0)
    throw new InputError(
      'suite',
      `${unsupported.join(', ')} does not run in the browser (browser suites: ${PAGE_BENCH_SUITE_NAMES.join(', ')})`,
    );
  if (unsupported.length > 0) log(`bench: skipping ${unsupported.join(', ')} (Node only)`);
  const supported = suites.filter((name) => PAGE_BENCH_SUITE_NAMES.includes(name));
  return runBenchPageJob('bench', { suites: supported, minSeconds }, browserOptions(args, log));
}

/** Runs one job of the bench page in a fresh browser: how the bench command hands its jobs to the page. */
export function runBenchPageJob<N extends keyof BenchPageJobs & string>(
  name: N,
  params: JobParams<BenchPageJobs[N]>,
  options: BrowserHostOptions & RunOptions<JobProgress<BenchPageJobs[N]>> = {},
): Promise<JobResult<BenchPageJobs[N]>> {
  return withBrowserEngine<JobResult<BenchPageJobs[N]>, BenchPageJobs>(
    (session) => session.run(name, params, options),
    { ...options, entry: BENCH_PAGE_ENTRY },
  );
}
