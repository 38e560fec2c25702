/**
 * Row ops over the last axis and their gradient rules: softmax with its VJPs as fused row kernels
 * (shaders/autodiff.wgsl, each VJP itself differentiable), and log Σ exp.
 */
import { InputError } from '../errors.ts';
import { softmaxRows } from '../kernels/autodiff.ts';
import { reduce } from '../kernels/reduce.ts';
import { sameShape } from '../kernels/shapes.ts';
import type { Tape } from './tape.ts';
import type { Var } from './value.ts';

/** Softmax over the last axis, one launch per pass. */
export function softmax(t: Tape, x: Var): Var {
  const value = softmaxRows(t.engine, 'softmax', x.value);
  const out = t.node(value, [x], (g) => [softmaxVjp(t, g, out)]);
  return out;
}

/**
 * s ∘ (g − ⟨g, s⟩) per row: the VJP of softmax with output s, in one launch. Its own VJP: the
 * Jacobian diag(s) − s sᵀ is symmetric, so g gets softmaxVjp(h, s); s gets
 * h ∘ (g − ⟨g, s⟩) − g ⟨h, s⟩ (taped ops).
 */
function softmaxVjp(t: Tape, g: Var, s: Var): Var {
  if (g.value.length !== s.value.length || !sameShape(g.shape, s.shape))
    throw new InputError('softmax', `gradient ${g.value} does not match the output ${s.value}`);
  const value = softmaxRows(t.engine, 'softmax_backward', g.value, s.value);
  return t.node(value, [g, s], (h) => [
    t.needsGrad(g) ? softmaxVjp(t, h, s) : undefined,
    t.needsGrad(s) ? softmaxVjpOutputTerm(t, h, g, s) : undefined,
  ]);
}

/**
 * h ∘ (g − ⟨g, s⟩) − g ⟨h, s⟩ per row: the VJP of softmaxVjp(g, s) with respect to s, which every
 * Hessian-vector product through a softmax needs, in one launch (it was seven). Its own VJP, for
 * third derivatives, in taped ops: with a = ⟨g, s⟩, b = ⟨h, s⟩ and incoming u,
 *   h gets u ∘ (g − a) − s ⟨u, g⟩;  g gets u ∘ (h − b) − s ⟨u, h⟩;  s gets −g ⟨u, h⟩ − h ⟨u, g⟩.
 */
function softmaxVjpOutputTerm(t: Tape, h: Var, g: Var, s: Var): Var {
  const value = softmaxRows(t.engine, 'softmax_backward_output', g.value, s.value, h.value);
  return t.node(value, [h, g, s], (u) => {
    const rowDot = (a: Var, b: Var) => keepLastAxis(t, t.sum(t.mul(a, b), -1), s);
    const ug = rowDot(u, g);
    const uh = rowDot(u, h);
    return [
      t.needsGrad(h) ? t.sub(t.mul(u, t.sub(g, rowDot(g, s))), t.mul(s, ug)) : undefined,
      t.needsGrad(g) ? t.sub(t.mul(u, t.sub(h, rowDot(h, s))), t.mul(s, uh)) : undefined,
      t.needsGrad(s) ? t.scale(t.add(t.mul(g, uh), t.mul(h, ug)), -1) : undefined,
    ];
  });
}

/** log Σ exp over the last axis, as [rows, 1]; stable via the (constant) row max. */
export function logSumExp(t: Tape, x: Var): Var {
  const max = rowMax(t, x);
  return t.add(t.log(keepLastAxis(t, t.sum(t.exp(t.sub(x, max)), -1), x)), max);
}

/** Row maxima as a constant [.., 1] (used only as a shift, so it needs no gradient). */
function rowMax(t: Tape, x: Var): Var {
  const max = t.adopt(reduce(t.engine, 'max', x.value, { axis: -1 }));
  return t.constant(t.engine.view(max, [...x.shape.slice(0, -1), 1], x.batch));
}

/** Reinserts a reduced last axis as size 1 so it broadcasts across x's last axis. */
function keepLastAxis(t: Tape, reduced: Var, x: Var): Var {
  return t.reshape(reduced, [...x.shape.slice(0, -1), 1]);
}
