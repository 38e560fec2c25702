/**
 * Models as functions of taped parameters. Every tensor has the replica dimension: R networks with
 * their own parameters run in the same launches. Inputs are [rows, features] per replica.
 */
import type { Tape, Var } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';

/** f(x) = W_D ⋯ W_1 x for each row x; W_i is [h_i, h_{i−1}]. */
export function deepLinearForward(tape: Tape, x: Var, weights: readonly Var[]): Var {
  let h = x;
  weights.forEach((w, i) => {
    if (w.shape[1] !== h.shape[1]) {
      throw new InputError(
        `weights[${i}]`,
        `expects ${w.shape[1]} inputs, the layer below gives ${h.shape[1]}`,
      );
    }
    h = tape.matmul(h, w, { transposeB: true });
  });
  return h;
}

export interface MlpParameters {
  /** [hidden, in], [hidden], [out, hidden], [out] per layer pair; any number of hidden layers. */
  weights: Var[];
  biases: Var[];
}

/** A multilayer perceptron: act(x W_1ᵀ + b_1) … then a linear output layer. */
export function mlpForward(tape: Tape, x: Var, parameters: MlpParameters, activation: 'relu' | 'tanh'): Var {
  const { weights, biases } = parameters;
  if (weights.length !== biases.length)
    throw new InputError('mlp', `${weights.length} weights but ${biases.length} biases`);
  let h = x;
  weights.forEach((w, i) => {
    if (w.shape[1] !== h.shape[1])
      throw new InputError(`mlp.weights[${i}]`, `expects ${w.shape[1]} inputs, got ${h.shape[1]}`);
    h = tape.dense(h, w, biases[i], i === weights.length - 1 ? 'none' : activation);
  });
  return h;
}

/** MSE loss ½‖f − y‖² per row, mean over rows: one value per replica. */
export function mseLoss(tape: Tape, prediction: Var, target: Var): Var {
  const rows = prediction.shape[0];
  return tape.scale(tape.sum(tape.square(tape.sub(prediction, target))), 0.5 / rows);
}
