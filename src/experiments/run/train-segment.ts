/** Trains a batch from `startStep` to its end, calling `onLog` at every log point (0 included). */
import type { Engine } from '../../tensor/engine.ts';
import { type TrainOptions, train } from '../../train/trainer.ts';
import type { PreparedBatch } from './batch.ts';

/** The trainer's options for `steps` steps of a prepared batch from `startStep`, without logging. */
export function batchTrainOptions(prepared: PreparedBatch, startStep: number, steps: number): TrainOptions {
  const { resolved, batch } = prepared;
  return {
    model: prepared.model,
    params: prepared.params,
    data: prepared.data,
    loss: resolved.loss,
    learningRate: resolved.train.learningRate,
    optimizer: resolved.train.optimizer,
    schedule: resolved.train.schedule,
    optimizerState: prepared.optimizerState,
    totalSteps: resolved.train.steps,
    batchSize: resolved.train.batchSize,
    steps,
    startStep,
    seed: resolved.seed,
    replicaOffset: batch.offset,
    switchToGdAt: resolved.train.switchToGdAt,
    gdBatchSize: resolved.train.gdBatchSize,
  };
}

export async function trainSegment(
  engine: Engine,
  prepared: PreparedBatch,
  startStep: number,
  onLog: (step: number, loss: Float32Array) => Promise<void>,
): Promise<void> {
  const { resolved } = prepared;
  await train(engine, {
    ...batchTrainOptions(prepared, startStep, resolved.train.steps - startStep),
    logEvery: resolved.measure.every,
    onLog,
  });
}
