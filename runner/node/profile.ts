/**
 * `--profile` and `--profile-trace FILE` for the Node commands (run, bench): record every launch with
 * the engine's profiler, print the per-kernel table on stderr at the end (stdout stays the command's
 * own output, e.g. bench --json), and write the Chrome trace.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { chromeTrace, formatProfileTable } from '../../src/profile/format.ts';
import type { Engine } from '../../src/tensor/engine.ts';
import type { FlagSpec, ParsedArgs } from '../args.ts';

export const PROFILE_FLAGS: FlagSpec[] = [
  {
    name: 'profile',
    kind: 'boolean',
    help: 'time every kernel launch (GPU timestamps, else wall clock) and print a per-kernel table on stderr',
  },
  {
    name: 'profile-trace',
    kind: 'string',
    help: 'also write the launches as Chrome trace JSON (chrome://tracing, ui.perfetto.dev)',
  },
];

export interface ProfileRequest {
  table: boolean;
  tracePath?: string;
}

/** What the flags ask for, or undefined when profiling is off. */
export function profileRequest(args: ParsedArgs): ProfileRequest | undefined {
  const tracePath = args.flags['profile-trace'] as string | undefined;
  if (tracePath === '') throw new InputError('--profile-trace', 'needs a file name');
  if (!args.flags.profile && tracePath === undefined) return undefined;
  if (args.flags.backend === 'browser')
    throw new InputError('--profile', 'profiling runs on the Node backend only; drop --backend browser');
  return { table: args.flags.profile === true, tracePath };
}

/** Writes a file through a temporary sibling and a rename, so readers never see half of it. */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path) || '.', { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** Starts recording when asked; returns the function that stops, prints and writes at the end. */
export function startProfile(engine: Engine, request: ProfileRequest | undefined): () => Promise<void> {
  if (!request) return async () => {};
  engine.profiler.reset();
  engine.profiler.start();
  return async () => {
    engine.profiler.stop();
    const report = await engine.profiler.report();
    if (request.table || !request.tracePath) process.stderr.write(`\n${formatProfileTable(report)}\n`);
    if (request.tracePath) {
      const adapter = engine.context.adapterInfo;
      const trace = chromeTrace(engine.profiler.events, report.clock, {
        adapter: `${adapter.description || adapter.device} (${adapter.vendor}/${adapter.architecture})`,
      });
      writeFileAtomic(request.tracePath, JSON.stringify(trace));
      process.stderr.write(`profile: ${report.launches} launches written to ${request.tracePath}\n`);
    }
  };
}
