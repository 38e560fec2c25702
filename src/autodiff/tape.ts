/**
 * Reverse-mode autodiff over the engine's batched tensor ops. Every op's VJP is itself written with
 * taped ops, so a gradient is differentiable again: the Hessian-vector product is the gradient of
 * ⟨∇L, v⟩ (double backward), exact up to float rounding.
 *
 * All values carry the replica dimension: a loss of batch R is R independent losses, and seeding the
 * backward pass with ones gives each replica the gradient of its own loss.
 *
 * The house: value.ts holds a value (tensor or deferred launch) with its parents and VJP; this file
 * the tape (ownership, deferral) and its op methods; ops-*.ts each op family's forward launch and
 * gradient rules; backward.ts the reverse pass that applies them.
 */
import { InputError } from '../errors.ts';
import type { Activation } from '../kernels/matmul.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { gradients, hessianBlockProduct, hessianVectorProducts, reversePass } from './backward.ts';
import { affine, binaryOp, unaryOp } from './ops-elementwise.ts';
import { dense, matmulOp } from './ops-linear.ts';
import { logSumExp, softmax } from './ops-rows.ts';
import { dotOp, mean, rebatch, reshape, sum } from './ops-shape.ts';
import { type Product, Var } from './value.ts';

export { type Deferred, type Product, Var } from './value.ts';

export class Tape {
  /** Tensors created by this tape (and deferred values, whose tensors come later), freed by dispose(). */
  private readonly owned: (Tensor | Var)[] = [];
  /**
   * While set (inside `deferred`), the ops that make gradients record their launch instead of making
   * it. `hvp` defers its first backward pass, whose parameter gradients only seed the second pass.
   */
  private deferring = false;
  /**
   * While a reverse pass runs: the values from which one of its `wrt` can be reached. A VJP rule
   * makes the gradient of an input only when `needsGrad` says so, so a pass taken with respect to
   * some parameters (one block of H·v) skips the branches that lead only to the others.
   */
  private reaching: ReadonlySet<Var> | undefined;

  constructor(readonly engine: Engine) {}

  /** A differentiable leaf over an existing tensor (the tape does not own it). */
  param(t: Tensor): Var {
    return new Var(t, [], undefined, true);
  }

  /** A non-differentiable leaf (data, targets). */
  constant(t: Tensor): Var {
    return new Var(t, [], undefined, false);
  }

  /** For the op modules: a node over a tensor just made, owned by the tape, with its VJP. */
  node(value: Tensor, parents: Var[], backward: (grad: Var) => (Var | undefined)[]): Var {
    const requiresGrad = parents.some((p) => p.requiresGrad);
    return new Var(this.adopt(value), parents, requiresGrad ? backward : undefined, requiresGrad);
  }

  /** For the op modules: a node whose launch waits, while deferring, until its value is read; otherwise made now. */
  deferrable(
    result: () => { shape: readonly number[]; batch: number },
    compute: () => Tensor,
    parents: Var[],
    backward: (grad: Var) => (Var | undefined)[],
    product?: Product,
  ): Var {
    if (!this.deferring) return this.node(compute(), parents, backward);
    const requiresGrad = parents.some((p) => p.requiresGrad);
    const deferred = { ...result(), compute, product };
    const v = new Var(deferred, parents, requiresGrad ? backward : undefined, requiresGrad);
    // Owned from creation, so release(mark) frees it with the tensors made around it.
    this.owned.push(v);
    return v;
  }

  /** Hands a tensor made outside the tape to it, to be freed by dispose(). */
  adopt(t: Tensor): Tensor {
    this.owned.push(t);
    return t;
  }

  /** Takes a result out of the tape's ownership so dispose() leaves it alive (the caller frees it). */
  keep(v: Var): Tensor {
    const value = v.value;
    const index = this.owned.findIndex((entry) => entry === v || entry === value);
    if (index < 0)
      throw new InputError('keep', 'value is not owned by this tape (a view or a leaf); copy it instead');
    this.owned.splice(index, 1);
    return value;
  }

  /** Frees every tensor this tape created (results read back first). */
  dispose(): void {
    for (const entry of this.owned) Tape.free(entry);
    this.owned.length = 0;
  }

  private static free(entry: Tensor | Var): void {
    if (entry instanceof Var) entry.release();
    else entry.dispose();
  }

  /** For the VJP rules: whether the reverse pass now running needs the gradient of input `x`. */
  needsGrad(x: Var): boolean {
    return x.requiresGrad && (this.reaching === undefined || this.reaching.has(x));
  }

  /** For the reverse pass: runs `body` with `reaching` as the values whose gradients are needed. */
  pruned<T>(reaching: ReadonlySet<Var>, body: () => T): T {
    const outer = this.reaching;
    this.reaching = reaching;
    try {
      return body();
    } finally {
      this.reaching = outer;
    }
  }

  // ---- ops (forward launches and VJPs in ops-*.ts) -----------------------------------------------

  /** op(A)·op(B) per replica, optionally + bias (per column). Activations: use relu()/tanh() ops. */
  matmul(a: Var, b: Var, options: { transposeA?: boolean; transposeB?: boolean } = {}): Var {
    return matmulOp(this, a, b, options);
  }

  /**
   * A dense layer act(x·Wᵀ + bias + addend) in one matmul launch (bias per column, or a whole [rows,
   * out] addend such as a recurrent term; not both).
   */
  dense(x: Var, weight: Var, bias: Var | undefined, activation: Activation = 'none', addend?: Var): Var {
    return dense(this, x, weight, bias, activation, addend);
  }

  /** alpha·x + beta·y with numpy broadcasting (bias rows, scalars). */
  add(x: Var, y: Var, alpha = 1, beta = 1): Var {
    return binaryOp(this, 'add', x, y, { alpha, beta });
  }

  /** x − y with broadcasting. */
  sub(x: Var, y: Var): Var {
    return this.add(x, y, 1, -1);
  }

  /** alpha·x∘y with broadcasting (the scale rides along in the same launch). */
  mul(x: Var, y: Var, alpha = 1): Var {
    return binaryOp(this, 'mul', x, y, { alpha });
  }

  /** alpha·x + beta. */
  affine(x: Var, alpha: number, beta = 0): Var {
    return affine(this, x, alpha, beta);
  }

  /** alpha·x. */
  scale(x: Var, alpha: number): Var {
    return this.affine(x, alpha, 0);
  }

  /** x² elementwise. */
  square(x: Var): Var {
    return unaryOp(this, 'square', x);
  }

  /** max(x, 0) elementwise (its second derivative is 0). */
  relu(x: Var): Var {
    return unaryOp(this, 'relu', x);
  }

  /** tanh elementwise. */
  tanh(x: Var): Var {
    return unaryOp(this, 'tanh', x);
  }

  /** eˣ elementwise. */
  exp(x: Var): Var {
    return unaryOp(this, 'exp', x);
  }

  /** Natural log elementwise (x > 0). */
  log(x: Var): Var {
    return unaryOp(this, 'log', x);
  }

  /** x / y with broadcasting. */
  div(x: Var, y: Var): Var {
    return binaryOp(this, 'div', x, y, {});
  }

  /** Softmax over the last axis, one launch per pass (shaders/autodiff.wgsl). */
  softmax(x: Var): Var {
    return softmax(this, x);
  }

  /** log Σ exp over the last axis, as [rows, 1]; stable via the (constant) row max. */
  logSumExp(x: Var): Var {
    return logSumExp(this, x);
  }

  /** Sum over one axis of the per-replica shape, or over everything (→ [1]). */
  sum(x: Var, axis?: number): Var {
    return sum(this, x, axis);
  }

  /** Mean over one axis of the per-replica shape, or over everything (→ [1]). */
  mean(x: Var, axis?: number): Var {
    return mean(this, x, axis);
  }

  /** Per-replica ⟨x, y⟩ over all elements → [1]. */
  dot(x: Var, y: Var): Var {
    return dotOp(this, x, y);
  }

  /** Same memory, another per-replica shape. */
  reshape(x: Var, shape: readonly number[]): Var {
    return reshape(this, x, shape);
  }

  /**
   * Same memory with another replica count and shape: batch R of [B·T, d] is batch R·B of [T, d]
   * (per-sample attention), and batch R of [n] is batch 1 of [R, n].
   */
  rebatch(x: Var, shape: readonly number[], batch: number): Var {
    return rebatch(this, x, shape, batch);
  }

  // ---- differentiation (backward.ts) -----------------------------------------------------------

  /**
   * Gradients of `output` (batch R: one scalar per replica, or seeded with `seed`) with respect to
   * `wrt`; the result is recorded on the tape, so it can be differentiated again.
   */
  grad(output: Var, wrt: readonly Var[], seed?: Var): Var[] {
    return gradients(this, output, wrt, seed);
  }

  /**
   * Reverse pass from several outputs at once, each with its cotangent: the gradients of
   * Σ_k ⟨outputs_k, seeds_k⟩ with respect to `wrt` (zeros where `wrt` is not reached).
   */
  backward(seeds: readonly (readonly [Var, Var])[], wrt: readonly Var[]): Var[] {
    if (this.deferring) return reversePass(this, seeds, wrt);
    // Recorded deferred, so sums of contributions ride in the products that make them, then made
    // now: the caller gets computed values, as from an eager pass.
    const results = this.deferred(() => reversePass(this, seeds, wrt));
    for (const r of results) r.value;
    return results;
  }

  /**
   * Hessian-vector products H·v per replica: the gradient of ⟨∇L, v⟩ (v constant), taken as one
   * reverse pass through the gradient graph seeded with v (no inner-product launches).
   */
  hvp(loss: Var, params: readonly Var[], vectors: readonly Tensor[]): Var[] {
    // The first backward pass waits: its parameter gradients only seed the second pass (through
    // their inputs, never their values), so their launches are never made. What the second pass
    // reads is computed on demand.
    return this.hvpAt(
      this.deferred(() => this.grad(loss, params)),
      params,
      vectors,
    );
  }

  /**
   * Runs `record` with deferred launches: the gradient-making ops it records (matmul, sum,
   * same-shape add, reshapes) launch only when their value is first read, so a value nobody reads
   * costs nothing. Read what you need before changing any input in place or releasing the tape.
   */
  deferred<T>(record: () => T): T {
    const outer = this.deferring;
    this.deferring = true;
    try {
      return record();
    } finally {
      this.deferring = outer;
    }
  }

  /**
   * H·v from gradients already on this tape (`grad(loss, params)`), so one forward and first
   * backward serve many vectors; wrap each call in `mark()`/`release()` to free its tensors.
   */
  hvpAt(gradients: readonly Var[], params: readonly Var[], vectors: readonly Tensor[]): Var[] {
    return hessianVectorProducts(this, gradients, params, vectors);
  }

  /**
   * H_pp·v for parameter `index` alone (the diagonal block of H at it, v in its shape) from gradients
   * already on this tape: the pass of `hvpAt` with v zero elsewhere, pruned to what leads to it.
   */
  hvpBlockAt(gradients: readonly Var[], params: readonly Var[], index: number, vector: Tensor): Var {
    return hessianBlockProduct(this, gradients, params, index, vector);
  }

  /** Position in the tape's owned tensors, for `release`. */
  mark(): number {
    return this.owned.length;
  }

  /** Frees the tensors created since `mark` (results read or copied out first). */
  release(mark: number): void {
    for (const entry of this.owned.splice(mark)) Tape.free(entry);
  }
}
