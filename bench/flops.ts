/**
 * Floating-point work of one SGD step, counted from a model's shapes: the multiply–adds of its
 * matrix products (the work a matmul-bound adapter must do; elementwise ops, softmax and reductions
 * are left out). Backward costs about twice the forward (a product's gradient needs one product per
 * operand), so a step is ≈ 3 × forward multiply–adds × 2 flops per sample, plus the teacher's
 * forward where a teacher labels fresh data every step.
 */
import type { ModelSpec } from '../src/models/model.ts';
import { layerWidths } from '../src/models/model.ts';

/** Multiply–adds of the matrix products in one sample's forward pass. */
export function forwardMultiplyAdds(spec: ModelSpec): number {
  switch (spec.kind) {
    case 'deep-linear':
    case 'mlp': {
      const widths = layerWidths(spec);
      return widths.slice(1).reduce((sum, out, i) => sum + out * widths[i], 0);
    }
    case 'rnn': {
      // h_t = tanh(Wx x_t + Wh h_{t−1} + b) with h_0 = 0 (no Wh product at t = 0), output Wo h_T.
      const { inputDim, hidden, outputDim, sequenceLength: T } = spec;
      return T * hidden * inputDim + (T - 1) * hidden * hidden + outputDim * hidden;
    }
    case 'transformer': {
      const { inputDim, modelDim: D, heads, mlpHidden, outputDim, sequenceLength: T } = spec;
      const dh = D / heads;
      const embedding = T * D * inputDim;
      // Per head: q, k, v projections, scores q kᵀ, mixing softmax(scores) v, output projection.
      const perHead = 3 * T * dh * D + T * T * dh + T * T * dh + T * D * dh;
      const mlp = T * (mlpHidden * D + D * mlpHidden);
      const readout = outputDim * D;
      return embedding + heads * perHead + mlp + readout;
    }
  }
}

/**
 * Flops of one SGD step over `replicas` × `batchSize` samples: the student's forward and backward
 * (3 × its forward) and, for teacher–student data, the teacher's forward that labels the batch.
 */
export function sgdStepFlops(options: {
  student: ModelSpec;
  teacher?: ModelSpec;
  batchSize: number;
  replicas: number;
}): number {
  const perSample =
    3 * forwardMultiplyAdds(options.student) + (options.teacher ? forwardMultiplyAdds(options.teacher) : 0);
  return 2 * perSample * options.batchSize * options.replicas;
}
