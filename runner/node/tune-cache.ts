/**
 * The tuning cache file for the Node host: where it lives, reading it for the engine (a missing file
 * is silence, a bad or foreign one one warning line) and writing it atomically after `tune`.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { GpuContext } from '../../src/gpu/context.ts';
import { loadTuning, type MatmulTuning } from '../../src/kernels/matmul.ts';
import { userCacheDir } from './optional.ts';

/** Overrides the cache path for every command; 'off' disables the cache. */
export const TUNE_CACHE_ENV = 'SHARPNESS_LAB_TUNE_CACHE';

/** $SHARPNESS_LAB_TUNE_CACHE, else $XDG_CACHE_HOME/sharpness-lab/tune.json, else ~/.cache/sharpness-lab/tune.json. */
export function defaultTuneCachePath(): string {
  const fromEnv = process.env[TUNE_CACHE_ENV];
  if (fromEnv) return fromEnv;
  return userCacheDir('tune.json');
}

/** The file's JSON, undefined when absent; throws with the reason when it cannot be parsed. */
export function readTuneCacheFile(path: string): unknown {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * The tuning for this device from `path` (default: defaultTuneCachePath()), or undefined. Never
 * throws: a corrupt, unreadable or foreign-adapter cache gives one line on `log` and the defaults.
 */
export function loadNodeTuning(
  context: GpuContext,
  path = defaultTuneCachePath(),
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): MatmulTuning | undefined {
  if (path === 'off') return undefined;
  let data: unknown;
  try {
    data = readTuneCacheFile(path);
  } catch (error) {
    log(
      `sharpness-lab: ignoring tuning cache ${path}: it could not be read (${(error as Error).message}); using defaults`,
    );
    return undefined;
  }
  if (data === undefined) return undefined;
  const loaded = loadTuning(data, context.adapterInfo, context.device.limits);
  if (loaded.warning !== undefined) {
    log(`sharpness-lab: ignoring tuning cache ${path}: ${loaded.warning}; using defaults`);
    return undefined;
  }
  return loaded.tuning;
}
