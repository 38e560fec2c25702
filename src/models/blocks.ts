/**
 * Layers as public blocks: plain functions over the tape, so a model of your own is
 * `{ parameters, forward(tape, params, x) }` built from them, and the built-in kinds (src/models/
 * model.ts) are written with the same functions. Shapes are per replica; a parameter of batch R
 * gives R networks at once. Every block is a composition of taped ops, so gradients and exact
 * Hessian-vector products (double backward) work through any composition.
 * Elementwise ops and reductions are the `Tape` methods (add, sub, mul, div, scale, affine, square,
 * exp, log, tanh, relu, softmax, logSumExp, sum, mean, dot, reshape).
 */
import type { Tape, Var } from '../autodiff/tape.ts';
import type { Activation } from '../kernels/matmul.ts';

export type { Activation };

/** act(x·Wᵀ + b): x [rows, in], weight [out, in], bias [out] or none → [rows, out] (one launch). */
export function dense(tape: Tape, x: Var, weight: Var, bias?: Var, activation: Activation = 'none'): Var {
  return tape.dense(x, weight, bias, activation);
}

/**
 * Token embedding as a product: one-hot rows [rows, vocab] (a constant) times the table
 * [vocab, dim] → [rows, dim], so its gradient reaches exactly the rows used.
 */
export function embedding(tape: Tape, oneHot: Var, table: Var): Var {
  return tape.matmul(oneHot, table);
}

/** x + f(x): a residual connection (same shapes; numpy broadcasting otherwise). */
export function residual(tape: Tape, x: Var, fx: Var): Var {
  return tape.add(x, fx);
}

/** Softmax over the last axis. */
export function softmax(tape: Tape, x: Var): Var {
  return tape.softmax(x);
}

/**
 * Layer normalisation over the last axis of x [rows, D]: (x − mean)/√(var + eps), var the biased
 * variance, then · gain [D] + bias [D] when given.
 */
export function layerNorm(tape: Tape, x: Var, gain?: Var, bias?: Var, eps = 1e-5): Var {
  const [rows, width] = [x.shape[0], x.shape[x.shape.length - 1]];
  const column = (v: Var) => tape.reshape(v, [rows, 1]);
  const centred = tape.sub(x, column(tape.mean(x, 1)));
  const variance = column(tape.mean(tape.square(centred), 1));
  // (var + eps)^(−1/2) as exp(−½ log(var + eps)): taped ops only, so its HVP is exact.
  const inverseStd = tape.exp(tape.scale(tape.log(tape.affine(variance, 1, eps)), -0.5));
  let y = tape.mul(centred, inverseStd);
  if (gain) y = tape.mul(y, tape.reshape(gain, [1, width]));
  if (bias) y = tape.add(y, tape.reshape(bias, [1, width]));
  return y;
}

/**
 * One step of an Elman cell, h_t = tanh(Wx x_t + Wh h_{t−1} + b), with h_0 = 0 when `previous` is
 * undefined: x_t [rows, in], Wx [hidden, in], Wh [hidden, hidden], b [hidden] → [rows, hidden].
 */
export function recurrentCell(tape: Tape, previous: Var | undefined, xt: Var, Wx: Var, Wh: Var, b: Var): Var {
  // Two launches: x_t Wxᵀ + b, then tanh(h Whᵀ + that) with the sum as matmul's addend.
  return previous
    ? tape.dense(previous, Wh, undefined, 'tanh', tape.dense(xt, Wx, b))
    : tape.dense(xt, Wx, b, 'tanh');
}

/** One attention head's projections: Wq, Wk, Wv [headDim, D] and Wo [D, headDim]. */
export interface AttentionHead {
  Wq: Var;
  Wk: Var;
  Wv: Var;
  Wo: Var;
}

/**
 * Multi-head self-attention within each sequence: x [rows·T, D] holds `rows` sequences of T tokens
 * (sequence-major); each head computes softmax(q kᵀ/√headDim) v over its sequence and projects it
 * back with Wo; the heads' outputs are summed → [rows·T, D]. No masking.
 */
export function multiHeadAttention(
  tape: Tape,
  x: Var,
  heads: readonly AttentionHead[],
  sequenceLength: number,
): Var {
  const T = sequenceLength;
  const rows = x.shape[0] / T;
  const replicas = Math.max(x.batch, ...heads.map((h) => h.Wq.batch));
  let attention: Var | undefined;
  for (const { Wq, Wk, Wv, Wo } of heads) {
    const headDim = Wq.shape[0];
    // Sequences become replicas (batch R·rows of [T, ·]) so one batched matmul covers them all.
    const perSequence = (w: Var) =>
      tape.rebatch(tape.matmul(x, w, { transposeB: true }), [T, headDim], replicas * rows);
    const q = perSequence(Wq);
    const k = perSequence(Wk);
    const v = perSequence(Wv);
    const scores = tape.scale(tape.matmul(q, k, { transposeB: true }), 1 / Math.sqrt(headDim));
    const mixed = tape.matmul(tape.softmax(scores), v);
    const projected = tape.matmul(tape.rebatch(mixed, [rows * T, headDim], replicas), Wo, {
      transposeB: true,
    });
    attention = attention ? tape.add(attention, projected) : projected;
  }
  if (!attention) throw new Error('multiHeadAttention: no heads');
  return attention;
}
