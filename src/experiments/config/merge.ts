/** Deep merge of group and quick overrides, and where a merged value came from (for error paths). */
import type { Attribute, Path } from './messages.ts';
import { jobShape } from './schema.ts';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

const NOISE_MATRIX = ['sigmaEps'];
const NOISE_DIAGONAL = ['noiseStd', 'noiseRotation'];
/** The two forms of file data (kind 'file'): .npy files, or a CSV file with its columns. */
const FILE_NPY = ['x', 'y'];
const FILE_CSV = ['csv', 'xColumns', 'yColumns', 'header'];

/** Drops the keys of `other` from `out` when `override` gives any of `form`. */
function dropOtherForm(
  out: Record<string, unknown>,
  override: Record<string, unknown>,
  form: string[],
  other: string[],
) {
  if (form.some((k) => k in override)) for (const k of other) delete out[k];
}

/**
 * Deep merge: objects merge key by key; arrays and numbers replace; `null` deletes a key. An object
 * with a different `kind` replaces the base object whole (its other fields belong to another
 * variant), and giving one form of the label noise (sigmaEps, or noiseStd/noiseRotation) or of file
 * data (x/y .npy files, or csv with its columns) drops the other.
 */
export function mergeOverrides(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return clone(override);
  if ('kind' in override && override.kind !== base.kind) return stripNulls(clone(override));
  const out: Record<string, unknown> = { ...base };
  dropOtherForm(out, override, NOISE_MATRIX, NOISE_DIAGONAL);
  dropOtherForm(out, override, NOISE_DIAGONAL, NOISE_MATRIX);
  if (base.kind === 'file') {
    dropOtherForm(out, override, FILE_NPY, FILE_CSV);
    dropOtherForm(out, override, FILE_CSV, FILE_NPY);
  }
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete out[key];
    else out[key] = key in base ? mergeOverrides(base[key], value) : stripNulls(clone(value));
  }
  return out;
}

function stripNulls(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  for (const [k, v] of Object.entries(value)) {
    if (v === null) delete value[k];
    else stripNulls(v);
  }
  return value;
}

/** The value at `path` inside `obj` (undefined when a step is missing). */
function at(obj: unknown, path: Path): unknown {
  let current = obj;
  for (const key of path) {
    if (Array.isArray(current) && typeof key === 'number') current = current[key];
    else if (isPlainObject(current) && typeof key === 'string') current = current[key];
    else return undefined;
  }
  return current;
}

/**
 * Where a merged value came from: inside `overrides` (at `prefix`) when the override wrote that value
 * or an object on its way, else the base (located by `outer`, noting `context`).
 */
export function overrideAttribution(
  overrides: unknown,
  prefix: Path,
  outer: Attribute,
  context: string,
): Attribute {
  return (path) => {
    for (let n = path.length; n > 0; n--) {
      if (at(overrides, path.slice(0, n)) !== undefined) return outer([...prefix, ...path]);
    }
    const base = outer(path);
    return { field: base.field, note: base.note ? `${context}, ${base.note}` : context };
  };
}

export const JOB_KEYS = Object.keys(jobShape);

export function jobPart(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([key]) => JOB_KEYS.includes(key)));
}
