/**
 * The Hessian of a loss over an evaluation set, as an operator on parameter vectors, for every replica
 * at once. A parameter vector is either the list of parameter tensors (each batch B) or one flat
 * vector [n] of batch B (parameters in order, each row-major); `pack`/`unpack` convert with one copy
 * launch per parameter. H·v is the double-backward `Tape.hvp` of the loss built by the caller's closure;
 * inside `atPoint` (Lanczos, power iteration, probe loops) the forward pass and gradient are taped once
 * and each H·v runs only the second reverse pass. Small built-in models skip the tape (`fused`): one
 * kernel per H·v for narrow fully connected nets, one launch of the Hessian's diagonal for small RNNs.
 *
 * Replicas and copies: the operator's parameters have R replicas; `withCopies(c)` gives an operator
 * of batch B = R·c whose replica r·c + j is a copy of replica r (same parameters, same data), so c
 * independent probe vectors per replica go through one batched HVP (Hutchinson, SLQ, exact traces).
 */
import { Tape, type Var } from '../autodiff/tape.ts';
import { InputError, positiveInteger } from '../errors.ts';
import { fill } from '../kernels/elementwise.ts';
import {
  type FusedCurvature,
  type FusedHvpNetwork,
  fusedCurvatureSize,
  fusedHvp,
  fusedRnnDiagonal,
} from '../kernels/fused-hvp.ts';
import { repeatReplicas, stridedCopy } from '../kernels/vectors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

/**
 * Evaluation data: named tensors whose per-replica shape starts with the sample (row) axis; batch 1
 * (one set shared by all replicas) or R (a set per replica). Fixed for the operator's life (its
 * repeats for probe copies are cached); parameters may change between calls.
 */
export type EvaluationData = Readonly<Record<string, Tensor>>;

/**
 * Builds the loss on the tape: one value per replica, the MEAN over the rows of `data` of a per-sample
 * loss (e.g. ½‖f(x) − y‖², see `mseLoss`). Per-sample gradients rely on the mean convention.
 */
export type LossClosure = (tape: Tape, params: readonly Var[], data: Readonly<Record<string, Var>>) => Var;

/** Where samples come from (e.g. `LinearTeacher`): fresh rows per replica from (seed, step). */
export interface SampleSource {
  sample(request: {
    seed: number;
    step: number;
    rows: number;
    replicas: number;
    replicaOffset?: number;
  }): EvaluationData;
}

/** A fixed batch (not owned), or `samples` fresh rows drawn once from a source (owned, disposed). */
export type EvaluationSet =
  | { data: EvaluationData }
  | { source: SampleSource; samples: number; seed: number; step: number; replicaOffset?: number };

export interface HessianSpec {
  /** Parameter tensors, all with the same replica count R (the operator does not own them). */
  params: readonly Tensor[];
  loss: LossClosure;
  evaluation: EvaluationSet;
  /**
   * The same model and loss as `loss`, for the fused curvature kernels (src/kernels/fused-hvp.ts) over
   * the evaluation data `x` and `y`: a small fully connected network's H·v runs in one kernel instead
   * of on the tape; a small RNN's Hessian diagonal (`fusedDiagonal`, the exact trace) too. The caller
   * vouches that it is the closure's model and loss; `lossValue` still uses the closure.
   */
  fused?: FusedCurvature;
}

/** Offsets of the parameters within the flat vector (row-major, in order). */
export interface ParameterLayout {
  shapes: readonly (readonly number[])[];
  sizes: readonly number[];
  offsets: readonly number[];
  /** n: number of parameters per replica. */
  size: number;
}

export function parameterLayout(params: readonly Tensor[]): ParameterLayout {
  const shapes = params.map((p) => p.shape);
  const sizes = params.map((p) => p.size);
  const offsets: number[] = [];
  let size = 0;
  for (const s of sizes) {
    offsets.push(size);
    size += s;
  }
  return { shapes, sizes, offsets, size };
}

/** A fused network must match the parameters and find inputs x [rows, d] and targets y [rows, m]. */
function checkFused(fused: FusedCurvature, params: readonly Tensor[], data: EvaluationData): void {
  const n = params.reduce((sum, p) => sum + p.size, 0);
  if (fusedCurvatureSize(fused) !== n)
    throw new InputError('fused', `describes ${fusedCurvatureSize(fused)} parameters; the model has ${n}`);
  const features = fused.kind === 'rnn' ? fused.sequenceLength * fused.inputDim : fused.widths[0];
  const outputs = fused.kind === 'rnn' ? fused.outputDim : fused.widths[fused.widths.length - 1];
  const { x, y } = data;
  const rows = x?.shape[0];
  if (x?.shape.length !== 2 || x.shape[1] !== features)
    throw new InputError('evaluation.data.x', `the fused kernels need inputs [rows, ${features}]`);
  if (y?.shape.length !== 2 || y.shape[0] !== rows || y.shape[1] !== outputs)
    throw new InputError('evaluation.data.y', `the fused kernels need targets [${rows}, ${outputs}]`);
}

function checkData(data: EvaluationData, replicas: number): void {
  for (const [name, t] of Object.entries(data)) {
    if (t.batch !== 1 && t.batch !== replicas)
      throw new InputError(
        `evaluation.data.${name}`,
        `has batch ${t.batch}; must be 1 (shared) or ${replicas} (one set per replica)`,
      );
    if (t.isDisposed) throw new InputError(`evaluation.data.${name}`, 'was disposed');
  }
}

/**
 * Repeated evaluation data up to this many floats (64 MiB) is kept across `withCopies` calls: the
 * quick anisotropy sweep's RNN batch (48 replicas × 32 copies × 200 rows × 40 floats ≈ 12 M) was
 * copied afresh at every log point (≈ 5 % of its kernel time) under the former 4 MiB cap.
 */
const CACHED_REPEAT_FLOATS = 2 ** 24;

export class HessianOperator {
  /** Hessian-vector products launched by this operator (each covers every replica and copy). */
  hvps = 0;
  readonly layout: ParameterLayout;
  /** Evaluation data repeated for a number of copies, kept while small (see `repeatedData`). */
  private readonly repeats = new Map<number, EvaluationData>();
  /** The taped forward pass and gradient reused by every H·v inside `atPoint`. */
  private point: { tape: Tape; params: Var[]; gradients: Var[]; loss: Var } | undefined;
  /** With a fused network: the parameters packed flat once inside `atPoint`. */
  private fusedTheta: Tensor | undefined;

  private constructor(
    readonly engine: Engine,
    /** Parameters of batch `batch` (copies materialised when copies > 1). */
    readonly params: readonly Tensor[],
    readonly loss: LossClosure,
    readonly data: EvaluationData,
    /** R: replicas of the original parameters. */
    readonly replicas: number,
    /** c: copies of every replica (probe vectors per HVP launch). */
    readonly copies: number,
    /** Tensors this operator disposes (drawn data, repeated parameters and data). */
    private readonly owned: Tensor[],
    /** H·v by the fused kernel (see HessianSpec.fused). */
    readonly fused?: FusedCurvature,
  ) {
    this.layout = parameterLayout(params);
  }

  /** Validates the parameters and the evaluation set (drawing fresh samples if asked). */
  static create(engine: Engine, spec: HessianSpec): HessianOperator {
    const { params } = spec;
    if (!Array.isArray(params) || params.length === 0)
      throw new InputError('params', 'expected at least one parameter tensor');
    const replicas = params[0].batch;
    params.forEach((p, i) => {
      if (p.batch !== replicas)
        throw new InputError(`params[${i}]`, `has batch ${p.batch}; params[0] has ${replicas}`);
      if (p.dtype !== 'f32') throw new InputError(`params[${i}]`, 'must be f32');
      if (p.isDisposed) throw new InputError(`params[${i}]`, 'was disposed');
    });
    if (typeof spec.loss !== 'function')
      throw new InputError('loss', 'must be a closure (tape, params, data)');
    const evaluation = spec.evaluation;
    let data: EvaluationData;
    const owned: Tensor[] = [];
    if ('data' in evaluation) {
      data = evaluation.data;
    } else {
      const { samples } = evaluation;
      positiveInteger('evaluation.samples', samples);
      data = evaluation.source.sample({
        seed: evaluation.seed,
        step: evaluation.step,
        rows: samples,
        replicas,
        replicaOffset: evaluation.replicaOffset,
      });
      owned.push(...Object.values(data));
    }
    checkData(data, replicas);
    if (spec.fused) checkFused(spec.fused, params, data);
    return new HessianOperator(engine, params, spec.loss, data, replicas, 1, owned, spec.fused);
  }

  /** B = R·copies: the replica count of vectors this operator applies to. */
  get batch(): number {
    return this.replicas * this.copies;
  }

  /** n: parameters per replica. */
  get size(): number {
    return this.layout.size;
  }

  /** Rows of the evaluation set (the leading axis of its tensors), or undefined without data. */
  get samples(): number | undefined {
    const first = Object.values(this.data)[0];
    return first?.shape[0];
  }

  /**
   * An operator whose replica r·copies + j is a copy of replica r (parameters and per-replica data
   * repeated once, here). Caller disposes it; it stays valid while the original's inputs are unchanged.
   */
  withCopies(copies: number): HessianOperator {
    positiveInteger('copies', copies);
    if (this.copies !== 1) throw new InputError('copies', 'this operator already has copies');
    if (copies === 1)
      return new HessianOperator(
        this.engine,
        this.params,
        this.loss,
        this.data,
        this.replicas,
        1,
        [],
        this.fused,
      );
    const owned: Tensor[] = [];
    const params = this.params.map((p) => {
      const t = repeatReplicas(this.engine, p, copies);
      owned.push(t);
      return t;
    });
    return new HessianOperator(
      this.engine,
      params,
      this.loss,
      this.repeatedData(copies, owned),
      this.replicas,
      copies,
      owned,
      this.fused,
    );
  }

  /**
   * Per-replica evaluation data repeated `copies` times. Small repeats are kept for the next call with
   * the same count (the evaluation set is fixed: every log point of a run measures on it); larger ones
   * go to `owned`, freed with the copies operator.
   */
  private repeatedData(copies: number, owned: Tensor[]): EvaluationData {
    const cached = this.repeats.get(copies);
    if (cached) return cached;
    const data: Record<string, Tensor> = {};
    const made: Tensor[] = [];
    for (const [name, t] of Object.entries(this.data)) {
      if (t.batch === 1) data[name] = t;
      else {
        data[name] = repeatReplicas(this.engine, t, copies);
        made.push(data[name]);
      }
    }
    const floats = made.reduce((sum, t) => sum + t.length, 0);
    if (floats > 0 && floats <= CACHED_REPEAT_FLOATS) {
      this.repeats.set(copies, data);
      this.owned.push(...made);
    } else owned.push(...made);
    return data;
  }

  /** Runs the closure on a fresh tape: the loss per replica (batch B). Caller disposes the tape. */
  build(tape: Tape): { params: Var[]; loss: Var } {
    const params = this.params.map((p) => tape.param(p));
    const data: Record<string, Var> = {};
    for (const [name, t] of Object.entries(this.data)) data[name] = tape.constant(t);
    const loss = this.loss(tape, params, data);
    if (loss.batch !== this.batch || loss.value.size !== 1)
      throw new InputError(
        'loss',
        `the closure must return one value per replica (batch ${this.batch}, [1]), got ${loss.value}`,
      );
    return { params, loss };
  }

  private checkVectors(v: readonly Tensor[]): void {
    if (v.length !== this.params.length)
      throw new InputError('hessian.apply', `${v.length} vectors for ${this.params.length} parameters`);
    v.forEach((t, i) => {
      if (t.size !== this.layout.sizes[i] || t.batch !== this.batch)
        throw new InputError(
          `hessian.apply[${i}]`,
          `expected batch ${this.batch} of [${this.layout.shapes[i]}], got ${t}`,
        );
    });
  }

  /**
   * Runs `body` with the forward pass and the gradient at the current parameters taped once: every
   * H·v inside it runs only the second reverse pass (the directional part). Parameters and data must
   * not change inside `body`; nested calls share the outer point.
   */
  async atPoint<T>(body: () => Promise<T>): Promise<T> {
    if (this.point || this.fusedTheta) return body();
    if (this.fused?.kind === 'narrow') {
      // The fused kernel needs no tape: the parameters packed once serve every H·v inside (an RNN's
      // H·v stays on the tape).
      this.fusedTheta = this.flatParameters();
      try {
        return await body();
      } finally {
        this.fusedTheta.dispose();
        this.fusedTheta = undefined;
      }
    }
    const tape = new Tape(this.engine);
    try {
      const { params, loss } = this.build(tape);
      // Recorded deferred: the parameter gradients only seed the H·v passes (through their inputs,
      // never their values), so their launches (MNIST's ∂L/∂W₁, as large as its forward) are never made.
      this.point = { tape, params, gradients: tape.deferred(() => tape.grad(loss, params)), loss };
      return await body();
    } finally {
      this.point = undefined;
      tape.dispose();
    }
  }

  /**
   * Computes H·v on the tape of the current point (or a fresh one) and hands it to `use` before its
   * tensors are freed; `hvp` makes the product from the taped gradients and parameters.
   */
  private withHvp(
    hvp: (tape: Tape, gradients: readonly Var[], params: readonly Var[]) => Var[],
    use: (hv: readonly Var[]) => void,
  ): void {
    const point = this.point;
    if (point) {
      const mark = point.tape.mark();
      try {
        use(hvp(point.tape, point.gradients, point.params));
        this.hvps++;
      } finally {
        point.tape.release(mark);
      }
      return;
    }
    const tape = new Tape(this.engine);
    try {
      const { params, loss } = this.build(tape);
      // Deferred, as in atPoint: only what the H·v pass reads of the gradient is launched.
      use(
        hvp(
          tape,
          tape.deferred(() => tape.grad(loss, params)),
          params,
        ),
      );
      this.hvps++;
    } finally {
      tape.dispose();
    }
  }

  /** The parameters as one flat vector ([n], batch B); caller disposes. */
  private flatParameters(): Tensor {
    return this.pack(this.params, this.engine.empty([this.size], { batch: this.batch }));
  }

  /** H·v by the fused kernel for flat v into `target`. */
  private applyFused(fused: FusedHvpNetwork, v: Tensor, target: Tensor): void {
    const theta = this.fusedTheta ?? this.flatParameters();
    try {
      fusedHvp(this.engine, fused, { theta, v, x: this.data.x, y: this.data.y, out: target });
      this.hvps++;
    } finally {
      if (theta !== this.fusedTheta) theta.dispose();
    }
  }

  /**
   * The Hessian's diagonal per replica ([n], batch B; caller disposes) from the fused kernel, where
   * this operator's model has one (a small RNN); undefined otherwise (take it from H·v of unit vectors).
   */
  fusedDiagonal(): Tensor | undefined {
    if (this.fused?.kind !== 'rnn') return undefined;
    const theta = this.fusedTheta ?? this.flatParameters();
    const out = this.engine.empty([this.size], { batch: this.batch });
    try {
      fusedRnnDiagonal(this.engine, this.fused, { theta, x: this.data.x, y: this.data.y, out });
    } finally {
      if (theta !== this.fusedTheta) theta.dispose();
    }
    return out;
  }

  /** H·v per replica for v given as parameter-shaped tensors; returns new tensors (caller disposes). */
  apply(v: readonly Tensor[]): Tensor[] {
    this.checkVectors(v);
    if (this.fused?.kind === 'narrow') {
      const flat = this.pack(v, this.engine.empty([this.size], { batch: this.batch }));
      const product = this.applyFlat(flat);
      try {
        return this.unpack(product);
      } finally {
        flat.dispose();
        product.dispose();
      }
    }
    let result: Tensor[] = [];
    this.withHvp(
      (tape, gradients, params) => tape.hvpAt(gradients, params, v),
      (hv) => {
        // Copy out of the tape (its tensors return to the pool on dispose).
        result = hv.map((h, i) => {
          const out = this.engine.empty(this.layout.shapes[i], { batch: this.batch });
          stridedCopy(this.engine, h.value, out, {
            length: out.size,
            batch: this.batch,
            xBatch: h.batch === 1 ? 0 : out.size,
          });
          return out;
        });
      },
    );
    return result;
  }

  /** H·v per replica for flat vectors v ([n], batch B) into `out` (a new tensor when omitted). */
  applyFlat(v: Tensor, out?: Tensor): Tensor {
    this.checkFlat(v, 'hessian.applyFlat');
    const target = out ?? this.engine.empty([this.size], { batch: this.batch });
    if (out) this.checkFlat(out, 'hessian.applyFlat.out');
    if (this.fused?.kind === 'narrow') {
      this.applyFused(this.fused, v, target);
      return target;
    }
    const parts = this.unpack(v);
    try {
      this.withHvp(
        (tape, gradients, params) => tape.hvpAt(gradients, params, parts),
        (hv) => {
          this.pack(
            hv.map((h) => h.value),
            target,
          );
        },
      );
    } finally {
      for (const p of parts) p.dispose();
    }
    return target;
  }

  /**
   * H_pp·v per replica for parameter `index` alone: the diagonal block of H at that parameter applied
   * to v (its shape or flat, batch B), into `out` (a new tensor when omitted). One reverse pass
   * seeded at that parameter's gradient and pruned to what leads to it: for a vector that is zero
   * outside one parameter (unit vectors, an exact trace) it gives that parameter's part of H·v for
   * a fraction of `applyFlat`'s launches.
   */
  applyBlock(index: number, v: Tensor, out?: Tensor): Tensor {
    const size = this.layout.sizes[index];
    if (size === undefined)
      throw new InputError('hessian.applyBlock', `no parameter ${index} (${this.params.length} parameters)`);
    const field = 'hessian.applyBlock';
    if (v.size !== size || v.batch !== this.batch)
      throw new InputError(
        field,
        `expected batch ${this.batch} of ${size} values (parameter ${index}), got ${v}`,
      );
    if (out && (out.size !== size || out.batch !== this.batch))
      throw new InputError(`${field}.out`, `expected batch ${this.batch} of ${size} values, got ${out}`);
    const target = out ?? this.engine.empty([size], { batch: this.batch });
    if (this.fused?.kind === 'narrow') {
      // One fused H·v of v placed in its block (zero elsewhere), then that block of the product.
      const offset = this.layout.offsets[index];
      const placed = fill(this.engine, this.engine.empty([this.size], { batch: this.batch }), 0);
      stridedCopy(this.engine, v, placed, {
        length: size,
        batch: this.batch,
        xBatch: size,
        outBatch: this.size,
        outOffset: offset,
      });
      const product = this.applyFlat(placed);
      stridedCopy(this.engine, product, target, {
        length: size,
        batch: this.batch,
        xBatch: this.size,
        xOffset: offset,
      });
      placed.dispose();
      product.dispose();
      return target;
    }
    const shape = this.layout.shapes[index];
    this.withHvp(
      (tape, gradients, params) => [
        tape.hvpBlockAt(gradients, params, index, this.engine.view(v, shape, v.batch)),
      ],
      ([h]) => {
        stridedCopy(this.engine, h.value, target, {
          length: size,
          batch: this.batch,
          xBatch: h.batch === 1 ? 0 : size,
        });
      },
    );
    return target;
  }

  checkFlat(v: Tensor, field: string): void {
    if (v.size !== this.size || v.batch !== this.batch)
      throw new InputError(field, `expected a flat vector: batch ${this.batch} of [${this.size}], got ${v}`);
  }

  /** Splits a flat vector ([n], batch B) into new parameter-shaped tensors. */
  unpack(v: Tensor): Tensor[] {
    return this.layout.shapes.map((shape, i) => {
      const out = this.engine.empty(shape, { batch: v.batch });
      stridedCopy(this.engine, v, out, {
        length: this.layout.sizes[i],
        batch: v.batch,
        xBatch: v.size,
        xOffset: this.layout.offsets[i],
      });
      return out;
    });
  }

  /** Writes parameter-shaped tensors (batch B, or 1 = shared) into a flat vector `out` ([n], batch B). */
  pack(parts: readonly Tensor[], out: Tensor): Tensor {
    parts.forEach((t, i) => {
      stridedCopy(this.engine, t, out, {
        length: this.layout.sizes[i],
        batch: out.batch,
        xBatch: t.batch === 1 ? 0 : this.layout.sizes[i],
        outBatch: out.size,
        outOffset: this.layout.offsets[i],
      });
    });
    return out;
  }

  /**
   * The loss per replica on the evaluation set (batch B), as a new tensor: inside `atPoint` the taped
   * forward pass's, else from a forward pass of its own.
   */
  lossValue(): Tensor {
    const out = this.engine.empty([1], { batch: this.batch });
    const copy = (loss: Var) =>
      stridedCopy(this.engine, loss.value, out, { length: 1, batch: this.batch, xBatch: 1 });
    if (this.point) {
      copy(this.point.loss);
      return out;
    }
    const tape = new Tape(this.engine);
    try {
      copy(this.build(tape).loss);
      return out;
    } catch (error) {
      out.dispose();
      throw error;
    } finally {
      tape.dispose();
    }
  }

  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
    this.repeats.clear();
  }
}
