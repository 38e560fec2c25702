/** Trains a batch from `startStep` to its end, calling `onLog` at every log point (0 included). */
import type { Engine } from '../../tensor/engine.ts';
import { train } from '../../train/trainer.ts';
import type { PreparedBatch } from './batch.ts';

export async function trainSegment(
  engine: Engine,
  prepared: PreparedBatch,
  startStep: number,
  onLog: (step: number, loss: Float32Array) => Promise<void>,
): Promise<void> {
  const { resolved, batch } = prepared;
  await train(engine, {
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
    steps: resolved.train.steps - startStep,
    startStep,
    seed: resolved.seed,
    replicaOffset: batch.offset,
    switchToGdAt: resolved.train.switchToGdAt,
    gdBatchSize: resolved.train.gdBatchSize,
    logEvery: resolved.measure.every,
    onLog,
  });
}
