/**
 * Curvature where no closed form exists, as sample estimates with their standard errors. The evaluation
 * set of N samples per replica is held as K chunks, each drawn from its source when used (one chunk's
 * data on the device at a time; its forward pass, tape and probe copies too, so activations stay
 * bounded), or all at once as one batched copy where the chunks run batched. The
 * quantities are those of the loss on all N samples:
 *
 * - Tr H and the loss: per-chunk values combined as batch means; their chunk-to-chunk spread gives the
 *   standard error (sampling of the data and, for Hutchinson, of the probes, drawn afresh per chunk).
 * - λ_max and the top k: Lanczos on H = Σ_k w_k H_k (w_k = m_k / N), the Hessian over all N samples;
 *   the standard error by the delta method, from the chunk-to-chunk spread of the Rayleigh quotients
 *   u_jᵀ H_k u_j at the Ritz vectors u_j (δλ_j ≈ u_jᵀ δH u_j to first order).
 * - S = mean ‖∇ℓ_i‖²: the per-sample values pooled over all chunks, s.e. = s/√N.
 * - ‖∇L‖: the chunks' mean gradients combined; s.e. from the spread of their projections on ∇L/‖∇L‖.
 */
import { Tape } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';
import { accumulate, fill } from '../kernels/elementwise.ts';
import type { FusedCurvature } from '../kernels/fused-hvp.ts';
import { repeatReplicas, stridedCopy } from '../kernels/vectors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { MlMatrix, symmetricEigen } from '../theory/linalg.ts';
import { withFittingCopies } from './copies.ts';
import { denseColumnsPerLaunch, denseHessian, encodeDenseHessian } from './dense.ts';
import { encodeFluctuation, gradientFluctuation } from './fluctuation.ts';
import { topEigenvalues } from './lanczos.ts';
import { type CurvatureRequest, requestSettings } from './measure.ts';
import { type EvaluationData, HessianOperator, type LossClosure, type SampleSource } from './operator.ts';
import { randomVectors, STREAM_LANCZOS } from './probes.ts';
import { exactTrace, hessianTrace } from './trace.ts';
import { tridiagonalEigen } from './tridiagonal.ts';

/** Chunks an evaluation set is split into by default: enough for a batch-means standard error. */
export const DEFAULT_EVALUATION_CHUNKS = 8;
/** Floats of one chunk's rows over all replicas (one row ≈ its widest layer) by default: 16 MiB. */
export const CHUNK_BUDGET_FLOATS = 2 ** 22;

/**
 * Rows per chunk: N split into `chunks` (fewer when N is smaller), smaller still when one chunk's
 * activations (replicas × rows × floatsPerRow) would exceed `CHUNK_BUDGET_FLOATS`.
 */
export function chunkSamples(
  samples: number,
  chunks: number,
  replicas: number,
  floatsPerRow: number,
): number {
  const byCount = Math.ceil(samples / Math.max(1, Math.min(chunks, samples)));
  const byMemory = Math.max(1, Math.floor(CHUNK_BUDGET_FLOATS / Math.max(1, replicas * floatsPerRow)));
  return Math.max(1, Math.min(byCount, byMemory));
}

/** An estimate per replica and its standard error (NaN from a single chunk or sample). */
export interface SampleEstimate {
  value: number[];
  standardError: number[];
}

/**
 * Batch means: Σ_k w_k x_k and its standard error √(K/(K−1) Σ_k w_k² (x_k − x̄)²), which for equal
 * chunks is the sample standard deviation of the x_k over √K.
 */
export function batchMean(
  values: readonly number[],
  weights: readonly number[],
): { mean: number; standardError: number } {
  const K = values.length;
  const mean = values.reduce((sum, x, k) => sum + weights[k] * x, 0);
  if (K < 2) return { mean, standardError: Number.NaN };
  const spread = values.reduce((sum, x, k) => sum + (weights[k] * (x - mean)) ** 2, 0);
  return { mean, standardError: Math.sqrt((K / (K - 1)) * spread) };
}

export interface EvaluationChunksSpec {
  /** Parameter tensors, batch R (not owned). */
  params: readonly Tensor[];
  loss: LossClosure;
  /** Chunk k is `source.sample({ seed, step: k, rows: m_k, replicas: R, replicaOffset })`. */
  source: SampleSource;
  /** N: samples per replica. */
  samples: number;
  /** Rows per chunk (the last chunk takes the rest). */
  chunkSamples: number;
  seed: number;
  replicaOffset?: number;
  /** The loss's small fully connected network, when its H·v may run fused (see HessianSpec.fused). */
  fused?: FusedCurvature;
}

/**
 * An evaluation set of N samples per replica held as chunks. A chunk's data is drawn from the source
 * when it is used (`withChunk`: the same seed and step, so the same rows every time) and freed after,
 * so the chunk-at-a-time route holds one chunk's data on the device; the batched forms (`stack`,
 * `concatenated`) are filled a chunk at a time and share one copy of the whole set.
 */
export class EvaluationChunks {
  /** Every chunk's data side by side as one set of R·K replicas (see `stack`), made on first use. */
  private stackedData: EvaluationData | undefined;
  /** The loss over all N samples at once (see `concatenated`), made on first use. */
  private whole: { operator: HessianOperator; data: Tensor[] } | undefined;

  private constructor(
    readonly engine: Engine,
    readonly chunks: readonly { samples: number }[],
    readonly samples: number,
    private readonly spec: EvaluationChunksSpec,
  ) {}

  /** Checks the spec (parameters, loss and data, by building chunk 0's operator once) and sizes the chunks. */
  static create(engine: Engine, spec: EvaluationChunksSpec): EvaluationChunks {
    const { samples, chunkSamples } = spec;
    if (!Number.isInteger(samples) || samples < 1)
      throw new InputError('samples', `must be a positive integer, got ${samples}`);
    if (!Number.isInteger(chunkSamples) || chunkSamples < 1)
      throw new InputError('chunkSamples', `must be a positive integer, got ${chunkSamples}`);
    const chunks: { samples: number }[] = [];
    for (let start = 0; start < samples; start += chunkSamples)
      chunks.push({ samples: Math.min(chunkSamples, samples - start) });
    const set = new EvaluationChunks(engine, chunks, samples, spec);
    set.chunkOperator(0).dispose();
    return set;
  }

  /** Chunk k's operator over freshly drawn rows (owned: disposing the operator frees them). */
  private chunkOperator(k: number): HessianOperator {
    return HessianOperator.create(this.engine, {
      params: this.spec.params,
      loss: this.spec.loss,
      fused: this.spec.fused,
      evaluation: {
        source: this.spec.source,
        samples: this.chunks[k].samples,
        seed: this.spec.seed,
        step: k,
        replicaOffset: this.spec.replicaOffset,
      },
    });
  }

  /** Runs `use` on chunk k's operator, its data drawn now and freed when `use` is done. */
  async withChunk<T>(k: number, use: (operator: HessianOperator) => T | Promise<T>): Promise<T> {
    const operator = this.chunkOperator(k);
    try {
      return await use(operator);
    } finally {
      operator.dispose();
    }
  }

  /**
   * Copies every chunk's data into tensors made by `allocate` from chunk 0's (name, tensor), one chunk
   * drawn at a time; `place` says where chunk k's part goes.
   */
  private gather(
    allocate: (first: Tensor) => Tensor,
    place: (k: number, part: Tensor) => { xBatch: number; outBatch: number; outOffset: number },
  ): EvaluationData {
    const out: Record<string, Tensor> = {};
    const R = this.replicas;
    try {
      for (let k = 0; k < this.chunks.length; k++) {
        const data = this.spec.source.sample({
          seed: this.spec.seed,
          step: k,
          rows: this.chunks[k].samples,
          replicas: R,
          replicaOffset: this.spec.replicaOffset,
        });
        try {
          for (const [name, part] of Object.entries(data)) {
            out[name] ??= allocate(part);
            stridedCopy(this.engine, part, out[name], { length: part.size, batch: R, ...place(k, part) });
          }
        } finally {
          for (const t of Object.values(data)) t.dispose();
        }
      }
    } catch (error) {
      for (const t of Object.values(out)) t.dispose();
      throw error;
    }
    return out;
  }

  /** Whether there are several chunks, all of the same size (the condition for `stack`). */
  private get stackable(): boolean {
    const m = this.chunks[0].samples;
    return this.chunks.length >= 2 && this.chunks.every((c) => c.samples === m);
  }

  /** The chunks' data as R·K replicas: replica r of chunk k at replica r·K + k. Made on first use. */
  private stackedSet(): EvaluationData {
    const K = this.chunks.length;
    const R = this.replicas;
    this.stackedData ??= this.gather(
      (first) => this.engine.empty(first.shape, { batch: R * K }),
      // part.batch 1: shared data, the same for every r.
      (k, part) => ({
        xBatch: part.batch === 1 ? 0 : part.size,
        outBatch: K * part.size,
        outOffset: k * part.size,
      }),
    );
    return this.stackedData;
  }

  /**
   * The chunks as one operator of R·K replicas — replica r·K + k holds replica r's parameters (copied
   * now: they change between log points) and chunk k's data — so that each pass over all chunks is one
   * batched launch, as over an unchunked set. Only for chunks of equal size; caller disposes.
   */
  stack(): { operator: HessianOperator; dispose(): void } | undefined {
    if (!this.stackable) return undefined;
    const data = this.stackedSet();
    const params = this.spec.params.map((p) => repeatReplicas(this.engine, p, this.chunks.length));
    const operator = HessianOperator.create(this.engine, {
      params,
      loss: this.spec.loss,
      fused: this.spec.fused,
      evaluation: { data },
    });
    return {
      operator,
      dispose() {
        operator.dispose();
        for (const p of params) p.dispose();
      },
    };
  }

  get replicas(): number {
    return this.spec.params[0].batch;
  }

  /** n: parameters per replica. */
  get size(): number {
    return this.spec.params.reduce((sum, p) => sum + p.size, 0);
  }

  /** w_k = m_k / N. */
  get weights(): number[] {
    return this.chunks.map((c) => c.samples / this.samples);
  }

  /**
   * The loss over all N samples as one operator (the chunks' rows one after another): its Hessian is
   * the mean of the chunks' Σ_k w_k H_k, and its Lanczos runs at one taped point with H·v costing one
   * pass, as over an unchunked set. Memory: one tape over all N samples. Equal chunks share the
   * stacked data (replica r's chunks lie one after another there: the same bytes as [N, …] of batch
   * R). Kept until `dispose`.
   */
  concatenated(): HessianOperator {
    if (this.whole) return this.whole.operator;
    const engine = this.engine;
    const R = this.replicas;
    let data: EvaluationData;
    let owned: Tensor[];
    if (this.stackable) {
      const stacked = this.stackedSet();
      data = Object.fromEntries(
        Object.entries(stacked).map(([name, t]) => [
          name,
          engine.view(t, [this.samples, ...t.shape.slice(1)], R),
        ]),
      );
      owned = [];
    } else {
      const starts = this.chunks.map((_, k) =>
        this.chunks.slice(0, k).reduce((sum, c) => sum + c.samples, 0),
      );
      data = this.gather(
        (first) => engine.empty([this.samples, ...first.shape.slice(1)], { batch: R }),
        (k, part) => {
          const rowSize = part.size / this.chunks[k].samples;
          return {
            xBatch: part.batch === 1 ? 0 : part.size,
            outBatch: this.samples * rowSize,
            outOffset: starts[k] * rowSize,
          };
        },
      );
      owned = Object.values(data);
    }
    const operator = HessianOperator.create(engine, {
      params: this.spec.params,
      loss: this.spec.loss,
      fused: this.spec.fused,
      evaluation: { data },
    });
    this.whole = { operator, data: owned };
    return operator;
  }

  dispose(): void {
    if (this.whole) {
      this.whole.operator.dispose();
      for (const t of this.whole.data) t.dispose();
      this.whole = undefined;
    }
    for (const t of Object.values(this.stackedData ?? {})) t.dispose();
    this.stackedData = undefined;
  }
}

/**
 * What `measureCurvature` takes, per chunk: the dense Hessian up to denseMaxParameters (the mean's
 * eigen-solve), the exact trace up to exactTraceMaxParameters, else Hutchinson with `probes` spread
 * over the chunks (at least one each); Lanczos on the mean Hessian. Plus the loss.
 */
export interface SampleEstimateRequest extends CurvatureRequest {
  /** The loss on the evaluation set. */
  loss?: boolean;
  /**
   * Chunks sized by count, so one tape over all N samples fits (default true): λ_max by the toolkit's
   * Lanczos on the loss over all N at once, the chunks batched as replicas where equal. False (chunks
   * small for memory's sake): Lanczos in float64 on the CPU, each H·v summed over the chunks one at a
   * time, each taped afresh.
   */
  holdTapes?: boolean;
  /**
   * Run all chunks as one batched operator of R·K replicas when they have equal sizes and their tapes
   * may be held together (default true); false measures them one at a time.
   */
  stack?: boolean;
}

export interface SampleMeasurement {
  /** N and K. */
  samples: number;
  chunks: number;
  trace?: SampleEstimate;
  lambdaMax?: SampleEstimate;
  /** top[j]: the (j+1)-th largest eigenvalue. */
  top?: SampleEstimate[];
  fluctuation?: SampleEstimate;
  loss?: SampleEstimate;
  gradientNorm?: SampleEstimate;
  methods: { trace?: 'dense' | 'exact' | 'hutchinson'; lambdaMax?: 'dense' | 'lanczos' };
  /** Per replica: every eigenvalue (ascending) of the mean Hessian, when it was formed densely. */
  eigenvalues?: number[][];
}

/** A probe seed per (seed, chunk): chunks draw independent probes. */
function chunkSeed(seed: number, chunk: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + chunk * 0x85ebca6b) >>> 0;
}

/** Combines per-chunk values (values[k][r]) per replica into batch means. */
function combine(
  values: readonly (readonly number[])[],
  weights: readonly number[],
  R: number,
): SampleEstimate {
  const out: SampleEstimate = { value: [], standardError: [] };
  for (let r = 0; r < R; r++) {
    const { mean, standardError } = batchMean(
      values.map((v) => v[r]),
      weights,
    );
    out.value.push(mean);
    out.standardError.push(standardError);
  }
  return out;
}

/** Measures the requested estimates for every replica on an evaluation set held as chunks. */
export async function measureSampleEstimates(
  set: EvaluationChunks,
  request: SampleEstimateRequest,
): Promise<SampleMeasurement> {
  const n = set.size;
  const R = set.replicas;
  const weights = set.weights;
  const { denseMax, exactMax, probes, lanczosSteps, seed, replicaOffset, top } = requestSettings(request, n);
  const eigen = Boolean(request.lambdaMax || top > 0);
  // The probe budget spread over the chunks (at least one each): the H·v passes of an unchunked
  // estimate, and batch means still cover the probes' variance.
  const probesPerChunk = Math.ceil(probes / set.chunks.length);
  const dense = (request.trace || eigen) && n <= denseMax;
  const result: SampleMeasurement = { samples: set.samples, chunks: set.chunks.length, methods: {} };

  const traces: number[][] = [];
  const losses: number[][] = [];
  const gradients: Float64Array[] = [];
  const squares: number[][] = Array.from({ length: R }, () => []);
  // Per chunk and replica: the dense Hessian (n × n), when small enough.
  const hessians: number[][][][] = [];
  const stacked = request.stack !== false && request.holdTapes !== false ? set.stack() : undefined;
  try {
    if (stacked) {
      // All chunks in one batched operator: stacked replica r·K + k is chunk k of replica r.
      const K = set.chunks.length;
      const S = stacked.operator;
      const split = (values: ArrayLike<number>) =>
        Array.from({ length: K }, (_, k) => Array.from({ length: R }, (_, r) => values[r * K + k]));
      // With the loss asked for, one taped forward pass at the stacked point gives it and serves the
      // trace's H·v (run at that point when they need no copies), instead of a forward pass each.
      const measure = async () => {
        if (dense) {
          const H = await denseHessian(S);
          for (let k = 0; k < K; k++) hessians.push(Array.from({ length: R }, (_, r) => H[r * K + k]));
          for (const chunk of hessians)
            traces.push(chunk.map((rows) => rows.reduce((sum, row, i) => sum + row[i], 0)));
        } else if (request.trace) {
          const all =
            n <= exactMax
              ? (await exactTrace(S)).trace
              : (await hessianTrace(S, { probes: probesPerChunk, seed, replicaOffset: replicaOffset * K }))
                  .estimate;
          traces.push(...split(all));
        }
        if (request.fluctuation) {
          const f = await gradientFluctuation(S);
          f.values.forEach((values, b) => {
            squares[Math.floor(b / K)].push(...values);
          });
        }
        if (request.loss) {
          const value = S.lossValue();
          try {
            losses.push(...split(await value.read()));
          } finally {
            value.dispose();
          }
        }
        if (request.gradientNorm) {
          const g = await meanGradient(S);
          for (let k = 0; k < K; k++) {
            const chunk = new Float64Array(R * n);
            for (let r = 0; r < R; r++) chunk.set(g.subarray((r * K + k) * n, (r * K + k + 1) * n), r * n);
            gradients.push(chunk);
          }
        }
      };
      await (request.loss ? S.atPoint(measure) : measure());
    }
    return await finish();
  } finally {
    stacked?.dispose();
  }

  async function finish(): Promise<SampleMeasurement> {
    if (dense && !stacked) {
      // Every chunk's Hessian columns (and per-sample squared gradients) into one tensor, read once.
      const round = await denseRound(set, Boolean(request.fluctuation));
      hessians.push(...round.hessians);
      for (const H of round.hessians)
        traces.push(H.map((rows) => rows.reduce((sum, row, i) => sum + row[i], 0)));
      round.squares.forEach((values, r) => {
        squares[r].push(...values);
      });
    }
    for (let k = 0; k < (stacked ? 0 : set.chunks.length); k++) {
      await set.withChunk(k, async (operator) => {
        if (!dense && request.trace) {
          traces.push(
            n <= exactMax
              ? (await exactTrace(operator)).trace
              : (
                  await hessianTrace(operator, {
                    probes: probesPerChunk,
                    seed: chunkSeed(seed, k),
                    replicaOffset,
                  })
                ).estimate,
          );
        }
        if (request.fluctuation && !dense) {
          const f = await gradientFluctuation(operator);
          f.values.forEach((values, r) => {
            for (const v of values) squares[r].push(v);
          });
        }
        if (request.loss) {
          const value = operator.lossValue();
          try {
            losses.push(Array.from(await value.read()));
          } finally {
            value.dispose();
          }
        }
        if (request.gradientNorm) gradients.push(await meanGradient(operator));
      });
    }
    if (request.trace) {
      result.trace = combine(traces, weights, R);
      result.methods.trace = dense ? 'dense' : n <= exactMax ? 'exact' : 'hutchinson';
    }
    if (request.loss) result.loss = combine(losses, weights, R);
    if (request.fluctuation) {
      result.fluctuation = { value: [], standardError: [] };
      for (const values of squares) {
        const N = values.length;
        const mean = values.reduce((a, b) => a + b, 0) / N;
        const variance = N > 1 ? values.reduce((a, x) => a + (x - mean) ** 2, 0) / (N - 1) : Number.NaN;
        result.fluctuation.value.push(mean);
        result.fluctuation.standardError.push(Math.sqrt(variance / N));
      }
    }
    if (request.gradientNorm) result.gradientNorm = gradientNormEstimate(gradients, weights, R, n);
    if (eigen) {
      const k = Math.max(1, top);
      const { values, rayleigh } = dense
        ? denseEigen(hessians, weights, k, result)
        : request.holdTapes !== false
          ? await concatenatedEigen(
              set,
              k,
              { steps: Math.min(n, lanczosSteps), seed, replicaOffset },
              stacked?.operator,
            )
          : await streamedEigen(set, k, { steps: Math.min(n, lanczosSteps), seed, replicaOffset });
      // rayleigh[c][j][r]: u_jᵀ H_c u_j; the eigenvalue itself is that of the mean Hessian.
      const estimates = Array.from({ length: k }, (_, j) => {
        const spread = combine(
          rayleigh.map((chunk) => chunk[j]),
          weights,
          R,
        );
        return { value: values.map((v) => v[j]), standardError: spread.standardError };
      });
      if (request.lambdaMax) result.lambdaMax = estimates[0];
      if (top > 0) result.top = estimates;
      result.methods.lambdaMax = dense ? 'dense' : 'lanczos';
    }
    return result;
  }
}

/**
 * Small models: each chunk's n Hessian columns (a third of them per batched pass, at one taped point)
 * and, when asked, its per-sample squared gradients, all into one tensor read back once.
 */
async function denseRound(
  set: EvaluationChunks,
  gradients: boolean,
): Promise<{ hessians: number[][][][]; squares: number[][] }> {
  const engine = set.engine;
  const n = set.size;
  const R = set.replicas;
  const largest = Math.max(...set.chunks.map((c) => c.samples));
  // Per replica and chunk: H (n·n, row i = (H e_i)ᵀ), then ‖∇ℓ_i‖² of its samples and ‖ḡ‖².
  const width = n * n + (gradients ? largest + 1 : 0);
  const stride = set.chunks.length * width;
  const results = engine.empty([stride], { batch: R });
  try {
    // Each chunk's data is freed once its launches are encoded (the pool hands a buffer out again
    // only behind the launches that read it).
    for (let k = 0; k < set.chunks.length; k++)
      await set.withChunk(k, async (operator) => {
        await withFittingCopies(operator, denseColumnsPerLaunch(n), async (batched, copies) => {
          encodeDenseHessian(batched, copies, results, { outBatch: stride, outOffset: k * width });
        });
        if (gradients) encodeFluctuation(operator, results, { outBatch: stride, offset: k * width + n * n });
      });
    const all = await results.read();
    const hessians = set.chunks.map((_, k) =>
      Array.from({ length: R }, (_, r) =>
        Array.from({ length: n }, (_, i) => {
          const at = r * stride + k * width + i * n;
          return Array.from(all.subarray(at, at + n));
        }),
      ),
    );
    const squares = Array.from({ length: R }, (_, r) =>
      gradients
        ? set.chunks.flatMap((c, k) => {
            const at = r * stride + k * width + n * n;
            return Array.from(all.subarray(at, at + c.samples));
          })
        : [],
    );
    return { hessians, squares };
  } finally {
    results.dispose();
  }
}

/** The chunk's mean gradient per replica, flat (R × n), in float64. */
async function meanGradient(operator: HessianOperator): Promise<Float64Array> {
  const tape = new Tape(operator.engine);
  const flat = operator.engine.empty([operator.size], { batch: operator.replicas });
  try {
    const { params, loss } = operator.build(tape);
    operator.pack(
      tape.grad(loss, params).map((g) => g.value),
      flat,
    );
    return Float64Array.from(await flat.read());
  } finally {
    flat.dispose();
    tape.dispose();
  }
}

/** ‖ḡ‖ with ḡ = Σ_k w_k ḡ_k; its s.e. from the chunks' projections ḡ_k · ḡ/‖ḡ‖. */
function gradientNormEstimate(
  gradients: readonly Float64Array[],
  weights: readonly number[],
  R: number,
  n: number,
): SampleEstimate {
  const out: SampleEstimate = { value: [], standardError: [] };
  for (let r = 0; r < R; r++) {
    const mean = new Float64Array(n);
    gradients.forEach((g, k) => {
      for (let i = 0; i < n; i++) mean[i] += weights[k] * g[r * n + i];
    });
    const norm = Math.sqrt(mean.reduce((a, v) => a + v * v, 0));
    const projections = gradients.map((g) => {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += g[r * n + i] * mean[i];
      return norm > 0 ? dot / norm : 0;
    });
    out.value.push(norm);
    out.standardError.push(batchMean(projections, weights).standardError);
  }
  return out;
}

/**
 * Small models: the mean of the chunks' dense Hessians, eigen-solved in float64; the Rayleigh quotients
 * of its top k eigenvectors on every chunk. Fills `result.eigenvalues`.
 */
function denseEigen(
  hessians: readonly number[][][][],
  weights: readonly number[],
  k: number,
  result: SampleMeasurement,
): { values: number[][]; rayleigh: number[][][] } {
  const R = hessians[0].length;
  const n = hessians[0][0].length;
  const values: number[][] = [];
  const rayleigh: number[][][] = hessians.map(() => Array.from({ length: k }, () => new Array<number>(R)));
  result.eigenvalues = [];
  for (let r = 0; r < R; r++) {
    const mean = new MlMatrix(n, n);
    hessians.forEach((H, c) => {
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) mean.set(i, j, mean.get(i, j) + weights[c] * H[r][i][j]);
    });
    const { values: ascending, vectors } = symmetricEigen(mean);
    result.eigenvalues.push(ascending);
    values.push(ascending.slice(-k).reverse());
    for (let j = 0; j < k; j++) {
      const u = vectors.getColumn(n - 1 - j);
      hessians.forEach((H, c) => {
        let q = 0;
        for (let a = 0; a < n; a++) {
          let row = 0;
          for (let b = 0; b < n; b++) row += 0.5 * (H[r][a][b] + H[r][b][a]) * u[b];
          q += u[a] * row;
        }
        rayleigh[c][j][r] = q;
      });
    }
  }
  return { values, rayleigh };
}

/** H·v of the mean Hessian Σ_k w_k H_k v_k for flat vectors (R × n, float64), and each chunk's H_k·v. */
async function applyChunks(
  set: EvaluationChunks,
  v: Float64Array,
  perChunk?: (chunk: number, hv: Float32Array) => void,
  stacked?: HessianOperator,
): Promise<Float64Array> {
  const engine = set.engine;
  const n = set.size;
  const R = set.replicas;
  const weights = set.weights;
  if (stacked) {
    // One batched H·v over every chunk: v repeated K times, replica r·K + k holding chunk k's H_k v.
    const K = set.chunks.length;
    const input = engine.tensor(Float32Array.from(v), [n], { batch: R });
    const repeated = repeatReplicas(engine, input, K);
    const hv = stacked.applyFlat(repeated);
    try {
      const all = (await hv.read()) as Float32Array;
      const sum = new Float64Array(R * n);
      for (let k = 0; k < K; k++) {
        const chunk = new Float32Array(R * n);
        for (let r = 0; r < R; r++) chunk.set(all.subarray((r * K + k) * n, (r * K + k + 1) * n), r * n);
        if (perChunk) perChunk(k, chunk);
        else for (let i = 0; i < R * n; i++) sum[i] += weights[k] * chunk[i];
      }
      return sum;
    } finally {
      for (const t of [input, repeated, hv]) t.dispose();
    }
  }
  const input = engine.tensor(Float32Array.from(v), [n], { batch: R });
  const hv = engine.empty([n], { batch: R });
  const sum = engine.empty([n], { batch: R });
  try {
    if (!perChunk) fill(engine, sum, 0);
    for (let k = 0; k < set.chunks.length; k++)
      await set.withChunk(k, async (operator) => {
        operator.applyFlat(input, hv);
        if (perChunk) perChunk(k, (await hv.read()) as Float32Array);
        else accumulate(engine, sum, hv, 1, weights[k]);
      });
    return perChunk ? new Float64Array(0) : Float64Array.from(await sum.read());
  } finally {
    for (const t of [input, hv, sum]) t.dispose();
  }
}

const dotAt = (a: Float64Array, b: Float64Array, offset: number, n: number) => {
  let s = 0;
  for (let i = offset; i < offset + n; i++) s += a[i] * b[i];
  return s;
};

/**
 * Lanczos with full reorthogonalisation (twice, in float64 on the CPU) on the mean Hessian, every
 * replica in lockstep; each step's H·v is summed over the chunks on the GPU and read back once. Then
 * the top k Ritz vectors' Rayleigh quotients on every chunk.
 */
async function streamedEigen(
  set: EvaluationChunks,
  k: number,
  options: { steps: number; seed: number; replicaOffset: number },
): Promise<{ values: number[][]; rayleigh: number[][][] }> {
  const n = set.size;
  const R = set.replicas;
  const steps = Math.max(k, options.steps);
  const startTensor = await set.withChunk(0, (operator) =>
    randomVectors(operator, 'normal', {
      seed: options.seed,
      stream: STREAM_LANCZOS,
      counter: 0,
      replicaOffset: options.replicaOffset,
    }),
  );
  let q: Float64Array;
  try {
    q = Float64Array.from(await startTensor.read());
  } finally {
    startTensor.dispose();
  }
  for (let r = 0; r < R; r++) {
    const norm = Math.sqrt(dotAt(q, q, r * n, n));
    for (let i = r * n; i < (r + 1) * n; i++) q[i] /= norm;
  }
  const basis: Float64Array[] = [];
  const alpha: number[][] = Array.from({ length: R }, () => []);
  const beta: number[][] = Array.from({ length: R }, () => []);
  const active = new Array<boolean>(R).fill(true);
  for (let step = 0; step < steps && active.some(Boolean); step++) {
    basis.push(q);
    const w = await applyChunks(set, q);
    const next = new Float64Array(R * n);
    for (let r = 0; r < R; r++) {
      if (!active[r]) continue;
      const o = r * n;
      const a = dotAt(q, w, o, n);
      alpha[r].push(a);
      for (let pass = 0; pass < 2; pass++)
        for (const b of basis) {
          const c = dotAt(b, w, o, n);
          for (let i = o; i < o + n; i++) w[i] -= c * b[i];
        }
      const norm = Math.sqrt(dotAt(w, w, o, n));
      beta[r].push(norm);
      const scale = Math.max(...alpha[r].map(Math.abs), ...beta[r]);
      // An invariant subspace (or the whole space): the Ritz values are eigenvalues.
      if (norm <= 1e-10 * scale || alpha[r].length === n) active[r] = false;
      else for (let i = o; i < o + n; i++) next[i] = w[i] / norm;
    }
    q = next;
  }
  const values: number[][] = [];
  const ritz = Array.from({ length: k }, () => new Float64Array(R * n));
  for (let r = 0; r < R; r++) {
    const m = alpha[r].length;
    const e = tridiagonalEigen(alpha[r], beta[r].slice(0, m - 1));
    const wanted = Array.from({ length: k }, (_, j) => m - 1 - j);
    values.push(wanted.map((i) => (i >= 0 ? e.values[i] : Number.NaN)));
    wanted.forEach((i, j) => {
      if (i < 0) return;
      for (let s = 0; s < m; s++) {
        const y = e.vectors.get(s, i);
        for (let t = r * n; t < (r + 1) * n; t++) ritz[j][t] += y * basis[s][t];
      }
    });
  }
  return { values, rayleigh: await rayleighQuotients(set, ritz) };
}

/**
 * Lanczos (the toolkit's, on the GPU) on the loss over all N samples at once, then its Ritz vectors'
 * Rayleigh quotients on every chunk.
 */
async function concatenatedEigen(
  set: EvaluationChunks,
  k: number,
  options: { steps: number; seed: number; replicaOffset: number },
  stacked?: HessianOperator,
): Promise<{ values: number[][]; rayleigh: number[][][] }> {
  const n = set.size;
  const R = set.replicas;
  const eigen = await topEigenvalues(set.concatenated(), k, {
    maxSteps: Math.max(k, options.steps),
    seed: options.seed,
    replicaOffset: options.replicaOffset,
    ritzVectors: true,
  });
  const vectors = eigen.vectors;
  if (!vectors) throw new Error('topEigenvalues returned no Ritz vectors');
  let flat: Float32Array;
  try {
    flat = (await vectors.read()) as Float32Array;
  } finally {
    vectors.dispose();
  }
  // Replica r's vector j is row j of its [k, n] block.
  const ritz = Array.from({ length: k }, (_, j) => {
    const v = new Float64Array(R * n);
    for (let r = 0; r < R; r++) v.set(flat.subarray((r * k + j) * n, (r * k + j + 1) * n), r * n);
    return v;
  });
  return { values: eigen.values, rayleigh: await rayleighQuotients(set, ritz, stacked) };
}

/** rayleigh[c][j][r] = u_jᵀ H_c u_j of replica r's Ritz vector u_j on chunk c. */
async function rayleighQuotients(
  set: EvaluationChunks,
  ritz: readonly Float64Array[],
  stacked?: HessianOperator,
): Promise<number[][][]> {
  const n = set.size;
  const R = set.replicas;
  const k = ritz.length;
  const rayleigh: number[][][] = set.chunks.map(() => Array.from({ length: k }, () => new Array<number>(R)));
  for (let j = 0; j < k; j++) {
    await applyChunks(
      set,
      ritz[j],
      (c, hv) => {
        for (let r = 0; r < R; r++) {
          let s = 0;
          for (let i = r * n; i < (r + 1) * n; i++) s += ritz[j][i] * hv[i];
          rayleigh[c][j][r] = s;
        }
      },
      stacked,
    );
  }
  return rayleigh;
}
