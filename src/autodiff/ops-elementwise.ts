/**
 * Elementwise ops (shaders/elementwise.wgsl) and their gradient rules: one table for the unary ops,
 * one for the binary ops, each rule mapping the incoming gradient g to the inputs' gradients with
 * taped ops (so it can be differentiated again). Broadcast gradients are summed back with `sumTo`.
 */
import { binary, unary } from '../kernels/elementwise.ts';
import { sameShape } from '../kernels/shapes.ts';
import { sumTo } from './ops-shape.ts';
import type { Tape } from './tape.ts';
import type { Var } from './value.ts';

export type DifferentiableUnary = 'square' | 'relu' | 'tanh' | 'exp' | 'log';
export type DifferentiableBinary = 'add' | 'mul' | 'div';

interface Scales {
  alpha?: number;
  beta?: number;
}

/** d/dx of each unary op y = f(x), applied to the incoming gradient g. */
const UNARY_VJP: Record<DifferentiableUnary, (t: Tape, g: Var, x: Var, y: Var) => Var> = {
  square: (t, g, x) => t.mul(g, x, 2),
  relu: (t, g, x) => reluMask(t, g, x),
  tanh: (t, g, _x, y) => tanhScale(t, g, y),
  exp: (t, g, _x, y) => t.mul(g, y),
  log: (t, g, x) => t.div(g, x),
};

/** The gradients of z = op(x, y) for x and y (undefined where one needs none), given g = ∂L/∂z. */
const BINARY_VJP: Record<
  DifferentiableBinary,
  (t: Tape, g: Var, x: Var, y: Var, z: Var, scales: Scales) => (Var | undefined)[]
> = {
  add: (t, g, x, y, _z, { alpha = 1, beta = 1 }) => [
    t.needsGrad(x) ? sumTo(t, alpha === 1 ? g : t.scale(g, alpha), x) : undefined,
    t.needsGrad(y) ? sumTo(t, beta === 1 ? g : t.scale(g, beta), y) : undefined,
  ],
  mul: (t, g, x, y, _z, { alpha = 1 }) => [
    t.needsGrad(x) ? sumTo(t, t.mul(g, y, alpha), x) : undefined,
    t.needsGrad(y) ? sumTo(t, t.mul(g, x, alpha), y) : undefined,
  ],
  div: (t, g, x, y, z) => [
    t.needsGrad(x) ? sumTo(t, t.div(g, y), x) : undefined,
    // ∂(x/y)/∂y = −(x/y)/y
    t.needsGrad(y) ? sumTo(t, t.scale(t.div(t.mul(g, z), y), -1), y) : undefined,
  ],
};

/** y = op(x) in one launch. */
export function unaryOp(t: Tape, op: DifferentiableUnary, x: Var): Var {
  const value = unary(t.engine, op, x.value);
  const out = t.node(value, [x], (g) => [UNARY_VJP[op](t, g, x, out)]);
  return out;
}

/** alpha·x + beta in one launch; its gradient is alpha·g. */
export function affine(t: Tape, x: Var, alpha: number, beta: number): Var {
  const value = unary(t.engine, 'affine', x.value, { alpha, beta });
  return t.node(value, [x], (g) => [t.scale(g, alpha)]);
}

/**
 * z = op(x, y) with numpy broadcasting in one launch (add: alpha·x + beta·y; mul: alpha·x∘y). Only
 * same-shaped sums wait while deferring (gradient contributions); every other op is made now.
 */
export function binaryOp(t: Tape, op: DifferentiableBinary, x: Var, y: Var, scales: Scales): Var {
  const compute = () => binary(t.engine, op, x.value, y.value, scales);
  const backward = (g: Var): (Var | undefined)[] => BINARY_VJP[op](t, g, x, y, out, scales);
  const out: Var =
    op === 'add' && x.batch === y.batch && sameShape(x.shape, y.shape)
      ? t.deferrable(() => ({ shape: x.shape, batch: x.batch }), compute, [x, y], backward)
      : t.node(compute(), [x, y], backward);
  return out;
}

/**
 * g where x > 0, else 0: relu's VJP in one launch. The mask is locally constant, so its own VJP is
 * the same mask on the incoming gradient and nothing flows to x (zero almost everywhere).
 */
export function reluMask(t: Tape, g: Var, x: Var): Var {
  const value = binary(t.engine, 'reluBackward', g.value, x.value);
  return t.node(value, [g], (h) => [sumTo(t, reluMask(t, h, x), g)]);
}

/** g·(1 − y²) for y = tanh(x): tanh's VJP in one launch; differentiable in g and y. */
export function tanhScale(t: Tape, g: Var, y: Var): Var {
  const value = binary(t.engine, 'tanhBackward', g.value, y.value);
  return t.node(value, [g, y], (h) => [
    t.needsGrad(g) ? sumTo(t, tanhScale(t, h, y), g) : undefined,
    // ∂/∂y of g(1 − y²) is −2gy.
    t.needsGrad(y) ? sumTo(t, t.mul(t.mul(h, g), y, -2), y) : undefined,
  ]);
}
