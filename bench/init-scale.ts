/**
 * Wall time of the full `init-scale` preset (Fig 1: every initialisation scale × seed, 10⁵ SGD steps
 * each with its measurements), run through runExperiment exactly as `sharpness-lab run init-scale`
 * does, minus writing files. The slow entry of the suite (`--skip-slow` leaves it out).
 */
import { type ExperimentConfig, validateExperiment } from '../src/experiments/config.ts';
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

/**
 * Runs one experiment through runExperiment (as `sharpness-lab run` does, minus writing files) and
 * times it, logging progress at most every 5 s; `label` names it in the log and the table.
 */
export async function timeExperiment(
  context: BenchContext,
  config: ExperimentConfig,
  label: string,
): Promise<ExperimentWallTime> {
  const groups = validateExperiment(config);
  const replicas = groups.reduce((sum, g) => sum + g.resolved.seeds, 0);
  const steps = groups.reduce((most, g) => Math.max(most, g.resolved.train.steps), 0);
  const result: ExperimentWallTime = {
    engine: 'sharpness-lab',
    shape: [replicas, steps],
    gflops: null,
    experiment: label,
    replicas,
    steps,
    seconds: null,
    rows: 0,
  };
  context.log(`${label}: ${replicas} replicas, up to ${steps} steps`);
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
          `${label}: ${((100 * p.done) / p.total).toFixed(1)}% (${p.group}, step ${p.step}/${p.steps}), ${seconds.toFixed(1)} s`,
        );
      },
    });
    result.seconds = (performance.now() - started) / 1000;
    result.rows = outcome.rows.length;
  } catch (error) {
    result.error = (error as Error).message.split('\n')[0];
  }
  return result;
}

async function run(context: BenchContext): Promise<ExperimentWallTime[]> {
  return [await timeExperiment(context, loadPreset('init-scale'), 'init-scale')];
}

export function formatTable(results: readonly BenchResult[]): string {
  const rows = results as ExperimentWallTime[];
  return [
    'Experiment wall time (runExperiment, no files written)',
    '',
    '| experiment | replicas × most steps | result rows | wall time (s) |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.experiment} | ${r.replicas} × ${r.steps} | ${r.rows} | ${r.seconds === null ? `failed: ${r.error}` : r.seconds.toFixed(1)} |`,
    ),
  ].join('\n');
}

export const suite: BenchSuite = { run, formatTable };
