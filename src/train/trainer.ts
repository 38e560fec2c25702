/**
 * SGD / GD (and momentum, Adam, weight decay, schedules: ./optimizer.ts) for R replicas in the same
 * launches. Each step: a minibatch per replica (fresh from the data stream, or drawn from a fixed
 * set), forward, backward through the tape, the optimizer's update in place, one submit. Nothing is
 * read back between log points; divergence is detected there.
 */
import { Tape } from '../autodiff/tape.ts';
import { FixedDataset } from '../data/fixed.ts';
import type { DataSource } from '../data/source.ts';
import { InputError } from '../errors.ts';
import { type LossFunction, type LossKind, lossFunction } from '../models/losses.ts';
import type { Model } from '../models/model.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { canFuse, FUSED_REQUIREMENTS, fusedSgd } from './fused.ts';
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
  /** At log points: the step just taken and each replica's minibatch loss. */
  onLog?: (step: number, loss: Float32Array) => void | Promise<void>;
  /**
   * 'fused' runs many steps per dispatch (deep linear on a linear teacher only), 'general' one tape
   * step per submit; 'auto' (default) picks fused whenever it applies.
   */
  path?: 'auto' | 'fused' | 'general';
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
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError('train.batchSize', `must be a positive integer, got ${batchSize}`);
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
  const fusable = options.loss === 'mse' && canFuse(options.model, options.data);
  if (path === 'fused' && refusal) throw new InputError('train.path', `'fused' refuses: ${refusal}`);
  if (path === 'fused' && !fusable) {
    throw new InputError('train.path', `'fused' needs ${FUSED_REQUIREMENTS}`);
  }
  const useFused = path === 'fused' || (path === 'auto' && fusable && !refusal);
  const start = options.startStep ?? 0;
  const end = start + options.steps;
  const logEvery = options.logEvery ?? 0;
  const bound = options.divergenceBound ?? 1e6;
  const diverged = new Map<number, DivergenceReport>();
  const isLogPoint = (step: number) =>
    logEvery > 0 && ((step - start + 1) % logEvery === 0 || step === end - 1);
  const record = async (step: number, lossTensor: Tensor) => {
    const values = (await lossTensor.read()) as Float32Array;
    values.forEach((value, replica) => {
      if ((!Number.isFinite(value) || Math.abs(value) > bound) && !diverged.has(replica)) {
        diverged.set(replica, { replica: replica + (options.replicaOffset ?? 0), step, loss: value });
      }
    });
    await options.onLog?.(step, values);
  };
  const totalSteps = options.totalSteps ?? end;
  let step = start;
  while (step < end) {
    // A segment ends at a log point or at the switch to GD, whichever comes first.
    let last = step;
    while (last < end - 1 && !isLogPoint(last) && last + 1 !== options.switchToGdAt) last++;
    const gd = options.switchToGdAt !== undefined && step >= options.switchToGdAt;
    if (useFused) {
      const loss = fusedSgd(engine, options.model, options.data, options.params, {
        learningRate: options.learningRate,
        batchSize: gd ? (options.gdBatchSize ?? 1000) : options.batchSize,
        steps: last - step + 1,
        seed: options.seed,
        startStep: step,
        replicaOffset: options.replicaOffset,
      });
      if (isLogPoint(last)) await record(last, loss);
      loss.dispose();
    } else {
      for (let s = step; s <= last; s++) {
        const rate = learningRateAt(options.learningRate, options.schedule, s, totalSteps);
        const loss = generalStep(engine, options, replicas, s, (params, grads) => {
          state.update(params, grads, s, rate);
        });
        if (s === last && isLogPoint(last)) await record(last, loss.value);
        else engine.flush();
        loss.dispose();
      }
    }
    step = last + 1;
  }
  return [...diverged.values()];
}

/** One tape step of the general path; returns the minibatch loss (owned by the caller). */
function generalStep(
  engine: Engine,
  options: TrainOptions,
  replicas: number,
  step: number,
  update: (params: readonly Tensor[], grads: readonly Tensor[]) => void,
): { value: Tensor; dispose(): void } {
  const { model, params, data, seed } = options;
  const gd = options.switchToGdAt !== undefined && step >= options.switchToGdAt;
  const batch =
    gd && data instanceof FixedDataset
      ? data.fullBatch()
      : data.sample({
          seed,
          step,
          rows: gd ? (options.gdBatchSize ?? 1000) : options.batchSize,
          replicas,
          replicaOffset: options.replicaOffset,
        });
  const tape = new Tape(engine);
  const vars = params.map((p) => tape.param(p));
  const lossOf = typeof options.loss === 'function' ? options.loss : lossFunction(options.loss);
  const loss = lossOf(tape, model.forward(tape, vars, tape.constant(batch.x)), tape.constant(batch.y));
  const grads = tape.grad(loss, vars);
  update(
    params,
    grads.map((g) => g.value),
  );
  return {
    value: loss.value,
    dispose: () => {
      tape.dispose();
      batch.x.dispose();
      batch.y.dispose();
    },
  };
}
