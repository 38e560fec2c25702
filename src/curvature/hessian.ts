/**
 * The curvature API in the style of PyHessian / curvlinops: `hessian({ engine, model, loss, data,
 * params })` gives an operator over your own model, loss and data with `apply`, `trace`,
 * `eigenvalues`, `density`, `dense`, `diagonal`, `block`/`blocks` and `gradientMoments`, every
 * result per replica (a parameter tensor of batch R holds R networks, measured in one batched HVP).
 * A thin, typed facade over HessianOperator, hessianTrace/exactTrace, topEigenvalues,
 * spectralDensity, denseHessian and gradientFluctuation: CPU arrays in, plain numbers out.
 * Conventions: the loss is one value per replica, the MEAN over the rows of `data` of a per-sample
 * loss; vectors are flat, parameters in `model.parameters` order, each row-major.
 */
import { Tape } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';
import { type FusedCurvature, fusedCurvature } from '../kernels/fused-hvp.ts';
import { type LossFunction, type LossKind, lossFunction } from '../models/losses.ts';
import { isBuiltModel, type ModelDefinition } from '../models/model.ts';
import { type Engine, Tensor } from '../tensor/engine.ts';
import { denseHessian } from './dense.ts';
import { type DensityOptions, type DensityResult, spectralDensity } from './density.ts';
import {
  type FluctuationOptions,
  type FluctuationResult,
  gradientFluctuation,
  minibatchGradientSquared,
} from './fluctuation.ts';
import { type EigenOptions, type EigenResult, topEigenvalues } from './lanczos.ts';
import { type EvaluationData, HessianOperator, type LossClosure } from './operator.ts';
import { exactTrace, hessianTrace, type TraceOptions } from './trace.ts';

/**
 * An array on the CPU or the GPU: a Tensor (batch 1 = shared by every replica, or R), rows of
 * numbers, or flat values with their shape (row-major; `values.length` a multiple of the shape's
 * size: that many replicas).
 */
export type ArrayInput =
  | Tensor
  | readonly (readonly number[])[]
  | { values: ArrayLike<number>; shape: readonly number[] };

export interface HessianRequest {
  engine: Engine;
  /** Your model (`{ parameters, forward }`) or a built-in one (`buildModel`). */
  model: ModelDefinition;
  /** 'mse' (½‖f − y‖²), 'cross-entropy' (soft targets), or your own loss over tape ops. */
  loss: LossKind | LossFunction;
  /** The evaluation set: inputs x [rows, features] and targets y [rows, outputs]. */
  data: { x: ArrayInput; y: ArrayInput };
  /**
   * The point: one entry per model parameter, a Tensor of batch R or its values (R·size numbers,
   * replica-major). Every parameter must have the same replica count R.
   */
  params: readonly (Tensor | ArrayLike<number>)[];
}

export interface HessianTraceOptions extends TraceOptions {
  /** 'hutchinson' (default: Rademacher probes, with a standard error) or 'exact' (n HVPs, e_iᵀ H e_i). */
  method?: 'hutchinson' | 'exact';
}

export interface HessianTrace {
  method: 'hutchinson' | 'exact';
  /** Per replica: Tr H (the estimate, for Hutchinson). */
  trace: number[];
  /** Per replica: standard error of the estimate (0 when exact). */
  standardError: number[];
  /** Per replica: probes used (n when exact). */
  probes: number[];
}

export interface HessianEigenOptions extends Omit<EigenOptions, 'ritzVectors'> {
  /** How many eigenvalues (default 1). */
  k?: number;
  /** Also return the eigenvectors (Ritz vectors, unit norm, flat parameter order). */
  vectors?: boolean;
}

/** Lanczos's eigenvalues, residuals ‖Hx − θx‖, convergence and HVPs per replica, and the vectors. */
export interface HessianEigen extends Pick<EigenResult, 'values' | 'residuals' | 'converged' | 'hvps'> {
  /** Per replica, when asked: k vectors of n values (unit norm, flat parameter order). */
  vectors?: Float32Array[][];
}

export interface BlockCurvature {
  /** The parameters of this block. */
  names: string[];
  /** Parameters in the block. */
  size: number;
  /** Per replica: Tr H_block (exact when size ≤ exactTraceMax, else Hutchinson). */
  trace: number[];
  traceStandardError: number[];
  /** Per replica: the largest eigenvalue of H_block (Lanczos). */
  lambdaMax: number[];
}

export interface GradientMoments extends FluctuationResult {
  /** Per replica, per parameter (flat order): (1/n) Σ_i (∂ℓ_i/∂θ_j)², the per-sample gradients' second moment. */
  secondMoments: Float32Array[];
  /** E‖ḡ_B‖² per replica of a minibatch of B rows drawn from the set (with replacement by default). */
  minibatch(batchSize: number, options?: { replacement?: boolean }): number[];
}

/** Names under which a block's fixed parameters travel in its evaluation data. */
const FIXED_PREFIX = 'fixed parameter ';

/** Blocks up to this many parameters get an exact trace in `blocks()` (n HVPs). */
export const BLOCK_EXACT_TRACE_MAX = 256;

function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Uploads an array input; `owned` collects the tensors made here. */
function toTensor(engine: Engine, input: ArrayInput, field: string, owned: Tensor[]): Tensor {
  if (input instanceof Tensor) return input;
  let values: ArrayLike<number>;
  let shape: readonly number[];
  if (Array.isArray(input)) {
    const rows = input as readonly (readonly number[])[];
    const width = rows[0]?.length ?? 0;
    if (rows.length === 0 || width === 0)
      throw new InputError(field, 'must have at least one row and column');
    rows.forEach((row, i) => {
      if (row.length !== width)
        throw new InputError(`${field}[${i}]`, `has ${row.length} values; row 0 has ${width}`);
    });
    values = rows.flat();
    shape = [rows.length, width];
  } else {
    ({ values, shape } = input as { values: ArrayLike<number>; shape: readonly number[] });
  }
  const size = shapeSize(shape);
  if (!(size > 0) || values.length % size !== 0)
    throw new InputError(field, `${values.length} values do not fill whole [${shape}] arrays`);
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i])) throw new InputError(field, `value ${i} is ${values[i]}`);
  const t = engine.tensor(values, shape, { batch: values.length / size, label: field });
  owned.push(t);
  return t;
}

/** The Hessian of `loss(model(x), y)` at `params`, for every replica: see the class for what it offers. */
export function hessian(request: HessianRequest): Hessian {
  const { engine, model } = request;
  if (!model || !Array.isArray(model.parameters) || typeof model.forward !== 'function')
    throw new InputError('model', 'must be { parameters, forward(tape, params, x) }');
  if (!Array.isArray(request.params) || request.params.length !== model.parameters.length)
    throw new InputError(
      'params',
      `expected ${model.parameters.length} entries (one per model parameter), got ${request.params?.length}`,
    );
  const lossOf = typeof request.loss === 'function' ? request.loss : lossFunction(request.loss);
  const owned: Tensor[] = [];
  try {
    const params = request.params.map((p, i) => {
      const spec = model.parameters[i];
      const field = `params[${i}] (${spec.name})`;
      const t = p instanceof Tensor ? p : toTensor(engine, { values: p, shape: spec.shape }, field, owned);
      if (t.size !== shapeSize(spec.shape))
        throw new InputError(field, `has ${t.size} values per replica; ${spec.name} is [${spec.shape}]`);
      return t.shape.length === spec.shape.length ? t : engine.view(t, spec.shape, t.batch);
    });
    const data = {
      x: toTensor(engine, request.data?.x, 'data.x', owned),
      y: toTensor(engine, request.data?.y, 'data.y', owned),
    };
    if (data.x.shape[0] !== data.y.shape[0])
      throw new InputError('data.y', `has ${data.y.shape[0]} rows; data.x has ${data.x.shape[0]}`);
    const closure: LossClosure = (tape, p, d) => lossOf(tape, model.forward(tape, p, d.x), d.y);
    // A built-in model under a built-in loss: the fused curvature kernels where they cover it.
    const fused =
      typeof request.loss === 'string' && isBuiltModel(model)
        ? fusedCurvature(model.spec, request.loss)
        : undefined;
    return new Hessian(
      engine,
      model.parameters.map((p) => p.name),
      params,
      closure,
      data,
      owned,
      false,
      fused,
    );
  } catch (error) {
    for (const t of owned) t.dispose();
    throw error;
  }
}

/** A Hessian operator over named parameters (all of a model's, or a block of them). Call `dispose()`. */
export class Hessian {
  /** The underlying operator (GPU vectors: applyFlat, pack/unpack, atPoint). */
  readonly operator: HessianOperator;

  constructor(
    readonly engine: Engine,
    /** Parameter names, in order. */
    readonly names: readonly string[],
    private readonly params: readonly Tensor[],
    private readonly loss: LossClosure,
    private readonly data: EvaluationData,
    private readonly owned: Tensor[],
    /** A block of a larger Hessian (its data carries the fixed parameters). */
    readonly isBlock = false,
    /** The model and loss, for the fused curvature kernels (see HessianSpec.fused). */
    fused?: FusedCurvature,
  ) {
    this.operator = HessianOperator.create(engine, { params, loss, evaluation: { data }, fused });
  }

  /** n: parameters per replica. */
  get size(): number {
    return this.operator.size;
  }

  /** R: replicas. */
  get replicas(): number {
    return this.operator.replicas;
  }

  /** Where each parameter starts in a flat vector, and its shape. */
  get layout(): { name: string; offset: number; shape: readonly number[] }[] {
    const { offsets, shapes } = this.operator.layout;
    return this.names.map((name, i) => ({ name, offset: offsets[i], shape: shapes[i] }));
  }

  /** H·v per replica: v is one flat vector of n (for every replica) or one per replica. */
  async apply(v: ArrayLike<number> | readonly ArrayLike<number>[]): Promise<Float32Array[]> {
    const n = this.size;
    const R = this.replicas;
    const perReplica =
      Array.isArray(v) && typeof v[0] !== 'number' ? (v as readonly ArrayLike<number>[]) : undefined;
    const vectors = perReplica ?? Array.from({ length: R }, () => v as ArrayLike<number>);
    if (vectors.length !== R)
      throw new InputError('v', `expected ${R} vectors (one per replica), got ${vectors.length}`);
    const flat = new Float32Array(R * n);
    vectors.forEach((vector, r) => {
      if (vector.length !== n)
        throw new InputError('v', `has ${vector.length} values; the Hessian is ${n}×${n}`);
      flat.set(Array.from(vector), r * n);
    });
    const input = this.engine.tensor(flat, [n], { batch: R, label: 'hessian.apply v' });
    try {
      const output = this.operator.applyFlat(input);
      const all = (await output.read()) as Float32Array;
      output.dispose();
      return Array.from({ length: R }, (_, r) => all.slice(r * n, (r + 1) * n));
    } finally {
      input.dispose();
    }
  }

  /** ∇L per replica at the point (flat, parameter order): the loss's gradient, not the Hessian's. */
  async gradient(): Promise<Float32Array[]> {
    const tape = new Tape(this.engine);
    const out = this.engine.empty([this.size], { batch: this.replicas });
    try {
      const { params, loss } = this.operator.build(tape);
      this.operator.pack(
        tape.grad(loss, params).map((g) => g.value),
        out,
      );
      const all = (await out.read()) as Float32Array;
      return Array.from({ length: this.replicas }, (_, r) => all.slice(r * this.size, (r + 1) * this.size));
    } finally {
      out.dispose();
      tape.dispose();
    }
  }

  /** Tr H per replica: Hutchinson with a standard error (default), or exact from n HVPs. */
  async trace(options: HessianTraceOptions = {}): Promise<HessianTrace> {
    const { method = 'hutchinson', ...rest } = options;
    if (method === 'exact') {
      const exact = await exactTrace(this.operator);
      return {
        method,
        trace: exact.trace,
        standardError: exact.trace.map(() => 0),
        probes: exact.trace.map(() => this.size),
      };
    }
    if (method !== 'hutchinson')
      throw new InputError('method', `must be 'hutchinson' or 'exact', got ${method}`);
    const estimate = await hessianTrace(this.operator, rest);
    return {
      method,
      trace: estimate.estimate,
      standardError: estimate.standardError,
      probes: estimate.probes,
    };
  }

  /** The k wanted eigenvalues per replica (Lanczos, full reorthogonalisation), with residuals and optionally vectors. */
  async eigenvalues(options: HessianEigenOptions = {}): Promise<HessianEigen> {
    const { k = 1, vectors = false, ...rest } = options;
    const result = await topEigenvalues(this.operator, k, { ...rest, ritzVectors: vectors });
    const out: HessianEigen = {
      values: result.values,
      residuals: result.residuals,
      converged: result.converged,
      hvps: result.hvps,
    };
    if (result.vectors) {
      const all = (await result.vectors.read()) as Float32Array;
      result.vectors.dispose();
      const n = this.size;
      out.vectors = Array.from({ length: this.replicas }, (_, r) =>
        Array.from({ length: k }, (_, i) => all.slice((r * k + i) * n, (r * k + i + 1) * n)),
      );
    }
    return out;
  }

  /** Spectral density per replica by stochastic Lanczos quadrature (integrates to 1 over the grid). */
  density(options: DensityOptions = {}): Promise<DensityResult> {
    return spectralDensity(this.operator, options);
  }

  /** The dense n×n Hessian per replica (rows of H e_i; small models: n ≤ 4096). */
  dense(): Promise<number[][][]> {
    return denseHessian(this.operator);
  }

  /** The diagonal H_ii per replica, exactly (n HVPs with unit vectors). */
  async diagonal(): Promise<number[][]> {
    return (await exactTrace(this.operator)).diagonal;
  }

  /**
   * The Hessian restricted to the named parameters (the block H_SS: the others held fixed), as an
   * operator of its own; dispose it when done.
   */
  block(names: readonly string[]): Hessian {
    if (!Array.isArray(names) || names.length === 0)
      throw new InputError('names', 'name at least one parameter');
    const indices = names.map((name) => {
      const i = this.names.indexOf(name);
      if (i < 0)
        throw new InputError('names', `no parameter '${name}' (parameters: ${this.names.join(', ')})`);
      return i;
    });
    if (new Set(indices).size !== indices.length) throw new InputError('names', 'names a parameter twice');
    // The other parameters ride along as per-replica data, so the operator repeats them with the
    // chosen ones when it batches probe copies.
    const fixed = (i: number) => `${FIXED_PREFIX}${i}`;
    const data: Record<string, Tensor> = { ...this.data };
    this.params.forEach((p, i) => {
      if (!indices.includes(i)) data[fixed(i)] = p;
    });
    const loss: LossClosure = (tape, chosen, d) => {
      const all = this.params.map((_, i) => d[fixed(i)]);
      indices.forEach((index, j) => {
        all[index] = chosen[j];
      });
      return this.loss(tape, all, d);
    };
    return new Hessian(
      this.engine,
      indices.map((i) => this.names[i]),
      indices.map((i) => this.params[i]),
      loss,
      data,
      [],
      true,
    );
  }

  /**
   * Per-block curvature (PyHessian's per-layer eigenvalues): for each group of parameter names
   * (default: each parameter alone), Tr H_block and λ_max(H_block) per replica.
   */
  async blocks(
    groups: readonly (string | readonly string[])[] = this.names,
    options: { seed?: number; probes?: number; tolerance?: number } = {},
  ): Promise<BlockCurvature[]> {
    const results: BlockCurvature[] = [];
    for (const group of groups) {
      const names = typeof group === 'string' ? [group] : [...group];
      const block = this.block(names);
      try {
        const trace = await block.trace({
          method: block.size <= BLOCK_EXACT_TRACE_MAX ? 'exact' : 'hutchinson',
          ...(block.size > BLOCK_EXACT_TRACE_MAX ? { probes: options.probes, seed: options.seed } : {}),
        });
        const top = await block.eigenvalues({ k: 1, seed: options.seed, tolerance: options.tolerance });
        results.push({
          names,
          size: block.size,
          trace: trace.trace,
          traceStandardError: trace.standardError,
          lambdaMax: top.values.map((v) => v[0]),
        });
      } finally {
        block.dispose();
      }
    }
    return results;
  }

  /**
   * Gradient moments per replica, exactly over the rows: the fluctuation S = mean_i ‖∇ℓ_i‖² with its
   * standard error, ‖ḡ‖² of the full-batch gradient, every ‖∇ℓ_i‖², the per-parameter second
   * moments mean_i (∂ℓ_i/∂θ_j)² (they sum to S), and `minibatch(B)` = E‖ḡ_B‖².
   */
  async gradientMoments(options: FluctuationOptions = {}): Promise<GradientMoments> {
    if (this.isBlock)
      throw new InputError('gradientMoments', 'is measured on the whole Hessian, not on a block');
    const R = this.replicas;
    const moments = this.operator.layout.shapes.map((shape) => this.engine.empty(shape, { batch: R }));
    const flat = this.engine.empty([this.size], { batch: R });
    try {
      const result = await gradientFluctuation(this.operator, { ...options, secondMoments: moments });
      const all = (await this.operator.pack(moments, flat).read()) as Float32Array;
      return {
        ...result,
        secondMoments: Array.from({ length: R }, (_, r) => all.slice(r * this.size, (r + 1) * this.size)),
        minibatch: (batchSize, opts) => minibatchGradientSquared(result, batchSize, opts),
      };
    } finally {
      for (const t of [...moments, flat]) t.dispose();
    }
  }

  /** The loss per replica on the evaluation set. */
  async lossValue(): Promise<number[]> {
    const t = this.operator.lossValue();
    try {
      return Array.from(await t.read());
    } finally {
      t.dispose();
    }
  }

  /** Frees the operator and the tensors uploaded for it (not tensors you passed in). */
  dispose(): void {
    this.operator.dispose();
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
  }
}
