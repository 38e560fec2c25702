/**
 * Wall time of the full `init-scale` preset (Fig 1: every initialisation scale × seed, 10⁵ SGD steps
 * each with its measurements), run through runExperiment exactly as `sharpness-lab run init-scale`
 * does, minus writing files. The slow entry of the suite (`--skip-slow` leaves it out).
 */
import { type ExperimentConfig, type ValidatedGroup, validateExperiment } from '../src/experiments/config.ts';
import { runExperiment } from '../src/experiments/executor.ts';
import { loadPreset } from '../src/experiments/presets/index.ts';
import { layerWidths } from '../src/models/model.ts';
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
      // sharpening-mnist's quick form reads the digits through this hook, as the CLI gives them.
      ...(context.mnistDigits && { mnist: context.mnistDigits }),
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

/** What bench/peers/deep_linear_sgd.py trains: the same networks, data, steps and init scales. */
export interface NumpyDeepLinearInput {
  widths: number[];
  replicaScales: number[];
  steps: number;
  batch: number;
  learningRate: number;
  V: number[][];
  sigmaX: number[][];
  sigmaEps: number[][];
  seed: number;
}

/**
 * The numpy peer's input for an experiment whose groups are deep linear networks on one linear
 * teacher, trained by plain SGD with the same settings, differing only in their N(0, s²) init scale
 * (init-scale); throws naming what the peer cannot train.
 */
export function numpyDeepLinearInput(groups: readonly ValidatedGroup[]): NumpyDeepLinearInput {
  const first = groups[0].resolved;
  const same = (g: ValidatedGroup) => {
    const r = g.resolved;
    return (
      JSON.stringify([r.model, r.data, r.train, g.sigmaX, g.sigmaEps]) ===
      JSON.stringify([first.model, first.data, first.train, groups[0].sigmaX, groups[0].sigmaEps])
    );
  };
  const { data } = first;
  const sigmaX = groups[0].sigmaX;
  if (first.model.kind !== 'deep-linear' || data.kind !== 'linear-teacher' || first.loss !== 'mse' || !sigmaX)
    throw new Error('the numpy peer trains deep linear networks on a linear teacher under MSE');
  if (!groups.every(same))
    throw new Error('the numpy peer needs groups that differ only in their init scale');
  if ((first.train.optimizer ?? 'sgd') !== 'sgd' || first.train.schedule !== undefined)
    throw new Error('the numpy peer runs plain SGD at a constant learning rate');
  const replicaScales = groups.flatMap((g) => {
    const init = g.resolved.init;
    if (init.kind !== 'normal') throw new Error(`the numpy peer draws N(0, s²) weights, not '${init.kind}'`);
    return new Array<number>(g.resolved.seeds).fill(init.scale ?? 1);
  });
  return {
    widths: layerWidths(first.model),
    replicaScales,
    steps: first.train.steps,
    batch: first.train.batchSize,
    learningRate: first.train.learningRate,
    V: data.V,
    sigmaX,
    sigmaEps: groups[0].sigmaEps,
    seed: first.seed,
  };
}

interface NumpyPeerOutput {
  seconds: number;
  finalLoss: number;
  noiseFloor: number;
}

/** The numpy loop that only trains the same replicas (no measurements, no start-up), timed by itself. */
async function timeNumpyPeer(context: BenchContext, config: ExperimentConfig): Promise<ExperimentWallTime> {
  const input = numpyDeepLinearInput(validateExperiment(config));
  const result: ExperimentWallTime = {
    engine: 'numpy',
    shape: [input.replicaScales.length, input.steps],
    gflops: null,
    experiment: `${config.name}: numpy training loop only`,
    replicas: input.replicaScales.length,
    steps: input.steps,
    seconds: null,
    rows: 0,
  };
  if (!context.python) {
    result.error = 'no python3 in this host';
    return result;
  }
  context.log(`${config.name}: numpy peer, ${result.replicas} replicas × ${result.steps} steps`);
  try {
    const out = (await context.python('deep_linear_sgd.py', input)) as NumpyPeerOutput;
    // A learning check, as for the tfjs peer: a loop that diverged is no peer.
    if (!(out.finalLoss < 3 * out.noiseFloor))
      throw new Error(`its final loss ${out.finalLoss} is not near the noise floor ${out.noiseFloor}`);
    result.seconds = out.seconds;
  } catch (error) {
    result.error = (error as Error).message.split('\n')[0];
  }
  return result;
}

async function run(context: BenchContext): Promise<ExperimentWallTime[]> {
  const config = loadPreset('init-scale');
  const ours = await timeExperiment(context, config, 'init-scale');
  return [ours, await timeNumpyPeer(context, config)];
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
        `| ${r.experiment} | ${r.replicas} × ${r.steps} | ${r.engine === 'numpy' ? '—' : r.rows} | ${r.seconds === null ? `failed: ${r.error}` : r.seconds.toFixed(1)} |`,
    ),
    ...peerRatios(rows),
  ].join('\n');
}

/** ours / numpy for each experiment that has a numpy row (the issue's target: ≤ 0.5). */
function peerRatios(rows: readonly ExperimentWallTime[]): string[] {
  const ours = rows.find((r) => r.engine === 'sharpness-lab' && r.experiment === 'init-scale');
  const numpy = rows.find((r) => r.engine === 'numpy');
  if (!ours?.seconds || !numpy?.seconds) return [];
  return [
    '',
    `init-scale, whole run (training, every log point) / numpy training loop alone: ${(ours.seconds / numpy.seconds).toFixed(2)}×`,
  ];
}

export const suite: BenchSuite = { run, formatTable };
