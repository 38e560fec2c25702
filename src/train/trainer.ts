/**
 * SGD / GD (and momentum, Adam, weight decay, schedules: ./optimizer.ts) for R replicas in the same
 * launches. Each step: a minibatch per replica (fresh from the data stream, or drawn from a fixed
 * set), forward, backward through the tape, the optimizer's update in place, one submit. Nothing is
 * read back between log points; divergence is detected there.
 */
import { Tape } from '../autodiff/tape.ts';
import { FixedDataset } from '../data/fixed.ts';
import type { DataSource } from '../data/source.ts';
import { InputError, positiveInteger } from '../errors.ts';
import { type LossFunction, type LossKind, lossFunction } from '../models/losses.ts';
import type { Model } from '../models/model.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { canFuse, FUSED_REQUIREMENTS, fusedSgd, prefersFused } from './fused.ts';
import {
  fusedRefusal,
  learningRateAt,
  type OptimizerSpec,
  OptimizerState,
  PLAIN_SGD,
  type ScheduleSpec,
} from './optimizer.ts';

/** Re-exported for the training API (defined beside the built-in losses). */
export type { LossFunction };

import { isLogPoint } from './schedule.ts';

export interface TrainOptions {
  model: Model;
  /** The model's parameters, batch R each; updated in place. */
  params: Tensor[];
  data: DataSource;
  /** A built-in loss by name, or a function over tape values (then only the general path). */
  loss: LossKind | LossFunction;
  /** The base learning rate η (scaled by `schedule`). */
  learningRate: number;
  /** Default plain SGD (parsed with `parseOptimizer`: defaults filled in). */
  optimizer?: OptimizerSpec;
  /** Default constant (parsed with `parseSchedule`). */
  schedule?: ScheduleSpec;
  /** The cosine schedule's default horizon: the whole run's step count (default startStep + steps). */
  totalSteps?: number;
  /**
   * The optimizer's momentum/moment tensors, owned by the caller so it can checkpoint and restore
   * them; default: fresh zeros for this call, disposed at its end.
   */
  optimizerState?: OptimizerState;
  batchSize: number;
  steps: number;
  seed: number;
  /** First step index (resuming continues the same random streams). */
  startStep?: number;
  /** Index of the first replica within the whole run (keeps each replica's streams). */
  replicaOffset?: number;
  /**
   * Gradient descent instead of SGD from this step on: the full training set for a fixed dataset,
   * else minibatches of `gdBatchSize` (the paper's "GD" on an online stream uses 1000).
   */
  switchToGdAt?: number;
  gdBatchSize?: number;
  logEvery?: number;
  /** Loss above this (or NaN/Inf) marks a replica diverged at a log point. */
  divergenceBound?: number;
  /**
   * At log points (see schedule.ts: 0 = before any update when training starts at 0, every
   * `logEvery` updates, and the end): the number of updates applied and each replica's loss at the
   * current weights on the minibatch of the next step (the one the step about to run would use).
   */
  onLog?: (updates: number, loss: Float32Array) => void | Promise<void>;
  /**
   * 'fused' runs many steps per dispatch (plain SGD at a constant rate on the models, data and losses
   * of `FUSED_REQUIREMENTS`: deep linear on a linear teacher and small one-hidden-layer MLP
   * teacher–student under MSE or cross-entropy, small RNN and one-block Transformer teacher–student
   * under MSE or cross-entropy), 'general' one tape step per submit; 'auto' (default) picks fused
   * whenever it applies, except for an RNN or Transformer whose step is too long for one invocation
   * per replica (a Transformer only when its replicas are few: `prefersFused`).
   */
  path?: 'auto' | 'fused' | 'general';
}

/** Loss above this (or NaN/Inf) marks a replica diverged: the one bound the trainer and the runs use. */
export const DIVERGENCE_BOUND = 1e6;

/** Whether a loss marks its replica diverged: non-finite, or beyond `bound` in magnitude. */
export function isDivergedLoss(loss: number, bound = DIVERGENCE_BOUND): boolean {
  return !Number.isFinite(loss) || Math.abs(loss) > bound;
}

export interface DivergenceReport {
  replica: number;
  step: number;
  loss: number;
}

/** Checks shapes and settings before any GPU work; errors name the config field. */
export function checkTrainOptions(options: TrainOptions): number {
  const { model, params, data, learningRate, batchSize, steps } = options;
  if (!(learningRate > 0 && Number.isFinite(learningRate)))
    throw new InputError('train.learningRate', `must be a positive number, got ${learningRate}`);
  positiveInteger('train.batchSize', batchSize);
  if (!Number.isInteger(steps) || steps < 0)
    throw new InputError('train.steps', `must be a non-negative integer, got ${steps}`);
  if (data.inputFeatures !== model.inputFeatures) {
    throw new InputError(
      'model.inputDim',
      `the model reads ${model.inputFeatures} features per row but the data gives ${data.inputFeatures}`,
    );
  }
  if (data.outputDim !== model.outputDim)
    throw new InputError(
      'model.outputDim',
      `the model gives ${model.outputDim} outputs but the data has ${data.outputDim}`,
    );
  if (params.length !== model.parameters.length)
    throw new InputError('params', `${params.length} tensors for ${model.parameters.length} parameters`);
  const replicas = params[0]?.batch ?? 1;
  params.forEach((p, i) => {
    const spec = model.parameters[i];
    if (p.batch !== replicas || p.shape.join() !== spec.shape.join()) {
      throw new InputError(
        `params[${i}]`,
        `${spec.name} must be batch ${replicas} of [${spec.shape}], got ${p}`,
      );
    }
  });
  if (data instanceof FixedDataset && batchSize > data.size) {
    throw new InputError(
      'train.batchSize',
      `${batchSize} is larger than the training set (${data.size} rows)`,
    );
  }
  return replicas;
}

/** Trains every replica of `options.params` in place (SGD/GD, one submit per step or fused); divergences per replica. */
export async function train(engine: Engine, options: TrainOptions): Promise<DivergenceReport[]> {
  const replicas = checkTrainOptions(options);
  const optimizer = options.optimizer ?? PLAIN_SGD;
  if (
    options.optimizerState &&
    JSON.stringify(options.optimizerState.optimizer) !== JSON.stringify(optimizer)
  )
    throw new InputError(
      'optimizerState',
      `holds the state of ${options.optimizerState.optimizer.kind}, not of options.optimizer`,
    );
  const state = options.optimizerState ?? new OptimizerState(engine, optimizer, options.params);
  try {
    return await trainSteps(engine, options, replicas, state);
  } finally {
    if (state !== options.optimizerState) state.dispose();
  }
}

/** The step loop of `train`, its options checked; `state` is the optimizer's. */
async function trainSteps(
  engine: Engine,
  options: TrainOptions,
  replicas: number,
  state: OptimizerState,
): Promise<DivergenceReport[]> {
  const path = options.path ?? 'auto';
  const refusal = fusedRefusal(options.optimizer, options.schedule);
  const fusable = typeof options.loss === 'string' && canFuse(options.model, options.data, options.loss);
  if (path === 'fused' && refusal) throw new InputError('train.path', `'fused' refuses: ${refusal}`);
  if (path === 'fused' && !fusable) {
    throw new InputError('train.path', `'fused' needs ${FUSED_REQUIREMENTS}`);
  }
  // 'auto' judges the longest step: GD's batch where the run switches to it.
  const largestBatch = Math.max(
    options.batchSize,
    options.switchToGdAt === undefined ? 0 : (options.gdBatchSize ?? 1000),
  );
  const useFused =
    path === 'fused' ||
    (path === 'auto' &&
      fusable &&
      !refusal &&
      prefersFused(
        options.model,
        options.data,
        options.loss as LossKind,
        largestBatch,
        options.params[0]?.batch ?? 1,
      ));
  const start = options.startStep ?? 0;
  const end = start + options.steps;
  const logEvery = options.logEvery ?? 0;
  const bound = options.divergenceBound ?? DIVERGENCE_BOUND;
  const diverged = new Map<number, DivergenceReport>();
  const logSchedule = { every: logEvery, steps: end };
  const record = async (updates: number) => {
    const loss = minibatchLoss(engine, options, replicas, updates);
    const values = (await loss.value.read()) as Float32Array;
    loss.dispose();
    values.forEach((value, replica) => {
      if (isDivergedLoss(value, bound) && !diverged.has(replica)) {
        diverged.set(replica, {
          replica: replica + (options.replicaOffset ?? 0),
          step: updates,
          loss: value,
        });
      }
    });
    await options.onLog?.(updates, values);
  };
  const totalSteps = options.totalSteps ?? end;
  // A run that starts afresh measures its initialisation; a resumed one measured it before.
  if (start === 0 && isLogPoint(0, logSchedule)) await record(0);
  let step = start;
  while (step < end) {
    // A segment of step indices [step, last] ends where a log point follows (last + 1 updates) or
    // where GD takes over, whichever comes first.
    let last = step;
    while (last < end - 1 && !isLogPoint(last + 1, logSchedule) && last + 1 !== options.switchToGdAt) last++;
    const gd = options.switchToGdAt !== undefined && step >= options.switchToGdAt;
    if (useFused) {
      const loss = fusedSgd(engine, options.model, options.data, options.loss as LossKind, options.params, {
        learningRate: options.learningRate,
        batchSize: gd ? (options.gdBatchSize ?? 1000) : options.batchSize,
        steps: last - step + 1,
        seed: options.seed,
        startStep: step,
        replicaOffset: options.replicaOffset,
      });
      loss.dispose();
    } else {
      for (let s = step; s <= last; s++) {
        const rate = learningRateAt(options.learningRate, options.schedule, s, totalSteps);
        const loss = generalStep(engine, options, replicas, s, (params, grads) => {
          state.update(params, grads, s, rate);
        });
        engine.flush();
        loss.dispose();
      }
    }
    step = last + 1;
    if (isLogPoint(step, logSchedule)) await record(step);
  }
  return [...diverged.values()];
}

/** The minibatch of step index `step`: fresh rows (GD: gdBatchSize of them) or the whole fixed set under GD. */
function stepBatch(options: TrainOptions, replicas: number, step: number): { x: Tensor; y: Tensor } {
  const { data, seed } = options;
  const gd = options.switchToGdAt !== undefined && step >= options.switchToGdAt;
  return gd && data instanceof FixedDataset
    ? data.fullBatch()
    : data.sample({
        seed,
        step,
        rows: gd ? (options.gdBatchSize ?? 1000) : options.batchSize,
        replicas,
        replicaOffset: options.replicaOffset,
      });
}

/**
 * The minibatch loss of step index `step` at the current weights on a fresh tape: the parameters as
 * differentiable leaves for a training step, as constants for a measurement. Disposing frees the tape
 * and the minibatch (the loss tensor belongs to the tape: read it first).
 */
function tapedLoss(
  engine: Engine,
  options: TrainOptions,
  replicas: number,
  step: number,
  differentiable: boolean,
) {
  const batch = stepBatch(options, replicas, step);
  const tape = new Tape(engine);
  const vars = options.params.map((p) => (differentiable ? tape.param(p) : tape.constant(p)));
  const lossOf = typeof options.loss === 'function' ? options.loss : lossFunction(options.loss);
  const loss = lossOf(
    tape,
    options.model.forward(tape, vars, tape.constant(batch.x)),
    tape.constant(batch.y),
  );
  return {
    tape,
    vars,
    loss,
    value: loss.value,
    dispose: () => {
      tape.dispose();
      batch.x.dispose();
      batch.y.dispose();
    },
  };
}

/** The loss at the current weights on step `step`'s minibatch (forward only). */
function minibatchLoss(engine: Engine, options: TrainOptions, replicas: number, step: number) {
  return tapedLoss(engine, options, replicas, step, false);
}

/** One tape step of the general path; returns the minibatch loss (owned by the caller). */
function generalStep(
  engine: Engine,
  options: TrainOptions,
  replicas: number,
  step: number,
  update: (params: readonly Tensor[], grads: readonly Tensor[]) => void,
): { value: Tensor; dispose(): void } {
  const taped = tapedLoss(engine, options, replicas, step, true);
  const grads = taped.tape.grad(taped.loss, taped.vars);
  update(
    options.params,
    grads.map((g) => g.value),
  );
  return taped;
}
