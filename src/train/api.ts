/**
 * The training API: `train({ engine, model, loss, data, optimizer, steps, replicas, onLogPoint })`
 * trains R replicas of a model in the same launches (the trainer of ./trainer.ts, general or fused
 * path) and returns each replica's final weights. Everything a config's `train` section says can be
 * said here, and more: a custom loss over tape ops, any `DataSource`, in-memory tables.
 */
import { ArrayDataset, type TableInput } from '../data/arrays.ts';
import { FixedDataset } from '../data/fixed.ts';
import type { DataSource } from '../data/source.ts';
import { InputError, positiveInteger } from '../errors.ts';
import { type InitScheme, initParameters } from '../models/init.ts';
import type { LossKind } from '../models/losses.ts';
import type { Model } from '../models/model.ts';
import { batchedValues, type NamedTensor, replicaTensors } from '../models/weights.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { Matrix } from '../theory/linalg.ts';
import {
  type OptimizerInput,
  OptimizerState,
  parseOptimizer,
  parseSchedule,
  type ScheduleInput,
} from './optimizer.ts';
import {
  type DivergenceReport,
  type LossFunction,
  type TrainOptions,
  train as trainReplicas,
} from './trainer.ts';

/** Training data held in memory: inputs x [n, d] and targets y [n, m], optional label noise Σ_ε (m×m). */
export interface InMemoryData {
  x: TableInput;
  y: TableInput;
  sigmaEps?: Matrix;
}

/** What `onLogPoint` is handed at each log point. */
export interface LogPoint {
  /** Updates applied so far. */
  step: number;
  /** Each replica's loss at the current weights on the next step's minibatch. */
  loss: Float32Array;
  /** The parameters now (batch R each; read them, do not dispose them). */
  parameters: readonly Tensor[];
}

export interface TrainRequest {
  engine: Engine;
  model: Model;
  /** 'mse' (½‖f − y‖², mean over rows), 'cross-entropy' (soft targets), or a function over tape ops. */
  loss: LossKind | LossFunction;
  /** A data source (built-in, `ArrayDataset`, …), or tables in memory (a fixed training set). */
  data: DataSource | InMemoryData;
  /** Base learning rate η (the schedule scales it). */
  learningRate: number;
  /** Default { kind: 'sgd' }; also 'momentum' (heavy ball or Nesterov) and 'adam', with weight decay. */
  optimizer?: OptimizerInput;
  /** Default { kind: 'constant' }; also 'step' and 'cosine', each with a linear warm-up. */
  schedule?: ScheduleInput;
  /** Rows per minibatch, or 'full': gradient descent on the whole fixed training set. */
  batchSize: number | 'full';
  steps: number;
  /** Networks trained side by side, each with its own initialisation and minibatches (default 1). */
  replicas?: number;
  /** Initial weights: default Kaiming normal, or named tensors (see `initialWeights`). */
  init?: InitScheme;
  /**
   * Start from these weights instead of `init`: tensors named `<replica>/<parameter>` (e.g. `0/W1`,
   * as `TrainResult.weights` names them) or `<parameter>` for every replica alike.
   */
  initialWeights?: readonly NamedTensor[];
  /** Base seed of every random stream (initialisation, minibatches, label noise); default 0. */
  seed?: number;
  /**
   * Log at 0 (the initialisation), every this many steps and at the last (src/train/schedule.ts);
   * absent: at 0 and at the end when onLogPoint is given; 0: never.
   */
  logEvery?: number;
  onLogPoint?: (point: LogPoint) => void | Promise<void>;
  /** 'auto' (default) runs plain SGD on deep linear / small MLP teachers in fused kernels. */
  path?: TrainOptions['path'];
}

export interface TrainResult {
  /** The final parameters, batch R each, in the model's order; the caller disposes them. */
  parameters: Tensor[];
  /** The same, read back: one tensor per replica and parameter, named `<replica>/<parameter>`. */
  weights: NamedTensor[];
  /** Replicas whose loss became non-finite or exceeded 1e6 at a log point. */
  divergences: DivergenceReport[];
}

function isSource(data: TrainRequest['data']): data is DataSource {
  return typeof (data as DataSource).sample === 'function';
}

/** Trains `replicas` copies of the model and returns their final weights. Errors name the field. */
export async function train(request: TrainRequest): Promise<TrainResult> {
  const { engine, model } = request;
  const replicas = request.replicas ?? 1;
  positiveInteger('replicas', replicas);
  const seed = request.seed ?? 0;
  const optimizer = parseOptimizer(request.optimizer ?? { kind: 'sgd' });
  const schedule = request.schedule === undefined ? undefined : parseSchedule(request.schedule);
  const prefixes = Array.from({ length: replicas }, (_, r) => String(r));
  // Checked before any buffer is made.
  const initial = request.initialWeights && loadInitialWeights(model, request.initialWeights, prefixes);
  const owned = isSource(request.data)
    ? undefined
    : new ArrayDataset(engine, request.data.x, request.data.y, {
        sigmaEps: request.data.sigmaEps,
        xField: 'data.x',
        yField: 'data.y',
      });
  const data = owned ?? (request.data as DataSource);
  const full = request.batchSize === 'full';
  if (full && !(data instanceof FixedDataset)) {
    owned?.dispose();
    throw new InputError(
      'batchSize',
      "'full' needs a fixed training set (in-memory tables or a FixedDataset)",
    );
  }
  const batchSize = data instanceof FixedDataset && full ? data.size : (request.batchSize as number);
  const params = initial
    ? initial.map((values, i) =>
        engine.tensor(values, model.parameters[i].shape, {
          batch: replicas,
          label: model.parameters[i].name,
        }),
      )
    : initParameters(engine, model, request.init ?? { kind: 'kaiming' }, { replicas, seed });
  const state = new OptimizerState(engine, optimizer, params);
  try {
    const logEvery = request.logEvery ?? (request.onLogPoint ? request.steps : 0);
    const divergences = await trainReplicas(engine, {
      model,
      params,
      data,
      loss: request.loss,
      learningRate: request.learningRate,
      optimizer,
      schedule,
      optimizerState: state,
      batchSize,
      steps: request.steps,
      seed,
      ...(full && { switchToGdAt: 0 }),
      logEvery,
      path: request.path,
      // The trainer names a log point by the updates applied (0: the initialisation).
      onLog: (step, loss) => request.onLogPoint?.({ step, loss, parameters: params }),
    });
    const values = await Promise.all(params.map((p) => p.read()));
    return { parameters: params, weights: replicaTensors(model, values, prefixes), divergences };
  } catch (error) {
    for (const p of params) p.dispose();
    throw error;
  } finally {
    state.dispose();
    owned?.dispose();
  }
}

/** Per-parameter replica-major values from `<replica>/<name>` tensors, or `<name>` shared by all. */
function loadInitialWeights(model: Model, tensors: readonly NamedTensor[], prefixes: readonly string[]) {
  const shared = model.parameters.every((spec) => tensors.some((t) => t.name === spec.name));
  if (!shared) return batchedValues(model, tensors, prefixes, 'initialWeights');
  const once = batchedValues(model, tensors, [''], 'initialWeights');
  return once.map((values) => {
    const out = new Float32Array(values.length * prefixes.length);
    prefixes.forEach((_, r) => {
      out.set(values, r * values.length);
    });
    return out;
  });
}
