/**
 * `npm run build` (also run by prepack, and by scripts/setup.mjs with --if-stale): compiles src/ and
 * runner/ to ES modules with .d.ts in dist/ (tsc, tsconfig.build.json), copies shaders/ to
 * dist/shaders (the Node host reads them there), embeds them for `sharpness-lab/browser`
 * (dist/runner/browser/shader-sources.js, the same module the page bundler generates), and prebuilds
 * the default page into dist/page and the lab app into dist/lab, so the installed CLI needs neither tsx nor esbuild.
 * `--if-stale` does nothing when dist/ was built from the same inputs (a hash in dist/.build-hash).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundlePage, shaderModuleSource } from '../runner/browser/bundle.ts';
import { labBundleOptions } from '../runner/lab/build.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.build-hash');
const INPUT_DIRS = ['src', 'runner', 'shaders', 'types'];
const INPUT_FILES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.ts'];

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path) : [path];
  });
}

/** Hash of every input's path and contents. */
function inputHash(): string {
  const hash = createHash('sha256');
  const files = [
    ...INPUT_DIRS.flatMap((d) => listFiles(join(ROOT, d))),
    ...INPUT_FILES.map((f) => join(ROOT, f)),
  ];
  for (const file of files.sort()) hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file));
  return hash.digest('hex');
}

const say = (line: string) => process.stderr.write(`build: ${line}\n`);

async function build(): Promise<void> {
  const hash = inputHash();
  if (process.argv.includes('--if-stale') && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash)
    return;
  const started = performance.now();
  say('compiling src/ and runner/ to dist/ (tsc)…');
  rmSync(DIST, { recursive: true, force: true });
  const tsc = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (tsc.status !== 0) throw new Error('tsc failed (see above)');
  // tsc compiles bench/ too (runner/commands/bench.ts loads it dynamically); the package does not
  // ship it (its peers are devDependencies), so that import fails there and the CLI says where the
  // bench runs. No product module may import bench/ statically: fail the build if one does.
  rmSync(join(DIST, 'bench'), { recursive: true, force: true });
  for (const file of listFiles(join(DIST, 'runner'))) {
    if (!file.endsWith('.js')) continue;
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from ['"](\.{1,2}\/[^'"]+)['"]/g))
      if (!existsSync(join(dirname(file), spec)))
        throw new Error(`${relative(ROOT, file)} imports ${spec}, which the package does not ship`);
  }
  cpSync(join(ROOT, 'shaders'), join(DIST, 'shaders'), { recursive: true });
  // runner/browser/shaders.ts imports the bundler's virtual module: point it at the generated file.
  const shadersJs = join(DIST, 'runner', 'browser', 'shaders.js');
  const compiled = readFileSync(shadersJs, 'utf8');
  if (!compiled.includes("'sharpness-lab:shaders'"))
    throw new Error(`${shadersJs} no longer imports 'sharpness-lab:shaders'`);
  writeFileSync(shadersJs, compiled.replace("'sharpness-lab:shaders'", "'./shader-sources.js'"));
  writeFileSync(join(DIST, 'runner', 'browser', 'shader-sources.js'), shaderModuleSource());
  say('bundling the default page into dist/page (esbuild)…');
  const page = join(DIST, 'page');
  mkdirSync(page, { recursive: true });
  await bundlePage({ outdir: page, minify: true, sourcemap: false });
  say('bundling the lab app into dist/lab (esbuild)…');
  const lab = join(DIST, 'lab');
  mkdirSync(lab, { recursive: true });
  await bundlePage({ ...labBundleOptions(), outdir: lab, sourcemap: false });
  writeFileSync(STAMP, hash);
  say(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

build().catch((error: unknown) => {
  say(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
