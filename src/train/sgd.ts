/**
 * Online SGD on a deep linear network for R replicas at once: each step samples a fresh minibatch
 * per replica on the GPU, differentiates the MSE loss, updates W ← W − η ∇L in place, and submits
 * once. Nothing is read back between log points.
 */
import { Tape } from '../autodiff/tape.ts';
import type { LinearTeacher } from '../data/linear-teacher.ts';
import { InputError } from '../errors.ts';
import { accumulate } from '../kernels/elementwise.ts';
import { deepLinearForward, mseLoss } from '../models/layers.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

export interface SgdOptions {
  learningRate: number;
  batchSize: number;
  steps: number;
  seed: number;
  /** First step index (resuming continues the same random streams). */
  startStep?: number;
  /** Index of the first replica within the whole run (keeps each replica's data stream). */
  replicaOffset?: number;
  logEvery?: number;
  /** Called at log points with the per-replica minibatch loss of that step. */
  onLog?: (step: number, loss: Float32Array) => void | Promise<void>;
}

export interface DivergenceReport {
  replica: number;
  step: number;
  loss: number;
}

/** Trains `weights` (each batch R, W_i of shape [h_i, h_{i−1}]) in place; returns divergences seen at log points. */
export async function trainDeepLinearSgd(
  engine: Engine,
  weights: readonly Tensor[],
  data: LinearTeacher,
  options: SgdOptions,
): Promise<DivergenceReport[]> {
  const { learningRate, batchSize, steps, seed } = options;
  if (!(learningRate > 0))
    throw new InputError('train.learningRate', `must be positive, got ${learningRate}`);
  if (!Number.isInteger(steps) || steps < 0)
    throw new InputError('train.steps', `must be a non-negative integer, got ${steps}`);
  const replicas = weights[0]?.batch ?? 0;
  if (weights.some((w) => w.batch !== replicas))
    throw new InputError('weights', 'all layers must have the same replica count');
  const start = options.startStep ?? 0;
  const logEvery = options.logEvery ?? 0;
  const diverged = new Map<number, DivergenceReport>();
  for (let step = start; step < start + steps; step++) {
    const tape = new Tape(engine);
    const { x, y } = data.sample({
      seed,
      step,
      rows: batchSize,
      replicas,
      replicaOffset: options.replicaOffset,
    });
    const params = weights.map((w) => tape.param(w));
    const loss = mseLoss(tape, deepLinearForward(tape, tape.constant(x), params), tape.constant(y));
    const grads = tape.grad(loss, params);
    weights.forEach((w, i) => {
      accumulate(engine, w, grads[i].value, 1, -learningRate);
    });
    const isLogPoint = logEvery > 0 && ((step - start + 1) % logEvery === 0 || step === start + steps - 1);
    if (isLogPoint) {
      const values = (await loss.value.read()) as Float32Array;
      values.forEach((value, replica) => {
        if (!Number.isFinite(value) && !diverged.has(replica))
          diverged.set(replica, { replica, step, loss: value });
      });
      await options.onLog?.(step, values);
    } else {
      engine.flush();
    }
    tape.dispose();
    x.dispose();
    y.dispose();
  }
  return [...diverged.values()];
}
