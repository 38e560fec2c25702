/**
 * The values of the tape (src/autodiff/tape.ts): a tensor, or a launch deferred until the value is
 * first read, with the parents and VJP the reverse pass (backward.ts) walks.
 */
import { InputError } from '../errors.ts';
import { Tensor } from '../tensor/engine.ts';

/** A value computed when first read (see `Tape.hvp`): its shape is known, its launch not yet made. */
export interface Deferred {
  shape: readonly number[];
  batch: number;
  compute: () => Tensor;
  /** Set when the value is op(a)·op(b): a sum it enters can be made in the product's launch. */
  product?: Product;
}

export interface Product {
  a: Var;
  b: Var;
  transposeA: boolean;
  transposeB: boolean;
}

export class Var {
  #tensor: Tensor | undefined;
  #compute: (() => Tensor) | undefined;
  readonly shape: readonly number[];
  readonly batch: number;
  /** What a deferred matmul multiplies (undefined otherwise). */
  readonly product: Product | undefined;

  constructor(
    value: Tensor | Deferred,
    /** Inputs this value was computed from (empty for leaves). */
    readonly parents: readonly Var[],
    /** Maps the gradient of this value to the gradients of its parents (undefined: no gradient). */
    readonly backward: ((grad: Var) => (Var | undefined)[]) | undefined,
    readonly requiresGrad: boolean,
  ) {
    if (value instanceof Tensor) this.#tensor = value;
    else {
      this.#compute = value.compute;
      this.product = value.product;
    }
    this.shape = value.shape;
    this.batch = value.batch;
  }

  /** The tensor, launching the kernels that make it (and its inputs) first if it was deferred. */
  get value(): Tensor {
    if (this.#tensor) return this.#tensor;
    const compute = this.#compute;
    if (!compute) throw new InputError('autodiff', 'value was released by its tape before it was computed');
    const tensor = compute();
    this.#compute = undefined;
    this.#tensor = tensor;
    return tensor;
  }

  /** Deferred and not yet computed. */
  get pending(): boolean {
    return this.#compute !== undefined;
  }

  /** For the owning tape: frees the tensor if it was computed; a pending value can no longer be. */
  release(): void {
    this.#compute = undefined;
    this.#tensor?.dispose();
  }
}
