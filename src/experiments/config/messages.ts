/**
 * zod issues in the project's words, attributed to the JSON path where the user wrote the value
 * (`InputError.field`, e.g. `groups[1].overrides.train.learningRate`).
 */
import type { z } from 'zod';
import { InputError } from '../../errors.ts';

export type Path = (string | number)[];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || 'config';
}

/** Splits `groups[1].overrides.train` into ['groups', 1, 'overrides', 'train']. */
export function parsePath(field: string): Path {
  const path: Path = [];
  for (const match of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (match[2] !== undefined) path.push(Number(match[2]));
    else path.push(match[1]);
  }
  return path;
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 24 ? `${value.slice(0, 24)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `an ${typeof value}`;
}

const ARTICLES: Record<string, string> = {
  number: 'a number',
  string: 'a string',
  array: 'an array',
  object: 'an object',
  boolean: 'true or false',
  record: 'an object',
};

/** The first zod issue as (path, message) in the project's words. */
function issueMessage(issue: z.core.$ZodIssue): { path: Path; message: string } {
  const path = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k)) as Path;
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.expected === 'int') return { path, message: issue.message };
      const expected = ARTICLES[issue.expected] ?? issue.expected;
      if (input === undefined) return { path, message: `missing (expected ${expected})` };
      return { path, message: `expected ${expected}, got ${describe(input)}` };
    }
    case 'unrecognized_keys':
      return {
        path: [...path, issue.keys[0]],
        message: `unknown field${issue.keys.length > 1 ? ` (also: ${issue.keys.slice(1).join(', ')})` : ''}; check the spelling`,
      };
    case 'invalid_union': {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      const options = (issue as { options?: unknown[] }).options;
      if (discriminator && options) {
        const got =
          input && typeof input === 'object' ? (input as Record<string, unknown>)[discriminator] : input;
        const known = options.map(String).join(', ');
        const target = path[path.length - 1] === discriminator ? path : [...path, discriminator];
        if (got === undefined) return { path: target, message: `missing (one of ${known})` };
        return { path: target, message: `unknown ${discriminator} ${JSON.stringify(got)} (known: ${known})` };
      }
      return { path, message: issue.message };
    }
    case 'invalid_value':
      return {
        path,
        message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(input)}`,
      };
    default:
      return { path, message: issue.message };
  }
}

/** Where the user wrote a value: its JSON path in the file, and a note on how it was reached. */
export interface Location {
  field: string;
  note?: string;
}

/** Maps a path in a merged object back to where the user wrote the value. */
export type Attribute = (path: Path) => Location;

export const plainPath: Attribute = (path) => ({ field: formatPath(path) });

export function inputError(location: Location, message: string): InputError {
  return new InputError(location.field, location.note ? `${message} (${location.note})` : message);
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown, attribute: Attribute): z.infer<S> {
  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const { path, message } = issueMessage(result.error.issues[0]);
  throw inputError(attribute(path), message);
}
