import type { Tape, Var } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';
import { sameShape } from '../kernels/shapes.ts';

export type LossKind = 'mse' | 'cross-entropy';

/**
 * A loss over taped values, (tape, prediction, target) → one value per replica, the mean over rows
 * of a per-sample loss (e.g. `mseLoss`); custom losses use tape ops and get exact HVPs.
 */
export type LossFunction = (tape: Tape, prediction: Var, target: Var) => Var;

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

/**
 * Logistic loss log(1 + exp(−y·z)) for labels y = ±1 and logits z (same shape, usually [rows, 1]),
 * summed over outputs, mean over rows. Written with tape ops (exact HVPs); exp overflows past |z| ≈ 88.
 */
export function logisticLoss(tape: Tape, logits: Var, target: Var): Var {
  checkShapes(logits, target);
  const rows = logits.shape[0];
  const softplus = tape.log(tape.affine(tape.exp(tape.mul(target, logits, -1)), 1, 1));
  return tape.scale(tape.sum(softplus), 1 / rows);
}

/**
 * Huber loss per element, ½r² for |r| ≤ δ and δ(|r| − ½δ) beyond (r = f − y), summed over outputs,
 * mean over rows. With c = min(|r|, δ) it is c(|r| − ½c), built from relu: its Hessian is 1 inside
 * the band and 0 outside (exact away from |r| = δ).
 */
export function huberLoss(tape: Tape, prediction: Var, target: Var, delta = 1): Var {
  checkShapes(prediction, target);
  if (!(delta > 0)) throw new InputError('loss.delta', `must be positive, got ${delta}`);
  const rows = prediction.shape[0];
  const r = tape.sub(prediction, target);
  const magnitude = tape.add(tape.relu(r), tape.relu(tape.scale(r, -1)));
  const clipped = tape.sub(magnitude, tape.relu(tape.affine(magnitude, 1, -delta)));
  const perElement = tape.mul(clipped, tape.sub(magnitude, tape.scale(clipped, 0.5)));
  return tape.scale(tape.sum(perElement), 1 / rows);
}

/** The built-in loss of a config's `loss` field. */
export function lossFunction(kind: LossKind): (tape: Tape, prediction: Var, target: Var) => Var {
  return kind === 'mse' ? mseLoss : softCrossEntropy;
}
