/**
 * Products (shaders/matmul*.wgsl) and their gradient rules: op(A)·op(B), the dense layer
 * act(x·Wᵀ + bias + addend) in one launch, and a pending product that absorbs a sum as its addend.
 */
import { type Activation, matmul, matmulShape } from '../kernels/matmul.ts';
import { broadcastBatch } from '../kernels/shapes.ts';
import { reluMask, tanhScale } from './ops-elementwise.ts';
import { reduceToBatch, sumTo } from './ops-shape.ts';
import type { Tape } from './tape.ts';
import type { Product, Var } from './value.ts';

/** op(A)·op(B) per replica; deferred while the tape defers (a sum it enters may ride in its launch). */
export function matmulOp(
  t: Tape,
  a: Var,
  b: Var,
  options: { transposeA?: boolean; transposeB?: boolean } = {},
): Var {
  const tA = options.transposeA ?? false;
  const tB = options.transposeB ?? false;
  const compute = () => matmul(t.engine, a.value, b.value, { transposeA: tA, transposeB: tB });
  const result = () => {
    const { M, N } = matmulShape(a, b, { transposeA: tA, transposeB: tB });
    return { shape: [M, N], batch: broadcastBatch('matmul', a, b) };
  };
  const backward = (g: Var) => productVjp(t, g, a, b, tA, tB);
  return t.deferrable(result, compute, [a, b], backward, { a, b, transposeA: tA, transposeB: tB });
}

/** The gradients of op(a)·op(b) for its two operands, given the gradient g of the product. */
function productVjp(t: Tape, g: Var, a: Var, b: Var, tA: boolean, tB: boolean): (Var | undefined)[] {
  return [
    t.needsGrad(a)
      ? reduceToBatch(
          t,
          tA ? t.matmul(b, g, { transposeA: tB, transposeB: true }) : t.matmul(g, b, { transposeB: !tB }),
          a,
        )
      : undefined,
    t.needsGrad(b)
      ? reduceToBatch(
          t,
          tB ? t.matmul(g, a, { transposeA: true, transposeB: tA }) : t.matmul(a, g, { transposeA: !tA }),
          b,
        )
      : undefined,
  ];
}

/**
 * A dense layer act(x·Wᵀ + bias + addend) in one matmul launch. Its VJP is written with taped ops
 * through the output: relu's mask is out > 0 (⟺ the pre-activation > 0) and tanh's derivative 1 − out².
 */
export function dense(
  t: Tape,
  x: Var,
  weight: Var,
  bias: Var | undefined,
  activation: Activation,
  addend: Var | undefined,
): Var {
  const value = matmul(t.engine, x.value, weight.value, {
    transposeB: true,
    bias: bias?.value,
    addend: addend?.value,
    activation,
  });
  const extra = bias ?? addend;
  const parents = extra ? [x, weight, extra] : [x, weight];
  const out = t.node(value, parents, (g) => {
    const gz = activation === 'relu' ? reluMask(t, g, out) : activation === 'tanh' ? tanhScale(t, g, out) : g;
    return [
      ...productVjp(t, gz, x, weight, false, true),
      extra && t.needsGrad(extra) ? sumTo(t, gz, extra) : undefined,
    ];
  });
  return out;
}

/** p + d where p is a pending product op(a)·op(b): the product's launch adds d (matmul's addend). */
export function productPlus(t: Tape, p: Var, d: Var): Var {
  const { a, b, transposeA, transposeB } = p.product as Product;
  const compute = () => matmul(t.engine, a.value, b.value, { transposeA, transposeB, addend: d.value });
  return t.deferrable(
    () => ({ shape: p.shape, batch: p.batch }),
    compute,
    [p, d],
    (h) => [h, h],
  );
}
