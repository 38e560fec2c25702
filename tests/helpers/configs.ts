/** The small experiment config many tests run: a 2-[2]-2 deep linear network under MSE on a linear teacher. */

export interface DeepLinearConfigFields<M, G, P> {
  name: string;
  description: string;
  steps: number;
  measure: M;
  seeds: number;
  seed: number;
  groups: G;
  panels: P;
}

/**
 * Deep linear 2-[2]-2, MSE, linear teacher V = I₂ with noiseStd [1, 0.3], normal init of scale 0.5,
 * SGD at learning rate 0.05 with batches of 10; the rest is the caller's. Keys are in the order the
 * tests wrote them, so JSON.stringify gives the same text.
 */
export function deepLinearConfig<M, G, P>(fields: DeepLinearConfigFields<M, G, P>) {
  return {
    name: fields.name,
    description: fields.description,
    model: { kind: 'deep-linear', inputDim: 2, hidden: [2], outputDim: 2 },
    loss: 'mse',
    data: {
      kind: 'linear-teacher',
      V: [
        [1, 0],
        [0, 1],
      ],
      noiseStd: [1, 0.3],
    },
    init: { kind: 'normal', scale: 0.5 },
    train: { learningRate: 0.05, batchSize: 10, steps: fields.steps },
    measure: fields.measure,
    seeds: fields.seeds,
    seed: fields.seed,
    groups: fields.groups,
    panels: fields.panels,
  };
}
