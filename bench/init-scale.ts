/**
 * Wall time of the full `init-scale` preset (Fig 1: every initialisation scale × seed, 10⁵ SGD steps
 * each with its measurements), run through runExperiment exactly as `sharpness-lab run init-scale`
 * does, minus writing files. The slow entry of the suite (`--skip-slow` leaves it out).
 */
import { runExperiment } from '../src/experiments/executor.ts';
import { loadPreset } from '../src/experiments/presets/index.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';

export interface ExperimentWallTime extends BenchResult {
  experiment: string;
  replicas: number;
  steps: number;
  /** Wall seconds of the whole run (training and measurements); null when it failed. */
  seconds: number | null;
  rows: number;
}

async function run(context: BenchContext): Promise<ExperimentWallTime[]> {
  const config = loadPreset('init-scale');
  const replicas = config.groups.length * config.seeds;
  const result: ExperimentWallTime = {
    engine: 'sharpness-lab',
    shape: [replicas, config.train.steps],
    gflops: null,
    experiment: 'init-scale',
    replicas,
    steps: config.train.steps,
    seconds: null,
    rows: 0,
  };
  context.log(`init-scale: full preset, ${replicas} replicas × ${config.train.steps} steps`);
  const started = performance.now();
  let lastLine = 0;
  try {
    const outcome = await runExperiment(context.engine, config, {
      onProgress: (p) => {
        const now = performance.now();
        if (now - lastLine < 5000 && p.done < p.total) return;
        lastLine = now;
        const seconds = (now - started) / 1000;
        context.log(
          `init-scale: ${((100 * p.done) / p.total).toFixed(1)}% (${p.group}, step ${p.step}/${p.steps}), ${seconds.toFixed(1)} s`,
        );
      },
    });
    result.seconds = (performance.now() - started) / 1000;
    result.rows = outcome.rows.length;
  } catch (error) {
    result.error = (error as Error).message.split('\n')[0];
  }
  return [result];
}

function formatTable(results: readonly BenchResult[]): string {
  const rows = results as ExperimentWallTime[];
  return [
    'Full experiment wall time (runExperiment, no files written)',
    '',
    '| experiment | replicas × steps | result rows | wall time (s) |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.experiment} | ${r.replicas} × ${r.steps} | ${r.rows} | ${r.seconds === null ? `failed: ${r.error}` : r.seconds.toFixed(1)} |`,
    ),
  ].join('\n');
}

export const suite: BenchSuite = { run, formatTable };
