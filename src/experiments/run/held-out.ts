/** accuracy and heldOutLoss: the model's outputs on the held-out set, scored on the CPU. */
import { Tape } from '../../autodiff/tape.ts';
import { meanAndStandardError } from '../../statistics.ts';
import type { Engine } from '../../tensor/engine.ts';
import type { PreparedBatch } from './batch.ts';

/**
 * Accuracy (argmax of the prediction = argmax of the target) and the loss per held-out sample, in
 * float64 from the model's outputs, per replica: mean and standard error (binomial √(p(1−p)/n) for
 * accuracy, s/√n for the loss). `predictions` hold replicas × n × k; `targets` n × k (shared) or
 * replicas × n × k. Loss conventions as in models/losses.ts: MSE ½‖f − y‖², cross-entropy
 * logsumexp(z) − Σ t z.
 */
export function heldOutMetrics(
  predictions: ArrayLike<number>,
  targets: ArrayLike<number>,
  shape: { replicas: number; samples: number; outputs: number },
  loss: 'mse' | 'cross-entropy',
): { accuracy: number; accuracyStandardError: number; loss: number; lossStandardError: number }[] {
  const { replicas, samples: n, outputs: k } = shape;
  const targetStride = targets.length === n * k ? 0 : n * k;
  return Array.from({ length: replicas }, (_, r) => {
    let correct = 0;
    const losses: number[] = [];
    for (let i = 0; i < n; i++) {
      const f = r * n * k + i * k;
      const t = r * targetStride + i * k;
      let best = 0;
      let target = 0;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < k; j++) {
        if (predictions[f + j] > predictions[f + best]) best = j;
        if (targets[t + j] > targets[t + target]) target = j;
        max = Math.max(max, predictions[f + j]);
      }
      if (best === target) correct++;
      let value = 0;
      if (loss === 'mse')
        for (let j = 0; j < k; j++) value += 0.5 * (predictions[f + j] - targets[t + j]) ** 2;
      else {
        let sum = 0;
        for (let j = 0; j < k; j++) sum += Math.exp(predictions[f + j] - max);
        value = max + Math.log(sum);
        for (let j = 0; j < k; j++) value -= targets[t + j] * predictions[f + j];
      }
      losses.push(value);
    }
    const accuracy = correct / n;
    const { mean, standardError } = meanAndStandardError(losses);
    return {
      accuracy,
      accuracyStandardError: Math.sqrt((accuracy * (1 - accuracy)) / n),
      loss: mean,
      lossStandardError: standardError,
    };
  });
}

/** The batch's held-out metrics at the current parameters (a forward pass, read back). */
export async function scoreHeldOut(
  engine: Engine,
  prepared: PreparedBatch,
): Promise<ReturnType<typeof heldOutMetrics>> {
  const { model, params, heldOut, resolved } = prepared;
  const tape = new Tape(engine);
  let predictions: Float32Array;
  try {
    const output = tape.keep(
      model.forward(
        tape,
        params.map((p) => tape.constant(p)),
        tape.constant(heldOut.x),
      ),
    );
    predictions = (await output.read()) as Float32Array;
    output.dispose();
  } finally {
    tape.dispose();
  }
  const targets = (await heldOut.y.read()) as Float32Array;
  return heldOutMetrics(
    predictions,
    targets,
    { replicas: prepared.batch.replicas, samples: heldOut.samples, outputs: model.outputDim },
    resolved.loss,
  );
}
