/**
 * A run's outputs as one set. Where a run writes is decided once, by `runOutput`: the result files
 * go first into a staging folder beside the final one (live files during the run; the whole set at
 * the end), which `commitStaged` then renames into place, so a crash or a full disk leaves either
 * the previous complete set or the new one, never a mix; the checkpoint and anything else in the
 * final folder (shard folders, the user's own files) are carried over. An exclusive lock file beside
 * the folder keeps two runs from writing it at once; a lock whose process is gone is taken over.
 *
 *   DIR/NAME/                  the committed set (config.json, results.csv, results.json, groups.csv, SVGs and Vega-Lite specs,
 *                              report.html, weights.safetensors) and checkpoint.json while a run is unfinished
 *   DIR/.NAME.staging/         the set being written (incomplete: discarded by the next run)
 *   DIR/.NAME.ready/           a complete set being committed (finished by the next run if a crash
 *                              interrupted the commit)
 *   DIR/.NAME.lock             pid of the run writing DIR/NAME
 * For one shard, NAME is NAME/shard-i-of-n.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { canonicalJson, firstDifference } from '../../src/experiments/checkpoint.ts';
import { type ExperimentConfig, formatPath } from '../../src/experiments/config.ts';
import type { ShardSpec } from '../../src/experiments/results.ts';
import { cleanupOnExit, isProcessAlive } from '../browser/cleanup.ts';

/** Every place one run writes. */
export interface RunOutput {
  /** The committed set: DIR/NAME or DIR/NAME/shard-i-of-n. */
  dir: string;
  /** Where the set is written before the commit (and live files during the run). */
  staging: string;
  /** A complete staged set whose commit has begun. */
  ready: string;
  /** The previous set while the commit swaps it out. */
  previous: string;
  lock: string;
  checkpoint: string;
}

/** Where a run of experiment `name` (one shard of it, or all replicas) writes, under `out`. */
export function runOutput(out: string, name: string, shard?: ShardSpec): RunOutput {
  const dir = shard ? join(out, name, `shard-${shard.index}-of-${shard.count}`) : join(out, name);
  const beside = (suffix: string) => join(dirname(dir), `.${basename(dir)}.${suffix}`);
  return {
    dir,
    staging: beside('staging'),
    ready: beside('ready'),
    previous: beside('previous'),
    lock: beside('lock'),
    checkpoint: join(dir, 'checkpoint.json'),
  };
}

/** Files that belong to a result set (everything else in the folder is carried over by a commit). */
export function isSetFile(name: string): boolean {
  return /^(config\.json|results\.csv|results\.json|groups\.csv|report\.html|weights\.safetensors|[^/]+\.svg|[^/]+\.vl\.json)$/.test(
    name,
  );
}

/**
 * Finishes a commit a crash interrupted (a `.ready` set is complete: it goes into place) and
 * discards an incomplete staging folder. Idempotent; call it under the lock.
 */
export function recoverOutput(output: RunOutput): void {
  if (existsSync(output.ready)) swapIn(output);
  rmSync(output.previous, { recursive: true, force: true });
  rmSync(output.staging, { recursive: true, force: true });
}

/** A fresh, empty staging folder (the previous one, if any, was an unfinished run's). */
export function prepareStaging(output: RunOutput): string {
  rmSync(output.staging, { recursive: true, force: true });
  mkdirSync(output.staging, { recursive: true });
  return output.staging;
}

/** Moves the staged set into place as one: staging → ready (complete), then ready swaps with dir. */
export function commitStaged(output: RunOutput): void {
  renameSync(output.staging, output.ready);
  swapIn(output);
}

function swapIn(output: RunOutput): void {
  if (existsSync(output.dir)) {
    // Carry the checkpoint, shard folders and the user's own files into the new set first.
    for (const name of readdirSync(output.dir))
      if (!isSetFile(name) && !existsSync(join(output.ready, name)))
        renameSync(join(output.dir, name), join(output.ready, name));
    rmSync(output.previous, { recursive: true, force: true });
    renameSync(output.dir, output.previous);
  }
  mkdirSync(dirname(output.dir), { recursive: true });
  renameSync(output.ready, output.dir);
  rmSync(output.previous, { recursive: true, force: true });
}

/** The pid holding the folder's lock, if that process is alive. */
function lockHolder(output: RunOutput): number | undefined {
  let holder: number;
  try {
    holder = Number.parseInt(readFileSync(output.lock, 'utf8'), 10);
  } catch {
    return undefined;
  }
  return Number.isInteger(holder) && holder > 0 && holder !== process.pid && isProcessAlive(holder)
    ? holder
    : undefined;
}

function lockedError(output: RunOutput, holder: number): InputError {
  return new InputError(
    '--out',
    `${output.dir} is being written by another run (pid ${holder}, lock ${output.lock}); wait for it to finish or use another --out`,
  );
}

/** Refuses, before any work, a folder a live run holds the lock of (read only; see `acquireLock`). */
export function checkNotLocked(output: RunOutput): void {
  const holder = lockHolder(output);
  if (holder !== undefined) throw lockedError(output, holder);
}

/**
 * Takes the exclusive lock on the run's folder (creating its parent): a live holder is bad input
 * naming its pid; a lock left by a dead process is taken over. Returns the release function (also
 * run if the process exits or is signalled first).
 */
export function acquireLock(output: RunOutput): () => void {
  mkdirSync(dirname(output.lock), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(output.lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error;
      const holder = lockHolder(output);
      if (holder !== undefined) throw lockedError(output, holder);
      rmSync(output.lock, { force: true }); // stale: its process is gone
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    unregister();
    try {
      if (Number.parseInt(readFileSync(output.lock, 'utf8'), 10) === process.pid)
        rmSync(output.lock, { force: true });
    } catch {}
  };
  const unregister = cleanupOnExit(release);
  return release;
}

/**
 * Refuses (as bad input naming --overwrite) to replace finished results of a different config in
 * the run's folder, unless `overwrite`. Unreadable results count as different.
 */
export function checkOverwrite(output: RunOutput, config: ExperimentConfig, overwrite: boolean): void {
  if (overwrite) return;
  const file = join(output.dir, 'results.json');
  if (!existsSync(file) || !statSync(file).isFile()) return;
  let stored: unknown;
  try {
    stored = (JSON.parse(readFileSync(file, 'utf8')) as { config?: unknown }).config;
  } catch {
    stored = undefined;
  }
  if (stored !== undefined && canonicalJson(stored) === canonicalJson(config)) return;
  const difference = stored === undefined ? undefined : firstDifference(stored, config);
  const what = difference
    ? `${formatPath(difference.path)} is ${JSON.stringify(difference.now) ?? 'absent'} now but ${JSON.stringify(difference.was) ?? 'absent'} there`
    : 'its results.json is unreadable';
  throw new InputError(
    '--overwrite',
    `${output.dir} holds finished results of a different config (${what}); give --overwrite to replace them, or another --out`,
  );
}
