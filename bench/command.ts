/**
 * The `bench` command (runner/commands/bench.ts loads it): runs suites and hands each what it needs
 * of its host — our Node engine, the MNIST digits, tfjs-webgpu on the same Dawn adapter, and the bench
 * page in Chromium (bench/browser/run.ts) — or, with `--backend browser`, runs them in that page.
 */
import { checkOutputFile, formatFlagHelp, parseArgs } from '../runner/args.ts';
import { DEVICE_FLAGS, deviceOptions } from '../runner/commands/device-flags.ts';
import { createNodeEngine } from '../runner/node/engine.ts';
import { loadMnist } from '../runner/node/mnist.ts';
import { PROFILE_FLAGS, profileRequest, startProfile } from '../runner/node/profile.ts';
import { InputError } from '../src/errors.ts';
import type { AdapterDescription } from '../src/gpu/context.ts';
import { benchMetadata, formatMetadata, takeJsonFile } from './meta.ts';
import { runPythonPeer } from './python.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { disposeTfjsWebgpu, loadTfjsWebgpu } from './tfjs.ts';

/** Benchmark suites by name; a new one is one more entry here. */
const SUITES: Record<string, { summary: string; load: () => Promise<BenchSuite>; slow?: boolean }> = {
  matmul: {
    summary: 'GFLOP/s of batched matmul: sharpness-lab vs tfjs-webgpu vs a CPU loop',
    load: async () => (await import('./matmul.ts')).suite,
  },
  train: {
    summary: 'SGD steps/s per preset model and replica count (fused, general, tfjs-webgpu loop)',
    load: async () => (await import('./train.ts')).suite,
  },
  hvp: {
    summary: 'HVP vs gradient per model; HVP beside jax-js (wasm here, webgpu in Chromium)',
    load: async () => (await import('./hvp.ts')).suite,
  },
  lanczos: {
    summary: 'HVPs for λ_max to 1e-3; Lanczos iteration time vs one HVP, per model',
    load: async () => (await import('./lanczos.ts')).suite,
  },
  'log-point': {
    summary:
      "a log point's curvature round in SGD steps of the same model (quick presets' RNN, Transformer, MNIST MLP)",
    load: async () => (await import('./log-point.ts')).suite,
  },
  'anisotropy-extrapolation': {
    summary:
      "the full anisotropy-sweep's wall time here, extrapolated per batch from a short timed run and a log point",
    load: async () => (await import('./anisotropy-extrapolation.ts')).suite,
  },
  'quick-presets': {
    summary:
      "wall time of every preset's --quick form against the 90 s target (slow; SHARPNESS_LAB_BENCH_PRESETS=a,b picks some)",
    load: async () => (await import('./quick-presets.ts')).suite,
    slow: true,
  },
  'init-scale': {
    summary: 'wall time of the full init-scale preset (the slowest suite; --skip-slow leaves it out)',
    load: async () => (await import('./init-scale.ts')).suite,
    slow: true,
  },
  profile: {
    summary: "the profiler's summed kernel time vs wall time on a long GPU-bound training run",
    load: async () => (await import('./profile.ts')).suite,
  },
  tune: {
    summary: 'matmul GFLOP/s with the tuned configs (tuning cache, or a quick tune) vs the defaults',
    load: async () => (await import('./tune.ts')).suite,
  },
};

const FLAGS = [
  ...DEVICE_FLAGS,
  {
    name: 'json',
    kind: 'boolean' as const,
    help: 'print one JSON object (progress stays on stderr); --json FILE writes it to FILE and prints the tables',
  },
  {
    name: 'skip-slow',
    kind: 'boolean' as const,
    help: 'without suite names: leave out the slow suites (init-scale, quick-presets)',
  },
  {
    name: 'min-time',
    kind: 'number' as const,
    help: 'seconds each measurement repeats for, at least (default 1)',
  },
  ...PROFILE_FLAGS,
];

export const usage = `usage: sharpness-lab bench [SUITE...] [--json [FILE]] [--skip-slow] [--min-time S] [--backend NAME] [--adapter TEXT]

Runs benchmark suites against peer engines on the same adapter, in this process, and prints a
markdown table (or with --json one object {"adapter": {...}, "host", "date", "commit", "cores",
"results": [...]}; with --json FILE both). Without a suite name, every suite runs. Progress goes
to stderr; a whole run takes many minutes on a CPU adapter (--skip-slow: without init-scale and quick-presets).
--profile times every launch of our engine and prints the per-kernel table on stderr at the end (a
pass per launch: the figures of a profiled run are a little slower than an unprofiled one).

suites:
${Object.entries(SUITES)
  .map(([name, s]) => `  ${name.padEnd(12)}${s.summary}`)
  .join('\n')}

${formatFlagHelp(FLAGS)}`;

export async function main(argv: string[]): Promise<number> {
  const json = takeJsonFile(argv, Object.keys(SUITES));
  const args = parseArgs(json.argv, FLAGS);
  const profile = profileRequest(args);
  if (typeof args.flags['profile-trace'] === 'string')
    checkOutputFile(args.flags['profile-trace'], '--profile-trace');
  const names =
    args.positional.length > 0
      ? [...new Set(args.positional)]
      : Object.keys(SUITES).filter((name) => !(args.flags['skip-slow'] && SUITES[name].slow));
  for (const name of names) {
    if (!Object.hasOwn(SUITES, name)) {
      throw new InputError('suite', `unknown suite '${name}' (known: ${Object.keys(SUITES).join(', ')})`);
    }
  }
  const minSeconds = (args.flags['min-time'] as number | undefined) ?? 1;
  if (!(minSeconds >= 0)) throw new InputError('--min-time', `must be ≥ 0 seconds, got ${minSeconds}`);

  const log = (line: string) => process.stderr.write(`${line}\n`);
  let adapter: AdapterDescription;
  const results: { name: string; suite: BenchSuite; results: BenchResult[] }[] = [];
  if (args.flags.backend === 'browser') {
    // The same suites in a Chromium page (tfjs-webgpu as the peer there); printed exactly as below.
    const run = await (await import('./browser/run.ts')).browserBench(args, names, minSeconds, log);
    adapter = run.adapter;
    for (const r of run.suites)
      results.push({ name: r.name, suite: await SUITES[r.name].load(), results: r.results });
  } else {
    const device = deviceOptions(args);
    const engine = await createNodeEngine(device);
    adapter = engine.context.adapterInfo;
    log(
      `bench: adapter ${adapter.description || adapter.device} (${adapter.vendor}/${adapter.architecture})`,
    );
    const finishProfile = startProfile(engine, profile);
    try {
      for (const name of names) {
        const suite = await SUITES[name].load();
        const context: BenchContext = {
          engine,
          minSeconds,
          log,
          tfjs: () => loadTfjsWebgpu(adapter, device),
          mnistDigits: () => loadMnist(),
          python: runPythonPeer,
          runInPage: async (job: string, params: unknown, log: (line: string) => void) =>
            (await import('./browser/run.ts')).runBenchPageJob(job as 'hvp-peers', params as never, {
              log,
            }),
        };
        results.push({ name, suite, results: await suite.run(context) });
      }
      await finishProfile();
    } finally {
      await disposeTfjsWebgpu();
      engine.destroy();
    }
  }

  const meta = benchMetadata(adapter, args.flags.backend === 'browser' ? 'browser' : 'node');
  const report = JSON.stringify({
    ...meta,
    results: results.flatMap((r) => r.results.map((result) => ({ suite: r.name, ...result }))),
  });
  if (json.file) await (await import('node:fs/promises')).writeFile(json.file, `${report}\n`);
  if (args.flags.json && !json.file) console.log(report);
  else {
    console.log(formatMetadata(meta));
    for (const r of results) console.log(`\n${r.suite.formatTable(r.results)}`);
  }
  const failed = results.flatMap((r) => r.results).filter((r) => r.error !== undefined);
  for (const f of failed) log(`bench: ${f.engine} [${f.shape.join(', ')}]: ${f.error}`);
  return failed.length > 0 ? 1 : 0;
}
