import { existsSync, statSync } from 'node:fs';
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
      const value = Number(raw);
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

/**
 * Refuses an output file path that cannot be written: a folder, or one below a file. Checked before
 * any GPU work so a long job never fails at its last write.
 */
export function checkOutputFile(path: string, field: string): void {
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new InputError(field, `${path} is a folder; give a file path`);
    return;
  }
  let parent = dirname(resolve(path));
  while (!existsSync(parent)) parent = dirname(parent);
  if (!statSync(parent).isDirectory())
    throw new InputError(field, `cannot create ${path}: ${parent} is a file, not a folder`);
}
