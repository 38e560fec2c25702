/**
 * Reverse-mode autodiff over the engine's batched tensor ops. Every op's VJP is itself written with
 * taped ops, so a gradient is differentiable again: the Hessian-vector product is the gradient of
 * ⟨∇L, v⟩ (double backward), exact up to float rounding.
 *
 * All values carry the replica dimension: a loss of batch R is R independent losses, and seeding the
 * backward pass with ones gives each replica the gradient of its own loss.
 */
import { InputError } from '../errors.ts';
import { softmaxRows, sumTensors } from '../kernels/autodiff.ts';
import { binary, broadcastTo, fill, unary } from '../kernels/elementwise.ts';
import { type Activation, matmul, matmulShape } from '../kernels/matmul.ts';
import { dot, reduce, reducedShape } from '../kernels/reduce.ts';
import { broadcastBatch, product, sameShape } from '../kernels/shapes.ts';
import { type Engine, Tensor } from '../tensor/engine.ts';

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

export class Tape {
  /** Tensors created by this tape (and deferred values, whose tensors come later), freed by dispose(). */
  private readonly owned: (Tensor | Var)[] = [];
  /**
   * While set (inside `deferred`), the ops that make gradients record their launch instead of making
   * it. `hvp` defers its first backward pass, whose parameter gradients only seed the second pass.
   */
  private deferring = false;

  constructor(readonly engine: Engine) {}

  private own(t: Tensor): Tensor {
    this.owned.push(t);
    return t;
  }

  /** A differentiable leaf over an existing tensor (the tape does not own it). */
  param(t: Tensor): Var {
    return new Var(t, [], undefined, true);
  }

  /** A non-differentiable leaf (data, targets). */
  constant(t: Tensor): Var {
    return new Var(t, [], undefined, false);
  }

  private node(value: Tensor, parents: Var[], backward: (grad: Var) => (Var | undefined)[]): Var {
    const requiresGrad = parents.some((p) => p.requiresGrad);
    return new Var(this.own(value), parents, requiresGrad ? backward : undefined, requiresGrad);
  }

  /** A node whose launch waits, while deferring, until its value is read; otherwise made now. */
  private deferrable(
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
    return this.own(t);
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

  // ---- ops -------------------------------------------------------------------------------------

  /** op(A)·op(B) per replica, optionally + bias (per column). Activations: use relu()/tanh() ops. */
  matmul(a: Var, b: Var, options: { transposeA?: boolean; transposeB?: boolean } = {}): Var {
    const tA = options.transposeA ?? false;
    const tB = options.transposeB ?? false;
    const compute = () => matmul(this.engine, a.value, b.value, { transposeA: tA, transposeB: tB });
    const result = () => {
      const { M, N } = matmulShape(a, b, { transposeA: tA, transposeB: tB });
      return { shape: [M, N], batch: broadcastBatch('matmul', a, b) };
    };
    const backward = (g: Var) => this.productVjp(g, a, b, tA, tB);
    return this.deferrable(result, compute, [a, b], backward, { a, b, transposeA: tA, transposeB: tB });
  }

  /** The gradients of op(a)·op(b) for its two operands, given the gradient g of the product. */
  private productVjp(g: Var, a: Var, b: Var, tA: boolean, tB: boolean): (Var | undefined)[] {
    return [
      a.requiresGrad
        ? this.reduceToBatch(
            tA
              ? this.matmul(b, g, { transposeA: tB, transposeB: true })
              : this.matmul(g, b, { transposeB: !tB }),
            a,
          )
        : undefined,
      b.requiresGrad
        ? this.reduceToBatch(
            tB
              ? this.matmul(g, a, { transposeA: true, transposeB: tA })
              : this.matmul(a, g, { transposeA: !tA }),
            b,
          )
        : undefined,
    ];
  }

  /**
   * A dense layer act(x·Wᵀ + bias + addend) in one matmul launch (bias per column, or a whole [rows,
   * out] addend such as a recurrent term; not both). Its VJP is written with taped ops through the
   * output: relu's mask is out > 0 (⟺ the pre-activation > 0) and tanh's derivative 1 − out².
   */
  dense(x: Var, weight: Var, bias: Var | undefined, activation: Activation = 'none', addend?: Var): Var {
    const value = matmul(this.engine, x.value, weight.value, {
      transposeB: true,
      bias: bias?.value,
      addend: addend?.value,
      activation,
    });
    const extra = bias ?? addend;
    const parents = extra ? [x, weight, extra] : [x, weight];
    const out = this.node(value, parents, (g) => {
      const gz =
        activation === 'relu' ? this.reluMask(g, out) : activation === 'tanh' ? this.tanhScale(g, out) : g;
      return [
        ...this.productVjp(gz, x, weight, false, true),
        extra?.requiresGrad ? this.sumTo(gz, extra) : undefined,
      ];
    });
    return out;
  }

  /** alpha·x + beta·y with numpy broadcasting (bias rows, scalars). */
  add(x: Var, y: Var, alpha = 1, beta = 1): Var {
    const compute = () => binary(this.engine, 'add', x.value, y.value, { alpha, beta });
    const backward = (g: Var) => [
      x.requiresGrad ? this.sumTo(alpha === 1 ? g : this.scale(g, alpha), x) : undefined,
      y.requiresGrad ? this.sumTo(beta === 1 ? g : this.scale(g, beta), y) : undefined,
    ];
    // Only same-shaped sums wait (gradient contributions); broadcasting ones are made now.
    if (x.batch === y.batch && sameShape(x.shape, y.shape))
      return this.deferrable(() => ({ shape: x.shape, batch: x.batch }), compute, [x, y], backward);
    return this.node(compute(), [x, y], backward);
  }

  /** x − y with broadcasting. */
  sub(x: Var, y: Var): Var {
    return this.add(x, y, 1, -1);
  }

  /** alpha·x∘y with broadcasting (the scale rides along in the same launch). */
  mul(x: Var, y: Var, alpha = 1): Var {
    const value = binary(this.engine, 'mul', x.value, y.value, { alpha });
    return this.node(value, [x, y], (g) => [
      x.requiresGrad ? this.sumTo(this.mul(g, y, alpha), x) : undefined,
      y.requiresGrad ? this.sumTo(this.mul(g, x, alpha), y) : undefined,
    ]);
  }

  /** alpha·x + beta. */
  affine(x: Var, alpha: number, beta = 0): Var {
    const value = unary(this.engine, 'affine', x.value, { alpha, beta });
    return this.node(value, [x], (g) => [this.scale(g, alpha)]);
  }

  /** alpha·x. */
  scale(x: Var, alpha: number): Var {
    return this.affine(x, alpha, 0);
  }

  /** x² elementwise. */
  square(x: Var): Var {
    const value = unary(this.engine, 'square', x.value);
    return this.node(value, [x], (g) => [this.mul(g, x, 2)]);
  }

  /** max(x, 0) elementwise (its second derivative is 0). */
  relu(x: Var): Var {
    const value = unary(this.engine, 'relu', x.value);
    return this.node(value, [x], (g) => [this.reluMask(g, x)]);
  }

  /**
   * g where x > 0, else 0: relu's VJP in one launch. The mask is locally constant, so its own VJP is
   * the same mask on the incoming gradient and nothing flows to x (zero almost everywhere).
   */
  private reluMask(g: Var, x: Var): Var {
    const value = binary(this.engine, 'reluBackward', g.value, x.value);
    return this.node(value, [g], (h) => [this.sumTo(this.reluMask(h, x), g)]);
  }

  /** tanh elementwise. */
  tanh(x: Var): Var {
    const value = unary(this.engine, 'tanh', x.value);
    const out = this.node(value, [x], (g) => [this.tanhScale(g, out)]);
    return out;
  }

  /** g·(1 − y²) for y = tanh(x): tanh's VJP in one launch; differentiable in g and y. */
  private tanhScale(g: Var, y: Var): Var {
    const value = binary(this.engine, 'tanhBackward', g.value, y.value);
    return this.node(value, [g, y], (h) => [
      g.requiresGrad ? this.sumTo(this.tanhScale(h, y), g) : undefined,
      // ∂/∂y of g(1 − y²) is −2gy.
      y.requiresGrad ? this.sumTo(this.mul(this.mul(h, g), y, -2), y) : undefined,
    ]);
  }

  /** eˣ elementwise. */
  exp(x: Var): Var {
    const value = unary(this.engine, 'exp', x.value);
    const out = this.node(value, [x], (g) => [this.mul(g, out)]);
    return out;
  }

  /** Natural log elementwise (x > 0). */
  log(x: Var): Var {
    const value = unary(this.engine, 'log', x.value);
    return this.node(value, [x], (g) => [this.div(g, x)]);
  }

  /** x / y with broadcasting. */
  div(x: Var, y: Var): Var {
    const value = binary(this.engine, 'div', x.value, y.value);
    const out = this.node(value, [x, y], (g) => [
      x.requiresGrad ? this.sumTo(this.div(g, y), x) : undefined,
      // ∂(x/y)/∂y = −(x/y)/y
      y.requiresGrad ? this.sumTo(this.scale(this.div(this.mul(g, out), y), -1), y) : undefined,
    ]);
    return out;
  }

  /** Softmax over the last axis, one launch per pass (shaders/autodiff.wgsl). */
  softmax(x: Var): Var {
    const value = softmaxRows(this.engine, 'softmax', x.value);
    const out = this.node(value, [x], (g) => [this.softmaxVjp(g, out)]);
    return out;
  }

  /**
   * s ∘ (g − ⟨g, s⟩) per row: the VJP of softmax with output s, in one launch. Its own VJP: the
   * Jacobian diag(s) − s sᵀ is symmetric, so g gets softmaxVjp(h, s); s gets
   * h ∘ (g − ⟨g, s⟩) − g ⟨h, s⟩ (taped ops).
   */
  private softmaxVjp(g: Var, s: Var): Var {
    if (g.value.length !== s.value.length || !sameShape(g.shape, s.shape))
      throw new InputError('softmax', `gradient ${g.value} does not match the output ${s.value}`);
    const value = softmaxRows(this.engine, 'softmax_backward', g.value, s.value);
    return this.node(value, [g, s], (h) => [
      g.requiresGrad ? this.softmaxVjp(h, s) : undefined,
      s.requiresGrad ? this.softmaxVjpOutputTerm(h, g, s) : undefined,
    ]);
  }

  /**
   * h ∘ (g − ⟨g, s⟩) − g ⟨h, s⟩ per row: the VJP of softmaxVjp(g, s) with respect to s, which every
   * Hessian-vector product through a softmax needs, in one launch (it was seven). Its own VJP, for
   * third derivatives, in taped ops: with a = ⟨g, s⟩, b = ⟨h, s⟩ and incoming u,
   *   h gets u ∘ (g − a) − s ⟨u, g⟩;  g gets u ∘ (h − b) − s ⟨u, h⟩;  s gets −g ⟨u, h⟩ − h ⟨u, g⟩.
   */
  private softmaxVjpOutputTerm(h: Var, g: Var, s: Var): Var {
    const value = softmaxRows(this.engine, 'softmax_backward_output', g.value, s.value, h.value);
    return this.node(value, [h, g, s], (u) => {
      const rowDot = (a: Var, b: Var) => this.keepLastAxis(this.sum(this.mul(a, b), -1), s);
      const ug = rowDot(u, g);
      const uh = rowDot(u, h);
      return [
        h.requiresGrad ? this.sub(this.mul(u, this.sub(g, rowDot(g, s))), this.mul(s, ug)) : undefined,
        g.requiresGrad ? this.sub(this.mul(u, this.sub(h, rowDot(h, s))), this.mul(s, uh)) : undefined,
        s.requiresGrad ? this.scale(this.add(this.mul(g, uh), this.mul(h, ug)), -1) : undefined,
      ];
    });
  }

  /** log Σ exp over the last axis, as [rows, 1]; stable via the (constant) row max. */
  logSumExp(x: Var): Var {
    const max = this.rowMax(x);
    return this.add(this.log(this.keepLastAxis(this.sum(this.exp(this.sub(x, max)), -1), x)), max);
  }

  /** Row maxima as a constant [.., 1] (used only as a shift, so it needs no gradient). */
  private rowMax(x: Var): Var {
    const max = this.own(reduce(this.engine, 'max', x.value, { axis: -1 }));
    return this.constant(this.engine.view(max, [...x.shape.slice(0, -1), 1], x.batch));
  }

  /** Reinserts a reduced last axis as size 1 so it broadcasts across x's last axis. */
  private keepLastAxis(reduced: Var, x: Var): Var {
    return this.reshape(reduced, [...x.shape.slice(0, -1), 1]);
  }

  /** Sum over one axis of the per-replica shape, or over everything (→ [1]). */
  sum(x: Var, axis?: number): Var {
    const result = () => ({ shape: reducedShape(x.shape, axis), batch: x.batch });
    const compute = () => reduce(this.engine, 'sum', x.value, { axis });
    return this.deferrable(result, compute, [x], (g) => [this.expand(g, x, axis)]);
  }

  /** Mean over one axis of the per-replica shape, or over everything (→ [1]). */
  mean(x: Var, axis?: number): Var {
    const len = axis === undefined ? product(x.shape) : x.shape[axis < 0 ? x.shape.length + axis : axis];
    return this.scale(this.sum(x, axis), 1 / len);
  }

  /** Per-replica ⟨x, y⟩ over all elements → [1]. */
  dot(x: Var, y: Var): Var {
    const value = dot(this.engine, x.value, y.value);
    return this.node(value, [x, y], (g) => [
      x.requiresGrad ? this.sumTo(this.mul(y, g), x) : undefined,
      y.requiresGrad ? this.sumTo(this.mul(x, g), y) : undefined,
    ]);
  }

  // ---- broadcasting helpers (differentiable) ---------------------------------------------------

  /** Broadcasts g (the reduced value) back to x's shape: the VJP of a sum. */
  private expand(g: Var, x: Var, axis: number | undefined): Var {
    let source = g;
    if (axis !== undefined) {
      const a = axis < 0 ? x.shape.length + axis : axis;
      // Reinsert the reduced axis as size 1 so numpy broadcasting lines the dimensions up.
      const withAxis = [...x.shape.slice(0, a), 1, ...x.shape.slice(a + 1)];
      source = this.reshape(g, withAxis);
    }
    const value = broadcastTo(this.engine, source.value, x.shape, x.batch);
    return this.node(value, [source], (h) => [this.sumTo(h, source)]);
  }

  /** Same memory, another per-replica shape. */
  reshape(x: Var, shape: readonly number[]): Var {
    const view = () => this.engine.view(x.value, shape, x.batch);
    return new Var(
      x.pending ? { shape: [...shape], batch: x.batch, compute: view } : view(),
      [x],
      x.requiresGrad ? (g) => [this.reshape(g, x.shape)] : undefined,
      x.requiresGrad,
    );
  }

  /** Sums a broadcast gradient back to the shape and replica count of `target`. */
  private sumTo(g: Var, target: Var): Var {
    let result = this.reduceToBatch(g, target);
    if (sameShape(result.shape, target.shape)) return result;
    const size = product(target.shape);
    if (size === 1) return this.reshape(this.sum(result), target.shape);
    const trailing = result.shape.slice(result.shape.length - target.shape.length);
    const stripped = target.shape.slice(target.shape.findIndex((d) => d !== 1));
    const resultTrailing = result.shape.slice(result.shape.length - stripped.length);
    if (sameShape(resultTrailing, stripped)) {
      // Leading dimensions were broadcast: fold them into one axis and sum it.
      const rows = product(result.shape) / size;
      result = this.sum(this.reshape(result, [rows, size]), 0);
      return this.reshape(result, target.shape);
    }
    if (
      target.shape.length === result.shape.length &&
      target.shape[target.shape.length - 1] === 1 &&
      sameShape(target.shape.slice(0, -1), trailing.slice(0, -1))
    ) {
      // A column vector broadcast across the last axis.
      return this.reshape(this.sum(result, -1), target.shape);
    }
    throw new InputError('autodiff', `cannot sum a gradient of shape [${g.shape}] back to [${target.shape}]`);
  }

  /**
   * Same memory with another replica count and shape: batch R of [B·T, d] is batch R·B of [T, d]
   * (per-sample attention), and batch R of [n] is batch 1 of [R, n].
   */
  rebatch(x: Var, shape: readonly number[], batch: number): Var {
    const view = () => this.engine.view(x.value, shape, batch);
    return new Var(
      x.pending ? { shape: [...shape], batch, compute: view } : view(),
      [x],
      x.requiresGrad ? (g) => [this.rebatch(g, x.shape, x.batch)] : undefined,
      x.requiresGrad,
    );
  }

  /** Sums over replicas when the operand was shared (batch 1) by a batched result. */
  private reduceToBatch(g: Var, target: Var): Var {
    if (g.batch === target.batch) return g;
    if (target.batch !== 1)
      throw new InputError(
        'autodiff',
        `gradient batch ${g.batch} does not match operand batch ${target.batch}`,
      );
    return this.reshape(this.sum(this.rebatch(g, [g.batch, product(g.shape)], 1), 0), target.shape);
  }

  private zerosLike(x: Var): Var {
    const zeros = this.own(this.engine.empty(x.shape, { batch: x.batch }));
    fill(this.engine, zeros, 0);
    return this.constant(zeros);
  }

  // ---- differentiation -------------------------------------------------------------------------

  /**
   * Gradients of `output` (batch R: one scalar per replica, or seeded with `seed`) with respect to
   * `wrt`; the result is recorded on the tape, so it can be differentiated again.
   */
  grad(output: Var, wrt: readonly Var[], seed?: Var): Var[] {
    if (product(output.shape) !== 1 && !seed)
      throw new InputError(
        'grad',
        `output must be one value per replica, got [${output.shape}]; pass a seed`,
      );
    let start = seed;
    if (!start) {
      const ones = this.own(this.engine.empty(output.shape, { batch: output.batch }));
      fill(this.engine, ones, 1);
      start = this.constant(ones);
    }
    return this.backward([[output, start]], wrt);
  }

  /**
   * Reverse pass from several outputs at once, each with its cotangent: the gradients of
   * Σ_k ⟨outputs_k, seeds_k⟩ with respect to `wrt` (zeros where `wrt` is not reached).
   */
  backward(seeds: readonly (readonly [Var, Var])[], wrt: readonly Var[]): Var[] {
    if (this.deferring) return this.reversePass(seeds, wrt);
    // Recorded deferred, so sums of contributions ride in the products that make them, then made
    // now: the caller gets computed values, as from an eager pass.
    const results = this.deferred(() => this.reversePass(seeds, wrt));
    for (const r of results) r.value;
    return results;
  }

  private reversePass(seeds: readonly (readonly [Var, Var])[], wrt: readonly Var[]): Var[] {
    const order: Var[] = [];
    const seen = new Set<Var>();
    const visit = (v: Var) => {
      if (seen.has(v) || !v.requiresGrad) return;
      seen.add(v);
      for (const p of v.parents) visit(p);
      order.push(v);
    };
    // Contributions per node, summed once when the node is reached (reverse topological order: all
    // of them have arrived by then).
    const contributions = new Map<Var, Var[]>();
    const contribute = (v: Var, g: Var) => {
      const list = contributions.get(v);
      if (list) list.push(g);
      else contributions.set(v, [g]);
    };
    for (const [output, seed] of seeds) {
      visit(output);
      contribute(output, seed);
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const v = order[i];
      const list = contributions.get(v);
      if (!list || !v.backward) continue;
      const parentGrads = v.backward(this.addAll(list));
      v.parents.forEach((p, k) => {
        const pg = parentGrads[k];
        if (pg && p.requiresGrad) contribute(p, pg);
      });
    }
    return wrt.map((w) => {
      const list = contributions.get(w);
      return list ? this.addAll(list) : this.zerosLike(w);
    });
  }

  /** Σ of gradient contributions: up to six of the same shape and batch in one launch, else pairwise. */
  private addAll(terms: readonly Var[]): Var {
    if (terms.length === 1) return terms[0];
    const first = terms[0];
    const uniform = terms.every((t) => t.batch === first.batch && sameShape(t.shape, first.shape));
    // A product nobody has read yet absorbs the others as its addend: one launch for both.
    const k = uniform ? terms.findIndex((t) => t.pending && t.product) : -1;
    if (k >= 0) {
      const rest = terms.filter((_, i) => i !== k);
      return this.productPlus(terms[k], this.addAll(rest));
    }
    if (!uniform || terms.length === 2) return terms.slice(1).reduce((acc, t) => this.add(acc, t), first);
    let acc = this.sumOf(terms.slice(0, 6));
    for (let start = 6; start < terms.length; start += 5)
      acc = this.sumOf([acc, ...terms.slice(start, start + 5)]);
    return acc;
  }

  /** p + d where p is a pending product op(a)·op(b): the product's launch adds d (matmul's addend). */
  private productPlus(p: Var, d: Var): Var {
    const { a, b, transposeA, transposeB } = p.product as Product;
    const compute = () => matmul(this.engine, a.value, b.value, { transposeA, transposeB, addend: d.value });
    return this.deferrable(
      () => ({ shape: p.shape, batch: p.batch }),
      compute,
      [p, d],
      (h) => [h, h],
    );
  }

  /** One launch of shaders/autodiff.wgsl `sum_n` over 2…6 same-shaped terms; each term's VJP is the incoming gradient. */
  private sumOf(terms: readonly Var[]): Var {
    const first = terms[0];
    const compute = () => {
      // The output is taken from the pool before the terms are made, as when the launch was inline.
      const out = this.engine.empty(first.shape, { batch: first.batch });
      return sumTensors(
        this.engine,
        out,
        terms.map((t) => t.value),
      );
    };
    const result = () => ({ shape: first.shape, batch: first.batch });
    return this.deferrable(result, compute, [...terms], (h) => terms.map(() => h));
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
    if (vectors.length !== params.length)
      throw new InputError('hvp', `${vectors.length} vectors for ${params.length} parameters`);
    if (gradients.length !== params.length)
      throw new InputError('hvp', `${gradients.length} gradients for ${params.length} parameters`);
    const seeds: [Var, Var][] = [];
    gradients.forEach((g, i) => {
      const v = vectors[i];
      if (v.size !== product(g.shape) || (v.batch !== g.batch && g.batch !== 1))
        throw new InputError(`hvp.vectors[${i}]`, `expected batch ${g.batch} of [${g.shape}], got ${v}`);
      // A gradient that does not depend on the parameters contributes nothing (H = 0 there).
      if (g.requiresGrad) seeds.push([g, this.constant(this.engine.view(v, g.shape, v.batch))]);
    });
    return this.backward(seeds, params);
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
