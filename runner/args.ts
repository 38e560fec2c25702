import { accessSync, constants, existsSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../src/errors.ts';

export interface FlagSpec {
  /** Flag name without dashes. */
  name: string;
  /** 'boolean' flags take no value; the others take the next argument. */
  kind: 'boolean' | 'string' | 'number';
  help: string;
}

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, string | number | boolean | undefined>;
}

/** Parses `--flag value`, `--flag=value` and boolean `--flag`; unknown flags are input errors. */
export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  const positional: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const spec = byName.get(name);
    if (!spec) {
      const known = specs.map((s) => `--${s.name}`).join(', ') || 'none';
      throw new InputError(`--${name}`, `unknown flag (known: ${known})`);
    }
    if (spec.kind === 'boolean') {
      if (inline !== undefined) throw new InputError(`--${name}`, 'takes no value');
      flags[name] = true;
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new InputError(`--${name}`, `needs a ${spec.kind} value`);
    if (spec.kind === 'number') {
      // Number('') is 0: an empty value is no number.
      const value = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(value)) throw new InputError(`--${name}`, `expected a number, got '${raw}'`);
      flags[name] = value;
    } else {
      flags[name] = raw;
    }
  }
  return { positional, flags };
}

export function formatFlagHelp(specs: FlagSpec[]): string {
  return specs
    .map((s) => `  --${s.name}${s.kind === 'boolean' ? '' : ` <${s.kind}>`}`.padEnd(28) + s.help)
    .join('\n');
}

/** Filesystems whose files are the kernel's, not the user's (statfs magic numbers, Linux). */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x73636673, 'securityfs'],
  [0x62656570, 'configfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
]);

/**
 * Refuses a place no run can write into, before any GPU work: `path` empty, below a file, in a folder
 * this user cannot write, or on a pseudo-filesystem (/proc, /sys, /dev). `path` itself may be missing.
 */
function checkWritablePlace(path: string, field: string): string {
  if (path.trim() === '') throw new InputError(field, 'is empty; give a path');
  let existing = resolve(path);
  while (!existsSync(existing)) existing = dirname(existing);
  const real = realpathSync(existing);
  const kind = PSEUDO_FILESYSTEMS.get(statfsSync(real).type);
  if (kind !== undefined || real === '/dev' || real.startsWith('/dev/'))
    throw new InputError(
      field,
      `${path} is on a pseudo-filesystem (${kind ?? 'dev'}); give a path on a disk`,
    );
  if (existing !== resolve(path) && !statSync(existing).isDirectory())
    throw new InputError(field, `cannot create ${path}: ${existing} is a file, not a folder`);
  try {
    accessSync(existing, constants.W_OK);
  } catch {
    throw new InputError(field, `cannot write to ${path}: ${existing} is not writable for this user`);
  }
  return existing;
}

/**
 * Refuses an output file path that cannot be written: a folder, one below a file, unwritable, or on
 * a pseudo-filesystem. Checked before any GPU work so a long job never fails at its last write.
 */
export function checkOutputFile(path: string, field: string): void {
  checkWritablePlace(path, field);
  if (existsSync(path) && statSync(path).isDirectory())
    throw new InputError(field, `${path} is a folder; give a file path`);
}

/** Refuses an output folder that cannot be written: exists as a file, below a file, unwritable, pseudo. */
export function checkOutputFolder(dir: string, field: string): void {
  checkWritablePlace(dir, field);
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new InputError(field, `${dir} exists and is not a folder`);
}
