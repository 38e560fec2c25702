/**
 * Bundles a page entry (default runner/browser/page.ts) with esbuild into a folder the static server
 * serves: index.html, page.js and a chunk per dynamic import (tfjs, in the bench page). Shaders are
 * embedded as text through the virtual module `sharpness-lab:shaders`; any `node:*` import fails the
 * build, naming the importer (src/ must stay host-agnostic).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildFailure, Plugin } from 'esbuild';
import { userCacheDir } from '../node/optional.ts';
import { loadShaderSources, SHADER_DIR } from '../node/shaders.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository root (running from sources), or the package's `dist/` (compiled). */
export const REPO_ROOT = resolve(HERE, '..', '..');
export const DEFAULT_PAGE_ENTRY = join(REPO_ROOT, 'runner', 'browser', 'page.ts');
/** Compiled JavaScript (an installed package) rather than the TypeScript sources under tsx. */
export const COMPILED = import.meta.url.endsWith('.js');
/** The default page as `npm run build` bundles it (dist/page): the compiled CLI needs no esbuild. */
export const PREBUILT_PAGE_DIR = join(REPO_ROOT, 'page');
/** The lab app as `npm run build` bundles it (dist/lab), served by the compiled `lab` command. */
export const PREBUILT_LAB_DIR = join(REPO_ROOT, 'lab');
const SHADERS_MODULE = 'sharpness-lab:shaders';

export interface BundleOptions {
  /** Page entry module (absolute path); default runner/browser/page.ts. */
  entry?: string;
  /** Folder to write into (must exist). */
  outdir: string;
  /**
   * Modules replaced in the page build, by absolute path or bare package name → absolute path
   * (the kernel tests swap their Node engine helper and uvu for page versions).
   */
  replace?: Record<string, string>;
  /** Virtual modules by import specifier → JavaScript source (resolved from the repository root). */
  modules?: Record<string, string>;
  /** The page's index.html (default: an empty body that loads ./page.js). */
  html?: string;
  /** Minify the JavaScript (the lab app, which people download; the page the package ships). */
  minify?: boolean;
  /** Write source maps (default true; the page the package ships (dist/page) has none). */
  sourcemap?: boolean;
}

export interface Bundle {
  outdir: string;
  /** Files written, relative to outdir. */
  files: string[];
  /** Source files the bundle was built from (absolute paths; shaders included). */
  inputs: string[];
  milliseconds: number;
}

function shadersPlugin(): Plugin {
  return {
    name: 'sharpness-lab-shaders',
    setup(b) {
      b.onResolve({ filter: /^sharpness-lab:shaders$/ }, () => ({
        path: SHADERS_MODULE,
        namespace: 'shaders',
      }));
      b.onLoad({ filter: /.*/, namespace: 'shaders' }, () => ({
        contents: shaderModuleSource(),
        loader: 'js',
        watchDirs: [SHADER_DIR],
      }));
    },
  };
}

/** The JavaScript of the `sharpness-lab:shaders` module: every shaders/*.wgsl file as text, by name. */
export function shaderModuleSource(): string {
  return `export default ${JSON.stringify(loadShaderSources())};\n`;
}

function virtualModulesPlugin(modules: Record<string, string>): Plugin {
  return {
    name: 'sharpness-lab-virtual',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) =>
        Object.hasOwn(modules, args.path) ? { path: args.path, namespace: 'virtual' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'virtual' }, (args) => ({
        contents: modules[args.path],
        loader: 'js',
        resolveDir: REPO_ROOT,
      }));
    },
  };
}

const NODE_BUILTINS = new Set(builtinModules);

function hostAgnosticPlugin(): Plugin {
  return {
    name: 'sharpness-lab-no-node',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.replace(/^node:/, '').split('/')[0];
        if (!args.path.startsWith('node:') && !NODE_BUILTINS.has(bare)) return undefined;
        if (args.importer.includes('node_modules')) return undefined; // esbuild's own message
        return {
          errors: [
            {
              text: `'${args.path}' is a Node module: ${relative(REPO_ROOT, args.importer)} cannot run in the page (keep src/ host-agnostic; put host code under runner/)`,
            },
          ],
        };
      });
    },
  };
}

function replacePlugin(replace: Record<string, string>): Plugin {
  return {
    name: 'sharpness-lab-replace',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (Object.hasOwn(replace, args.path)) return { path: replace[args.path] };
        if (!args.path.startsWith('.')) return undefined;
        const absolute = resolve(args.resolveDir, args.path);
        return Object.hasOwn(replace, absolute) ? { path: replace[absolute] } : undefined;
      });
    },
  };
}

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>sharpness-lab</title>
<script type="module" src="./page.js"></script>
</head>
<body></body>
</html>
`;

/** Builds the page into `outdir`; build errors are thrown with esbuild's file:line messages. */
export async function bundlePage(options: BundleOptions): Promise<Bundle> {
  const started = performance.now();
  const entry = options.entry ?? DEFAULT_PAGE_ENTRY;
  const { build } = await import('esbuild').catch(() => {
    throw new Error(
      'the browser backend bundles the page with esbuild, which is not installed: run `npm install` (esbuild is a devDependency)',
    );
  });
  const result = await build({
    entryPoints: { page: entry },
    outdir: options.outdir,
    bundle: true,
    format: 'esm',
    splitting: true,
    platform: 'browser',
    target: 'chrome113',
    sourcemap: options.sourcemap === false ? false : 'linked',
    keepNames: true,
    minify: options.minify ?? false,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: REPO_ROOT,
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [
      replacePlugin(options.replace ?? {}),
      virtualModulesPlugin(options.modules ?? {}),
      shadersPlugin(),
      hostAgnosticPlugin(),
    ],
  }).catch((error: BuildFailure) => {
    const lines = (error.errors ?? []).map((e) =>
      e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text,
    );
    throw new Error(`bundling the page failed:\n  ${lines.join('\n  ') || String(error)}`);
  });
  await writeFile(join(options.outdir, 'index.html'), options.html ?? INDEX_HTML);
  const files = [
    'index.html',
    ...Object.keys(result.metafile.outputs).map((f) => relative(options.outdir, resolve(REPO_ROOT, f))),
  ];
  const inputs = [
    ...Object.keys(result.metafile.inputs)
      .filter((f) => !/^[^/]*:/.test(f)) // namespaced: 'shaders:…', 'virtual:…', '(disabled):…'
      .map((f) => resolve(REPO_ROOT, f)),
    ...Object.keys(loadShaderSources()).map((f) => join(SHADER_DIR, f)),
  ];
  return { outdir: options.outdir, files, inputs, milliseconds: performance.now() - started };
}

/** Bump when the bundle layout or options change: old cache entries are then ignored. */
const BUNDLE_FORMAT = 1;
const CACHE_MAX_ENTRIES = 8;

/** Under the user's cache folder (XDG), never inside the repository or the installed package. */
export const DEFAULT_CACHE_DIR = userCacheDir('browser-page');

export interface CachedBundle extends Bundle {
  /** True when an earlier build was reused. */
  cached: boolean;
  /** True when the bundle lives in a temporary folder the caller must delete (no cache folder). */
  temporary: boolean;
}

function sha256(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

/** Hash of the build configuration and of every input's path and contents; throws if one is gone. */
function contentKey(configKey: string, inputs: readonly string[]): string {
  const parts: string[] = [configKey, readdirSync(SHADER_DIR).sort().join('/')];
  for (const input of [...new Set(inputs)].sort()) parts.push(input, sha256(readFileSync(input)));
  return sha256(...parts).slice(0, 24);
}

/**
 * The page bundle, built once and reused while none of its inputs change (by content):
 * `$XDG_CACHE_HOME/sharpness-lab/browser-page/<hash of config and inputs>/` (else ~/.cache/…;
 * SHARPNESS_LAB_CACHE_DIR overrides). Entries are immutable, so a browser still serving an older one
 * is never disturbed. Without a writable cache folder, the page is built into a temporary folder
 * (`temporary: true`). The compiled package serves its prebuilt default page (dist/page) instead.
 */
export async function cachedPageBundle(
  options: Omit<BundleOptions, 'outdir'> & { cacheDir?: string; temporaryDir?: () => Promise<string> },
): Promise<CachedBundle> {
  const started = performance.now();
  const isDefault = !options.entry && !options.replace && !options.modules;
  if (COMPILED && isDefault) return prebuiltBundle(PREBUILT_PAGE_DIR, started);
  const cacheDir = options.cacheDir ?? process.env.SHARPNESS_LAB_CACHE_DIR ?? DEFAULT_CACHE_DIR;
  const { version } = await import('esbuild').catch(() => ({ version: 'missing' }));
  const configKey = sha256(
    JSON.stringify({
      format: BUNDLE_FORMAT,
      esbuild: version,
      entry: options.entry ?? DEFAULT_PAGE_ENTRY,
      replace: options.replace ?? {},
      modules: options.modules ?? {},
      html: options.html ?? null,
      minify: options.minify ?? false,
    }),
  );
  const manifestPath = join(cacheDir, `${configKey.slice(0, 16)}.json`);
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { inputs: string[]; files: string[] };
    const dir = join(cacheDir, contentKey(configKey, manifest.inputs));
    if (existsSync(join(dir, '.complete'))) {
      const now = new Date();
      await utimes(dir, now, now).catch(() => {}); // in use: keep it from being pruned
      return {
        outdir: dir,
        files: manifest.files,
        inputs: manifest.inputs,
        milliseconds: performance.now() - started,
        cached: true,
        temporary: false,
      };
    }
  } catch {}

  let buildDir: string;
  try {
    await mkdir(cacheDir, { recursive: true });
    buildDir = await mkdtemp(join(cacheDir, 'build-'));
  } catch {
    if (!options.temporaryDir) throw new Error(`cannot write the page bundle cache ${cacheDir}`);
    const outdir = await options.temporaryDir();
    return { ...(await bundlePage({ ...options, outdir })), cached: false, temporary: true };
  }
  const buildStarted = Date.now();
  let bundle: Bundle;
  try {
    bundle = await bundlePage({ ...options, outdir: buildDir });
  } catch (error) {
    await rm(buildDir, { recursive: true, force: true });
    throw error;
  }
  // An input edited while esbuild ran may or may not be in the bundle: use it once, do not cache it.
  const changed = bundle.inputs.some((input) => {
    try {
      return statSync(input).mtimeMs >= buildStarted - 1000;
    } catch {
      return true;
    }
  });
  if (changed) return { ...bundle, cached: false, temporary: true };
  const dir = join(cacheDir, contentKey(configKey, bundle.inputs));
  await writeFile(join(buildDir, '.complete'), '');
  try {
    await rename(buildDir, dir);
  } catch {
    // Another process stored the same bundle first: theirs is identical.
    await rm(buildDir, { recursive: true, force: true });
    if (!existsSync(join(dir, '.complete'))) throw new Error(`could not store the page bundle in ${dir}`);
  }
  const manifestTemp = `${manifestPath}.${randomBytes(4).toString('hex')}`;
  await writeFile(manifestTemp, JSON.stringify({ inputs: bundle.inputs, files: bundle.files }));
  await rename(manifestTemp, manifestPath);
  await pruneCache(cacheDir);
  return {
    ...bundle,
    outdir: dir,
    cached: false,
    temporary: false,
    milliseconds: performance.now() - started,
  };
}

/** A page the package ships prebuilt (dist/page, dist/lab), served as it is. */
export function prebuiltBundle(dir: string, started = performance.now()): CachedBundle {
  if (!existsSync(join(dir, 'index.html')))
    throw new Error(`the package's page bundle ${dir} is missing: reinstall sharpness-lab`);
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  return {
    outdir: dir,
    files,
    inputs: [],
    milliseconds: performance.now() - started,
    cached: true,
    temporary: false,
  };
}

/**
 * Keeps the cache small: at most CACHE_MAX_ENTRIES bundles, the least recently used deleted first,
 * but never one used in the last 10 minutes (a running browser may still load chunks from it);
 * abandoned builds go after an hour.
 */
async function pruneCache(cacheDir: string): Promise<void> {
  const now = Date.now();
  const entries: { path: string; used: number }[] = [];
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (name.endsWith('.json') || name.includes('.json.')) continue;
    const path = join(cacheDir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info) continue;
    if (name.startsWith('build-')) {
      if (now - info.mtimeMs > 3600_000) await rm(path, { recursive: true, force: true });
    } else entries.push({ path, used: info.mtimeMs });
  }
  entries.sort((a, b) => b.used - a.used);
  for (const entry of entries.slice(CACHE_MAX_ENTRIES))
    if (now - entry.used > 600_000) await rm(entry.path, { recursive: true, force: true });
}
