import type { Tape, Var } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';
import { sameShape } from '../kernels/shapes.ts';

export type LossKind = 'mse' | 'cross-entropy';

function checkShapes(prediction: Var, target: Var): void {
  if (!sameShape(prediction.shape, target.shape)) {
    throw new InputError('loss', `prediction [${prediction.shape}] and target [${target.shape}] differ`);
  }
}

/** MSE loss ½‖f − y‖² per row, mean over rows: one value per replica. */
export function mseLoss(tape: Tape, prediction: Var, target: Var): Var {
  checkShapes(prediction, target);
  const rows = prediction.shape[0];
  return tape.scale(tape.sum(tape.square(tape.sub(prediction, target))), 0.5 / rows);
}

/**
 * Softmax cross-entropy against soft targets t (rows summing to 1), mean over rows:
 * ℓ = −Σ_k t_k log softmax(z)_k = logsumexp(z) − Σ_k t_k z_k.
 */
export function softCrossEntropy(tape: Tape, logits: Var, target: Var): Var {
  checkShapes(logits, target);
  const rows = logits.shape[0];
  const lse = tape.sum(tape.logSumExp(logits));
  const aligned = tape.sum(tape.mul(target, logits));
  return tape.scale(tape.sub(lse, aligned), 1 / rows);
}

export function lossFunction(kind: LossKind): (tape: Tape, prediction: Var, target: Var) => Var {
  return kind === 'mse' ? mseLoss : softCrossEntropy;
}
