/**
 * What the CLI commands call for `--backend browser`: the same work as the Node backend, run in the
 * page, with results returned in the Node backend's shapes so the commands print them unchanged.
 */
import { InputError } from '../../src/errors.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import type { ParsedArgs } from '../args.ts';
import { deviceOptions } from '../commands/device-flags.ts';
import { createNodeEngine } from '../node/engine.ts';
import { type BrowserHostOptions, runBrowserJob } from './host.ts';
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
