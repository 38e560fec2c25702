/**
 * Host-side helpers a package install needs: the user's cache folder (never inside the package) and
 * loading the optional peer dependencies (puppeteer-core, mnist) with a one-line install hint.
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

/** True for the error Node throws when a package cannot be found (ESM import or require). */
export function isModuleNotFound(error: unknown, name: string): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    String((error as Error).message).includes(name)
  );
}

function missing(name: string, purpose: string): InputError {
  return new InputError(name, `is not installed; ${purpose} needs it: run \`npm install ${name}\``);
}

/** `import(name)` of an optional peer dependency; when absent, an InputError saying what to install. */
export async function importOptional<T>(name: string, purpose: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    if (isModuleNotFound(error, name)) throw missing(name, purpose);
    throw error;
  }
}

/** `require(name)` of an optional CommonJS peer dependency, resolved from this package. */
export function requireOptional<T>(name: string, purpose: string): T {
  try {
    return createRequire(import.meta.url)(name) as T;
  } catch (error) {
    if (isModuleNotFound(error, name)) throw missing(name, purpose);
    throw error;
  }
}
