/**
 * Builds the lab page (runner/lab/page.ts with runner/lab/index.html) with the browser bundler: the
 * engine, its shaders (the `sharpness-lab:shaders` virtual module), zod, vega and vega-lite in static
 * files that need no server code and no network at run time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../../src/errors.ts';
import {
  type CachedBundle,
  COMPILED,
  cachedPageBundle,
  PREBUILT_LAB_DIR,
  prebuiltBundle,
  REPO_ROOT,
} from '../browser/bundle.ts';

export const LAB_ENTRY = join(REPO_ROOT, 'runner', 'lab', 'page.ts');
const LAB_HTML = join(REPO_ROOT, 'runner', 'lab', 'index.html');
/** The title that marks a folder as a lab build (so --out may replace it). */
const LAB_TITLE = '<title>sharpness-lab: watch SGD choose its minimum</title>';

/** How the lab app is bundled (here, and by `npm run build` into the package's dist/lab). */
export function labBundleOptions() {
  return { entry: LAB_ENTRY, html: readFileSync(LAB_HTML, 'utf8'), minify: true };
}

/**
 * The lab app, built once per content and cached like the runner's page (the user's cache folder);
 * the compiled package serves the copy `npm run build` made (dist/lab) and needs no esbuild.
 */
export async function cachedLabBundle(temporaryDir: () => Promise<string>): Promise<CachedBundle> {
  if (COMPILED) return prebuiltBundle(PREBUILT_LAB_DIR);
  return cachedPageBundle({ ...labBundleOptions(), temporaryDir });
}

function isLabBuild(dir: string): boolean {
  const index = join(dir, 'index.html');
  return existsSync(index) && readFileSync(index, 'utf8').includes(LAB_TITLE);
}

/**
 * Writes the static app into `dir` (created; an earlier lab build there is replaced whole): the files
 * of the cached build, built first if needed. A folder that holds anything else is refused, so no
 * user file is overwritten.
 */
export async function buildLab(dir: string): Promise<CachedBundle> {
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0 && !isLabBuild(target))
    throw new InputError('--out', `${dir} is not empty and not a lab build; give a new or empty folder`);
  await mkdir(dirname(target), { recursive: true });
  const staging = await mkdtemp(join(dirname(target), `.${basename(target)}-`));
  try {
    // The served app's cached build when it is current (the same files), else a fresh one.
    const bundle = await cachedLabBundle(async () => staging);
    if (!bundle.temporary || bundle.outdir !== staging)
      for (const file of bundle.files)
        await cp(join(bundle.outdir, file), join(staging, file), { recursive: true });
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
    await chmod(target, 0o755); // mkdtemp made it private; a static host serves it to everyone
    return { ...bundle, outdir: target, cached: bundle.cached };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}
