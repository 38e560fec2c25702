/**
 * What the CLI commands call for `--backend browser`: the same work as the Node backend, run in the
 * page, with results returned in the Node backend's shapes so the commands print them unchanged.
 */
import type { BenchResult } from '../../bench/suite.ts';
import { InputError } from '../../src/errors.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import type { ParsedArgs } from '../args.ts';
import { deviceOptions } from '../commands/device-flags.ts';
import { createNodeEngine } from '../node/engine.ts';
import type { BenchPageJobs } from './bench-page.ts';
import { PAGE_BENCH_SUITE_NAMES } from './bench-suites.ts';
import { BENCH_PAGE_ENTRY } from './bundle.ts';
import { type BrowserHostOptions, type RunOptions, runBrowserJob, withBrowserEngine } from './host.ts';
import { type EngineJobs, engineJobs } from './jobs.ts';
import type { EngineJob, JobParams, JobProgress, JobResult } from './protocol.ts';

export const BROWSER_BACKEND = 'browser';

export function isBrowserBackend(args: ParsedArgs): boolean {
  return args.flags.backend === BROWSER_BACKEND;
}

/** The shared device flags, read for the browser: `--adapter` is Dawn's and has no meaning there. */
export function browserOptions(args: ParsedArgs, log?: (line: string) => void): BrowserHostOptions {
  if (args.flags.adapter !== undefined)
    throw new InputError(
      '--adapter',
      'is a Dawn option; with --backend browser Chromium picks the adapter (SHARPNESS_LAB_BROWSER_GPU=hardware|swiftshader chooses the flag set)',
    );
  return { requireHardware: args.flags['require-hardware'] === true, ...(log ? { log } : {}) };
}

/** `info --backend browser`: the adapter the page's engine gets, described like the Node one. */
export function browserInfo(args: ParsedArgs): Promise<AdapterDescription> {
  return runBrowserJob('info', undefined, browserOptions(args));
}

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
      `${unsupported.join(', ')} does not run in the browser yet (browser suites: ${PAGE_BENCH_SUITE_NAMES.join(', ')})`,
    );
  if (unsupported.length > 0) log(`bench: skipping ${unsupported.join(', ')} (Node only for now)`);
  const supported = suites.filter((name) => PAGE_BENCH_SUITE_NAMES.includes(name));
  return runBenchPageJob('bench', { suites: supported, minSeconds }, browserOptions(args, log));
}

/**
 * Runs one job of the bench command's page (BENCH_PAGE_ENTRY: the product's jobs plus the benchmark
 * jobs) in a fresh browser: how the bench command hands its jobs to the page.
 */
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

export interface EngineJobIO<Progress> {
  /** Structured progress, as the job reports it (log points of a training run, …). */
  onProgress?: (event: Progress) => void;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Runs a host-agnostic engine job (runner/browser/jobs.ts) on the backend the command's flags name:
 * in this process on a Dawn engine, or with `--backend browser` in a Chromium page. Same params,
 * same result type, same progress events either way; what the `run` command calls.
 */
export async function runEngineJob<N extends keyof EngineJobs & string>(
  args: ParsedArgs,
  name: N,
  params: JobParams<EngineJobs[N]>,
  io: EngineJobIO<JobProgress<EngineJobs[N]>> = {},
): Promise<JobResult<EngineJobs[N]>> {
  const log = io.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (isBrowserBackend(args)) {
    // The page runs the same function (page.ts wraps engineJobs): same params, result and progress.
    const onProgress = io.onProgress as ((event: unknown) => void) | undefined;
    const result = runBrowserJob(name, params as never, { ...browserOptions(args, log), onProgress });
    return result as unknown as Promise<JobResult<EngineJobs[N]>>;
  }
  const engine = await createNodeEngine({ ...deviceOptions(args), log });
  try {
    const job = engineJobs[name] as EngineJob;
    return await job(engine, params, { progress: (event) => io.onProgress?.(event), log });
  } finally {
    engine.destroy();
  }
}
