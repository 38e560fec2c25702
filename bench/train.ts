/**
 * SGD steps per second of the general training path (tape forward/backward, in-place update, one
 * submit per step) for the paper's set-ups, with 1 and 64 replicas for the deep linear preset.
 */
import { initParameters } from '../src/models/init.ts';
import { train } from '../src/train/trainer.ts';
import { benchSetups } from './models.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { measure } from './timing.ts';

export interface TrainResult extends BenchResult {
  model: string;
  /** 'fused' (many steps per dispatch) or 'general' (autodiff tape, one submit per step). */
  path: 'fused' | 'general';
  replicas: number;
  batchSize: number;
  stepsPerSecond: number;
}

async function run(context: BenchContext): Promise<TrainResult[]> {
  const { engine } = context;
  const results: TrainResult[] = [];
  for (const setup of benchSetups()) {
    const linear = setup.name.startsWith('deep linear');
    for (const [replicas, path] of (linear
      ? [
          [1, 'general'],
          [1, 'fused'],
          [64, 'general'],
          [64, 'fused'],
        ]
      : [
          [1, 'general'],
          [8, 'general'],
        ]) as [number, 'fused' | 'general'][]) {
      context.log(`train: ${setup.name}, ${replicas} replica(s), ${path} path`);
      const data = setup.data(engine);
      const params = initParameters(
        engine,
        setup.model,
        { kind: setup.model.spec.kind === 'mlp' ? 'kaiming' : 'xavier' },
        { replicas, seed: 1 },
      );
      // Enough steps per repetition that a fused dispatch (256 steps) is measured whole.
      const steps = path === 'fused' ? 1024 : 10;
      let step = 0;
      const timing = await measure(
        async () => {
          await train(engine, {
            model: setup.model,
            params,
            data,
            loss: setup.loss,
            learningRate: 1e-3,
            batchSize: setup.batchSize,
            steps,
            seed: 1,
            startStep: step,
            path,
          });
          step += steps;
          await engine.sync();
        },
        { minSeconds: context.minSeconds, minReps: 2 },
      );
      results.push({
        engine: 'sharpness-lab',
        shape: [replicas, setup.batchSize],
        gflops: null,
        model: setup.name,
        path,
        replicas,
        batchSize: setup.batchSize,
        stepsPerSecond: steps / timing.median,
      });
      for (const p of params) p.dispose();
      data.dispose();
    }
  }
  return results;
}

function formatTable(results: readonly BenchResult[]): string {
  const rows = results as TrainResult[];
  const header = `${'model'.padEnd(34)}${'path'.padStart(8)}${'replicas'.padStart(9)}${'batch'.padStart(7)}${'steps/s'.padStart(10)}${'replica-steps/s'.padStart(17)}`;
  const lines = rows.map(
    (r) =>
      `${r.model.padEnd(34)}${r.path.padStart(8)}${String(r.replicas).padStart(9)}${String(r.batchSize).padStart(7)}${r.stepsPerSecond.toFixed(1).padStart(10)}${(r.stepsPerSecond * r.replicas).toFixed(0).padStart(17)}`,
  );
  return [
    'SGD training: steps/s (general: one submit per step; fused: many steps per dispatch)',
    header,
    '-'.repeat(header.length),
    ...lines,
  ].join('\n');
}

export const suite: BenchSuite = { run, formatTable };
