/**
 * Tuned vs untuned matmul on this adapter. The tuned configs come from the engine's tuning cache
 * (`sharpness-lab tune`) or, without one, from a quick in-memory tune (60 s). Each shape class is
 * timed interleaved on the wall clock like `bench matmul` (launch until the GPU is done), and once
 * more under the profiler, whose per-launch GPU time shows where the difference comes from.
 */

import { MATMUL_DEFAULT_WORKGROUP, type MatmulConfig, matmul, matmulTuning } from '../src/kernels/matmul.ts';
import { configLabel, SHAPE_CLASSES, tuneMatmul } from '../src/kernels/matmul-tuner.ts';
import type { Engine, Tensor } from '../src/tensor/engine.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { measureInterleaved, randomFloats } from './timing.ts';

export interface TuneBenchResult extends BenchResult {
  shapeClass: string;
  source: 'cache' | 'quick tune';
  defaultConfig: string;
  tunedConfig: string;
  defaultGflops?: number;
  /** GFLOP/s of the tuned config (also in `gflops`). */
  tunedGflops?: number;
  speedup?: number;
  /**
   * The engine's defaults on SwiftShader are themselves hand-tuned (16×8 kernel); the portable default
   * every other adapter starts from (tile4x4, 8×8 workgroups) is the untuned baseline.
   */
  portableGflops?: number;
  speedupOverPortable?: number;
  /** Mean GPU time per launch from the profiler (timestamps, else wall clock per submit). */
  defaultKernelUs?: number;
  tunedKernelUs?: number;
  profileClock?: string;
}

async function kernelMicroseconds(engine: Engine, run: () => Tensor, reps: number): Promise<number> {
  engine.profiler.reset();
  engine.profiler.start();
  for (let i = 0; i < reps; i++) run().dispose();
  await engine.sync();
  engine.profiler.stop();
  const report = await engine.profiler.report();
  engine.profiler.reset();
  return (report.totalMs * 1000) / reps;
}

async function runTune(context: BenchContext): Promise<TuneBenchResult[]> {
  const { engine } = context;
  let source: TuneBenchResult['source'] = 'cache';
  let tuned = new Map<string, { default: MatmulConfig; tuned: MatmulConfig }>();
  const missing = SHAPE_CLASSES.filter(
    (s) => !matmulTuning(engine)?.entries.some((e) => e.shapeClass === s.name),
  );
  for (const e of matmulTuning(engine)?.entries ?? [])
    tuned.set(e.shapeClass, { default: e.default, tuned: e.tuned });
  if (missing.length > 0) {
    source = 'quick tune';
    context.log(`tune: no cached configs for ${missing.map((s) => s.name).join(', ')}; tuning for 60 s`);
    const outcomes = await tuneMatmul(engine, { shapes: missing, budgetSeconds: 60 });
    tuned = new Map([
      ...tuned,
      ...outcomes.map((o) => [o.shapeClass, { default: o.default, tuned: o.tuned }] as const),
    ]);
  }
  const results: TuneBenchResult[] = [];
  for (const [index, shapeClass] of SHAPE_CLASSES.entries()) {
    const [batch, M, K, N] = shapeClass.shape;
    const configs = tuned.get(shapeClass.name);
    if (!configs) continue;
    const base = {
      engine: 'sharpness-lab',
      shape: shapeClass.shape,
      shapeClass: shapeClass.name,
      source: matmulTuning(engine)?.entries.some((e) => e.shapeClass === shapeClass.name)
        ? ('cache' as const)
        : source,
      defaultConfig: configLabel(configs.default),
      tunedConfig: configLabel(configs.tuned),
    };
    const a = engine.tensor(randomFloats(batch * M * K, 2 * index + 1), [M, K], { batch });
    const b = engine.tensor(randomFloats(batch * K * N, 2 * index + 2), [K, N], { batch });
    const launch = (config: MatmulConfig) => () =>
      matmul(engine, a, b, { variant: config.variant, workgroup: config.workgroup });
    const rep = (config: MatmulConfig) => async () => {
      launch(config)().dispose();
      await engine.sync();
    };
    context.log(`tune ${shapeClass.name}: ${base.defaultConfig} vs ${base.tunedConfig}`);
    const portable: MatmulConfig = { variant: 'tile4x4', workgroup: [...MATMUL_DEFAULT_WORKGROUP] };
    await rep(configs.default)();
    await rep(configs.tuned)();
    await rep(portable)();
    const [d, t, u] = await measureInterleaved([rep(configs.default), rep(configs.tuned), rep(portable)], {
      minSeconds: context.minSeconds,
      minReps: 3,
    });
    const flops = 2 * batch * M * K * N;
    const reps = Math.max(1, Math.min(50, Math.round(0.5 / d.median)));
    const defaultKernelUs = await kernelMicroseconds(engine, launch(configs.default), reps);
    const tunedKernelUs = await kernelMicroseconds(engine, launch(configs.tuned), reps);
    a.dispose();
    b.dispose();
    results.push({
      ...base,
      gflops: flops / t.median / 1e9,
      defaultGflops: flops / d.median / 1e9,
      tunedGflops: flops / t.median / 1e9,
      speedup: d.median / t.median,
      portableGflops: flops / u.median / 1e9,
      speedupOverPortable: u.median / t.median,
      defaultKernelUs,
      tunedKernelUs,
      profileClock: engine.profiler.clock,
    });
  }
  return results;
}

function formatTuneBench(results: readonly BenchResult[]): string {
  const header = [
    'shape class',
    '[b, M, K, N]',
    'default',
    'GFLOP/s',
    'kernel µs',
    'tuned',
    'GFLOP/s',
    'kernel µs',
    'speedup',
    'portable tile4x4 8×8 GFLOP/s',
    'tuned/portable',
    'from',
  ];
  const rows = (results as TuneBenchResult[]).map((r) => [
    r.shapeClass,
    `[${r.shape.join(', ')}]`,
    r.defaultConfig,
    r.defaultGflops?.toFixed(3) ?? '--',
    r.defaultKernelUs?.toFixed(0) ?? '--',
    r.tunedConfig,
    r.tunedGflops?.toFixed(3) ?? '--',
    r.tunedKernelUs?.toFixed(0) ?? '--',
    r.speedup ? `${r.speedup.toFixed(2)}×` : '--',
    r.portableGflops?.toFixed(3) ?? '--',
    r.speedupOverPortable ? `${r.speedupOverPortable.toFixed(2)}×` : '--',
    r.source,
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const right = [false, false, false, true, true, false, true, true, true, true, true, false];
  const clock = (results as TuneBenchResult[])[0]?.profileClock ?? 'gpu-timestamp';
  return [
    `tune: matmul with tuned vs default configs (wall-clock GFLOP/s, interleaved medians; kernel µs per launch from the profiler, ${clock})`,
    ...all.map((r) =>
      r
        .map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    ),
  ].join('\n');
}

export const suite: BenchSuite = { run: runTune, formatTable: formatTuneBench };
