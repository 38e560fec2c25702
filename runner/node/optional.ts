/**
 * Host-side helpers a package install needs: the user's cache folder (never inside the package) and
 * the optional peer dependencies (puppeteer-core, mnist), which say in one line what to install.
 */
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';

/** `$XDG_CACHE_HOME/sharpness-lab`, else `~/.cache/sharpness-lab`, then `parts` joined under it. */
export function userCacheDir(...parts: string[]): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'sharpness-lab', ...parts);
}

/** The optional peer dependencies and what needs each. */
export const OPTIONAL_PEERS = {
  'puppeteer-core': 'the browser backend (--backend browser)',
  mnist: "the 'mnist' data kind (its 10,000 digits)",
} as const;
export type OptionalPeer = keyof typeof OPTIONAL_PEERS;

/** True for the error Node throws when a package cannot be found (ESM import or require). */
export function isModuleNotFound(error: unknown, name: string): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    String((error as Error).message).includes(name)
  );
}

function missing(name: OptionalPeer): InputError {
  return new InputError(
    name,
    `is not installed; ${OPTIONAL_PEERS[name]} needs it: run \`npm install ${name}\``,
  );
}

/** Throws the one-line InputError when `name` cannot be resolved: call it before writing anything. */
export function checkOptional(name: OptionalPeer): void {
  try {
    createRequire(import.meta.url).resolve(name);
  } catch (error) {
    if (isModuleNotFound(error, name)) throw missing(name);
    throw error;
  }
}

/** `import(name)` of an optional peer dependency; when absent, an InputError saying what to install. */
export async function importOptional<T>(name: OptionalPeer): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    if (isModuleNotFound(error, name)) throw missing(name);
    throw error;
  }
}

/** `require(name)` of an optional CommonJS peer dependency, resolved from this package. */
export function requireOptional<T>(name: OptionalPeer): T {
  try {
    return createRequire(import.meta.url)(name) as T;
  } catch (error) {
    if (isModuleNotFound(error, name)) throw missing(name);
    throw error;
  }
}
