/**
 * Does the profiler account for the time? Long GPU-bound jobs run twice, unprofiled and profiled
 * (GPU timestamps when the adapter has them, else the wall-clock fallback); each row prints the
 * wall time of the profiled run, the profiler's summed kernel time, their ratio (the issue asks for
 * agreement within 20 % on a long run), the launch count and what profiling cost in wall time.
 */
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { initParameters } from '../src/models/init.ts';
import { buildModel } from '../src/models/model.ts';
import type { ProfileClock } from '../src/profile/profiler.ts';
import type { Engine } from '../src/tensor/engine.ts';
import { train } from '../src/train/trainer.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { randomFloats } from './timing.ts';

export interface ProfileBenchResult extends BenchResult {
  job: string;
  clock?: ProfileClock;
  launches?: number;
  wallMs?: number;
  kernelMs?: number;
  /** kernelMs / wallMs of the profiled run. */
  ratio?: number;
  unprofiledWallMs?: number;
}

interface Job {
  name: string;
  /** [batch, M, K, N] for matmuls; [replicas, batch, width, steps] for training. */
  shape: readonly number[];
  /** Runs the whole job and waits until the GPU is done. */
  run(engine: Engine): Promise<void>;
}

function jobs(): Job[] {
  const matmulChain: Job = {
    name: 'matmul 512³ × 20',
    shape: [1, 512, 512, 512],
    async run(engine) {
      const a = engine.tensor(randomFloats(512 * 512, 1), [512, 512]);
      const b = engine.tensor(randomFloats(512 * 512, 2), [512, 512]);
      for (let i = 0; i < 20; i++) matmul(engine, a, b).dispose();
      await engine.sync();
      a.dispose();
      b.dispose();
    },
  };
  const width = 64;
  const model = buildModel({
    kind: 'mlp',
    inputDim: width,
    hidden: [width, width],
    outputDim: width,
    activation: 'tanh',
  });
  const identity = Array.from({ length: width }, (_, i) =>
    Array.from({ length: width }, (_, j) => +(i === j)),
  );
  const mlpTraining: Job = {
    name: 'MLP 64-64-64-64 SGD, general path',
    shape: [16, 128, width, 30],
    async run(engine) {
      const data = new LinearTeacher(engine, { V: identity, sigmaEps: identity });
      const params = initParameters(engine, model, { kind: 'xavier' }, { replicas: 16, seed: 1 });
      await train(engine, {
        model,
        params,
        data,
        loss: 'mse',
        learningRate: 0.01,
        batchSize: 128,
        steps: 30,
        seed: 1,
        path: 'general',
      });
      await engine.sync();
      for (const p of params) p.dispose();
    },
  };
  return [matmulChain, mlpTraining];
}

async function runProfile(context: BenchContext): Promise<ProfileBenchResult[]> {
  const { engine } = context;
  const results: ProfileBenchResult[] = [];
  for (const job of jobs()) {
    const base = { engine: 'sharpness-lab', job: job.name, shape: job.shape, gflops: null };
    if (engine.profiler.recording) {
      results.push({ ...base, error: 'the profile suite runs its own profiler: drop --profile' });
      continue;
    }
    context.log(`profile ${job.name}: warm-up`);
    await job.run(engine);
    context.log(`profile ${job.name}: unprofiled`);
    let t0 = performance.now();
    await job.run(engine);
    const unprofiledWallMs = performance.now() - t0;
    context.log(`profile ${job.name}: profiled`);
    engine.profiler.reset();
    engine.profiler.start();
    t0 = performance.now();
    await job.run(engine);
    const wallMs = performance.now() - t0;
    engine.profiler.stop();
    const report = await engine.profiler.report();
    engine.profiler.reset();
    results.push({
      ...base,
      clock: report.clock,
      launches: report.launches,
      wallMs,
      kernelMs: report.totalMs,
      ratio: report.totalMs / wallMs,
      unprofiledWallMs,
    });
  }
  return results;
}

function formatProfileBench(results: readonly BenchResult[]): string {
  const rows = (results as ProfileBenchResult[]).map((r) =>
    r.error
      ? [r.job, '', '', '', '', '', '', `error: ${r.error}`]
      : [
          r.job,
          r.clock ?? '',
          String(r.launches),
          r.wallMs?.toFixed(1) ?? '',
          r.kernelMs?.toFixed(1) ?? '',
          r.ratio?.toFixed(3) ?? '',
          r.unprofiledWallMs?.toFixed(1) ?? '',
          '',
        ],
  );
  const header = [
    'job',
    'clock',
    'launches',
    'wall ms',
    'kernels ms',
    'kernels/wall',
    'unprofiled wall ms',
    '',
  ];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return [
    'profile: summed kernel time of the profiler vs wall time of the same run',
    ...all.map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    ),
  ].join('\n');
}

export const suite: BenchSuite = { run: runProfile, formatTable: formatProfileBench };
