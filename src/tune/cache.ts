/**
 * The tuning cache as data: winners of `sharpness-lab tune` per adapter, validated before use. The
 * host reads and writes the file (runner/node/tune-cache.ts); this module never touches storage.
 *
 * File format (version 1):
 *   { "version": 1, "adapters": { "<adapter key>": { "adapter": {vendor, architecture, device,
 *     description, backend}, "tunedAt": ISO time, "matmul": [ { "shapeClass", "shape": [batch, M, K, N],
 *     "default": {variant, workgroup}, "tuned": {variant, workgroup}, "defaultGflops", "tunedGflops",
 *     "clock" } ] } } }
 *
 * Which variants exist and which workgroups each accepts is the matmul module's knowledge
 * (src/kernels/matmul.ts checkMatmulConfig): readers here are handed that check.
 */
import { isPositiveInteger } from '../errors.ts';
import type { AdapterDescription } from '../gpu/context.ts';

export const TUNE_CACHE_VERSION = 1;

/** A kernel configuration as the file stores it: a variant name and its workgroup. */
export interface TunedConfig {
  variant: string;
  /** [x (columns), y (rows)] invocations. */
  workgroup: readonly [number, number];
}

export type MatmulShape = readonly [batch: number, M: number, K: number, N: number];

export interface TunedMatmul<Config extends TunedConfig = TunedConfig> {
  shapeClass: string;
  shape: MatmulShape;
  default: Config;
  tuned: Config;
  defaultGflops: number;
  tunedGflops: number;
  /** How candidates were timed: 'gpu-timestamp' or 'wall-clock'. */
  clock: string;
}

export interface AdapterIdentity {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
}

export interface AdapterTuning {
  adapter: AdapterIdentity;
  tunedAt: string;
  matmul: TunedMatmul[];
}

/** Validates one stored config for a device with these workgroup limits; rejects with `cacheFormatError`. */
export type ConfigCheck<Config extends TunedConfig = TunedConfig> = (
  value: unknown,
  path: string,
  limits: WorkgroupLimits,
) => Config;

export interface TuneCacheFile {
  version: typeof TUNE_CACHE_VERSION;
  adapters: Record<string, AdapterTuning>;
}

export function adapterIdentity(info: AdapterDescription): AdapterIdentity {
  const { vendor, architecture, device, description, backend } = info;
  return { vendor, architecture, device, description, backend };
}

/** Winners are per adapter and driver: the key is every identifying field the host reports. */
export function adapterKey(info: AdapterIdentity): string {
  return [info.vendor, info.architecture, info.device, info.description, info.backend].join(' | ');
}

/** Workgroup limits a cached config must respect on this device. */
export interface WorkgroupLimits {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
}

class CacheFormatError extends Error {}

/** Rejects the file at `path` (what a ConfigCheck throws). */
export function cacheFormatError(path: string, message: string): never {
  throw new CacheFormatError(`${path}: ${message}`);
}

const fail: (path: string, message: string) => never = cacheFormatError;

/** For config checks (src/kernels/matmul.ts): a JSON object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A positive integer of the cache file; a bad one is a format error (a warning, not an InputError). */
export function positiveIntegerEntry(value: unknown, path: string): number {
  if (!isPositiveInteger(value)) fail(path, `expected a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

function checkEntry<Config extends TunedConfig>(
  value: unknown,
  path: string,
  limits: WorkgroupLimits,
  checkConfig: ConfigCheck<Config>,
): TunedMatmul<Config> {
  if (!isRecord(value)) fail(path, 'expected an object');
  if (typeof value.shapeClass !== 'string' || value.shapeClass === '')
    fail(`${path}.shapeClass`, 'expected a name');
  const shape = value.shape;
  if (!Array.isArray(shape) || shape.length !== 4) fail(`${path}.shape`, 'expected [batch, M, K, N]');
  const dims = shape.map((d, i) => positiveIntegerEntry(d, `${path}.shape[${i}]`));
  for (const key of ['defaultGflops', 'tunedGflops'] as const) {
    const v = value[key];
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))
      fail(`${path}.${key}`, 'expected a number ≥ 0');
  }
  return {
    shapeClass: value.shapeClass,
    shape: [dims[0], dims[1], dims[2], dims[3]],
    default: checkConfig(value.default, `${path}.default`, limits),
    tuned: checkConfig(value.tuned, `${path}.tuned`, limits),
    defaultGflops: value.defaultGflops as number,
    tunedGflops: value.tunedGflops as number,
    clock: typeof value.clock === 'string' ? value.clock : 'unknown',
  };
}

function checkAdapterTuning(
  value: unknown,
  path: string,
  limits: WorkgroupLimits,
  checkConfig: ConfigCheck,
): AdapterTuning {
  if (!isRecord(value)) fail(path, 'expected an object');
  const adapter = value.adapter;
  if (!isRecord(adapter)) fail(`${path}.adapter`, 'expected the adapter identity');
  for (const key of ['vendor', 'architecture', 'device', 'description', 'backend'])
    if (typeof adapter[key] !== 'string') fail(`${path}.adapter.${key}`, 'expected a string');
  if (!Array.isArray(value.matmul)) fail(`${path}.matmul`, 'expected an array');
  return {
    adapter: adapter as unknown as AdapterIdentity,
    tunedAt: typeof value.tunedAt === 'string' ? value.tunedAt : '',
    matmul: value.matmul.map((e, i) => checkEntry(e, `${path}.matmul[${i}]`, limits, checkConfig)),
  };
}

/** The file's structure, checked throughout (entries of every adapter; limits only matter for ours). */
function checkFile(data: unknown, checkConfig: ConfigCheck): TuneCacheFile {
  if (!isRecord(data)) fail('(root)', 'expected a JSON object');
  if (data.version !== TUNE_CACHE_VERSION)
    fail('version', `expected ${TUNE_CACHE_VERSION}, got ${JSON.stringify(data.version)}`);
  if (!isRecord(data.adapters)) fail('adapters', 'expected an object keyed by adapter');
  const loose: WorkgroupLimits = {
    maxComputeInvocationsPerWorkgroup: Number.POSITIVE_INFINITY,
    maxComputeWorkgroupSizeX: Number.POSITIVE_INFINITY,
    maxComputeWorkgroupSizeY: Number.POSITIVE_INFINITY,
  };
  const adapters: Record<string, AdapterTuning> = {};
  for (const [key, value] of Object.entries(data.adapters)) {
    const checked = checkAdapterTuning(value, `adapters[${JSON.stringify(key)}]`, loose, checkConfig);
    if (adapterKey(checked.adapter) !== key)
      fail(`adapters[${JSON.stringify(key)}]`, 'key does not match its adapter');
    adapters[key] = checked;
  }
  return { version: TUNE_CACHE_VERSION, adapters };
}

/**
 * This adapter's entries from cache contents, each config validated by `checkConfig`: a corrupt
 * file, an unknown version or no entry for this adapter gives a warning (one line); never throws.
 */
export function readAdapterTuning<Config extends TunedConfig>(
  data: unknown,
  info: AdapterDescription,
  limits: WorkgroupLimits,
  checkConfig: ConfigCheck<Config>,
): { entries: TunedMatmul<Config>[]; warning?: undefined } | { entries?: undefined; warning: string } {
  try {
    const file = checkFile(data, checkConfig);
    const key = adapterKey(adapterIdentity(info));
    const mine = file.adapters[key];
    if (!mine) {
      const known = Object.keys(file.adapters);
      return {
        warning: `it has no entry for this adapter (${key})${known.length ? `, only for ${known.join('; ')}` : ''}`,
      };
    }
    return { entries: mine.matmul.map((e, i) => checkEntry(e, `matmul[${i}]`, limits, checkConfig)) };
  } catch (error) {
    if (error instanceof CacheFormatError)
      return { warning: `it is not a valid tuning cache (${error.message})` };
    return { warning: `it could not be read (${(error as Error).message})` };
  }
}

/**
 * The file to write after tuning: the existing contents (when valid) with this adapter's entry
 * replaced by `matmul` merged over its old shape classes.
 */
export function mergeTuneCache(
  existing: unknown,
  info: AdapterDescription,
  matmul: readonly TunedMatmul[],
  now: Date,
  checkConfig: ConfigCheck,
): TuneCacheFile {
  let file: TuneCacheFile;
  try {
    file = checkFile(existing, checkConfig);
  } catch {
    file = { version: TUNE_CACHE_VERSION, adapters: {} };
  }
  const identity = adapterIdentity(info);
  const key = adapterKey(identity);
  const kept = (file.adapters[key]?.matmul ?? []).filter(
    (old) => !matmul.some((m) => m.shapeClass === old.shapeClass),
  );
  file.adapters[key] = { adapter: identity, tunedAt: now.toISOString(), matmul: [...kept, ...matmul] };
  return file;
}
