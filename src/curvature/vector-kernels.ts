/**
 * Typed launchers for the curvature toolkit's own kernels (shaders/vectors.wgsl, shaders/lanczos.wgsl):
 * strided copies, unit vectors, and the Lanczos / power-iteration steps. Every
 * launch covers all replicas; nothing here reads back.
 */
import { InputError, uint32Integer } from '../errors.ts';
import { grid1d } from '../kernels/dispatch.ts';
import { chooseReduceStrategy, dot } from '../kernels/reduce.ts';
import { placeholder } from '../kernels/shapes.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

const VECTOR_WG = 256;
/** Workgroup of the per-replica reductions (project, finish, normalize, power_step). */
const REDUCE_WG = 64;

export interface StridedCopy {
  /** Elements copied per replica. */
  length: number;
  /** Replicas written. */
  batch: number;
  /** Elements between replicas of x and its first element (default: x.size, 0). */
  xBatch?: number;
  xOffset?: number;
  /** Source replica of output replica b is (b / xDiv) % xMod: repeat with xDiv, tile with xMod. */
  xDiv?: number;
  xMod?: number;
  outBatch?: number;
  outOffset?: number;
  alpha?: number;
}

/**
 * out[b·outBatch + outOffset + i] = alpha · x[((b / xDiv) % xMod)·xBatch + xOffset + i] for i < length,
 * b < batch: packs parameters into a flat vector and back, and repeats replicas for probe copies.
 */
export function stridedCopy(engine: Engine, x: Tensor, out: Tensor, copy: StridedCopy): Tensor {
  const xBatch = copy.xBatch ?? x.size;
  const xOffset = copy.xOffset ?? 0;
  const xDiv = copy.xDiv ?? 1;
  const xMod = copy.xMod ?? 0xffffffff;
  const outBatch = copy.outBatch ?? out.size;
  const outOffset = copy.outOffset ?? 0;
  for (const [field, value] of Object.entries({ ...copy, xBatch, xOffset, outBatch, outOffset }))
    if (field !== 'alpha') uint32Integer(`stridedCopy.${field}`, value as number);
  if (copy.length < 1 || xDiv < 1 || xMod < 1) throw new InputError('stridedCopy', 'empty copy');
  if (x.buffer === out.buffer) throw new InputError('stridedCopy.out', 'aliases x');
  const lastSource = Math.floor((copy.batch - 1) / xDiv) % xMod;
  const sourceEnd = lastSource * xBatch + xOffset + copy.length;
  const outEnd = (copy.batch - 1) * outBatch + outOffset + copy.length;
  const { workgroups, rowStride } = grid1d(
    copy.length * copy.batch,
    VECTOR_WG,
    engine.limits.maxComputeWorkgroupsPerDimension,
  );
  engine.launch({
    kernel: 'curvature.copy',
    shader: 'vectors.wgsl',
    entry: 'copy',
    constants: { WG: VECTOR_WG },
    buffers: { x: { tensor: x, minBytes: 4 * sourceEnd }, out: { tensor: out, minBytes: 4 * outEnd } },
    uniforms: {
      len: copy.length,
      total: copy.length * copy.batch,
      rowStride,
      xBatch,
      xOffset,
      xDiv,
      xMod,
      outBatch,
      outOffset,
      alpha: copy.alpha ?? 1,
    },
    workgroups,
  });
  return out;
}

/** Replicas repeated: batch R → batch R·copies, replica r·copies + j a copy of replica r. */
export function repeatReplicas(engine: Engine, x: Tensor, copies: number): Tensor {
  const out = engine.empty(x.shape, { batch: x.batch * copies });
  if (out.length === 0) return out;
  return stridedCopy(engine, x, out, { length: x.size, batch: out.batch, xDiv: copies, xMod: x.batch });
}

/** Flat vectors [n], batch `batch`: replica b is e_{start + b % copies} (zero past the end). */
export function unitVectors(engine: Engine, n: number, batch: number, copies: number, start: number): Tensor {
  const out = engine.empty([n], { batch });
  const { workgroups, rowStride } = grid1d(
    n * batch,
    VECTOR_WG,
    engine.limits.maxComputeWorkgroupsPerDimension,
  );
  engine.launch({
    kernel: 'curvature.unit',
    shader: 'vectors.wgsl',
    entry: 'unit',
    constants: { WG: VECTOR_WG },
    buffers: { out: { tensor: out } },
    uniforms: { n, total: n * batch, rowStride, copies, start },
    workgroups,
  });
  return out;
}

/**
 * A Krylov basis for every replica: `capacity` rows of length n per replica, stored as one tensor
 * [capacity, n] of batch B; coefficients [2, capacity] per replica hold the two Gram–Schmidt passes.
 */
export class KrylovBasis {
  readonly rows: Tensor;
  readonly coef: Tensor;
  /** α, β per replica after each `finish`. */
  readonly scalars: Tensor;

  constructor(
    private readonly engine: Engine,
    readonly n: number,
    readonly capacity: number,
    readonly batch: number,
  ) {
    this.rows = engine.empty([capacity, n], { batch, label: `krylov basis [${batch}; ${capacity}×${n}]` });
    this.coef = engine.empty([2, capacity], { batch });
    this.scalars = engine.empty([2], { batch });
  }

  private uniforms(rows: number, extra: Partial<Record<string, number>> = {}) {
    return {
      n: this.n,
      rows,
      batch: this.batch,
      basisBatch: this.capacity * this.n,
      coefBatch: 2 * this.capacity,
      coefOffset: 0,
      row: 0,
      writeRow: 0,
      secondPass: this.capacity,
      masked: 0,
      rowStride: 0,
      ...extra,
    };
  }

  /** coef[pass] = Q_{0..rows−1}ᵀ w per replica. */
  project(w: Tensor, rows: number, pass: 0 | 1): void {
    const strategy = chooseReduceStrategy(rows * this.batch, this.n);
    const coefOffset = pass * this.capacity;
    const buffers = { basis: { tensor: this.rows }, w: { tensor: w }, coef: { tensor: this.coef } };
    if (strategy === 'tree') {
      this.engine.launch({
        kernel: 'lanczos.project',
        shader: 'lanczos.wgsl',
        entry: 'project',
        constants: { WG: REDUCE_WG },
        buffers,
        uniforms: this.uniforms(rows, { coefOffset }),
        workgroups: [rows, this.batch],
      });
      return;
    }
    const { workgroups, rowStride } = grid1d(
      rows * this.batch,
      REDUCE_WG,
      this.engine.limits.maxComputeWorkgroupsPerDimension,
    );
    this.engine.launch({
      kernel: 'lanczos.project_rows',
      shader: 'lanczos.wgsl',
      entry: 'project_rows',
      constants: { WG: REDUCE_WG },
      buffers,
      uniforms: this.uniforms(rows, { coefOffset, rowStride }),
      workgroups,
    });
  }

  /** w −= Q_{0..rows−1} coef[pass] per replica. */
  subtract(w: Tensor, rows: number, pass: 0 | 1): void {
    const { workgroups, rowStride } = grid1d(
      this.n * this.batch,
      REDUCE_WG,
      this.engine.limits.maxComputeWorkgroupsPerDimension,
    );
    this.engine.launch({
      kernel: 'lanczos.subtract',
      shader: 'lanczos.wgsl',
      entry: 'subtract',
      constants: { WG: REDUCE_WG },
      buffers: { basis: { tensor: this.rows }, w: { tensor: w }, coef: { tensor: this.coef } },
      uniforms: this.uniforms(rows, { coefOffset: pass * this.capacity, rowStride }),
      workgroups,
    });
  }

  /** Classical Gram–Schmidt twice against rows 0..rows−1 (full reorthogonalisation). */
  orthogonalise(w: Tensor, rows: number): void {
    this.project(w, rows, 0);
    this.subtract(w, rows, 0);
    this.project(w, rows, 1);
    this.subtract(w, rows, 1);
  }

  /** After orthogonalise(w, j + 1): scalars = (α_j, β_j = ‖w‖), and row j + 1 = w / β_j if it exists. */
  finish(w: Tensor, j: number): void {
    this.engine.launch({
      kernel: 'lanczos.finish',
      shader: 'lanczos.wgsl',
      entry: 'finish',
      constants: { WG: REDUCE_WG },
      buffers: {
        basisOut: { tensor: this.rows },
        w: { tensor: w },
        coef: { tensor: this.coef },
        scalars: { tensor: this.scalars },
      },
      uniforms: this.uniforms(j + 1, { row: j + 1, writeRow: j + 1 < this.capacity ? 1 : 0 }),
      workgroups: [this.batch],
    });
  }

  /** Row `row` = w / ‖w‖, for every replica or (with a u32 mask [batch]) only where mask ≠ 0. */
  normalizeInto(w: Tensor, row: number, mask?: Tensor): void {
    this.engine.launch({
      kernel: 'lanczos.normalize',
      shader: 'lanczos.wgsl',
      entry: 'normalize',
      constants: { WG: REDUCE_WG },
      buffers: {
        basisOut: { tensor: this.rows },
        w: { tensor: w },
        mask: { tensor: mask ?? placeholder(this.engine) },
      },
      uniforms: this.uniforms(0, { row, masked: mask ? 1 : 0 }),
      workgroups: [this.batch],
    });
  }

  /** Copies basis row `row` of every replica into `out` ([n], batch B). */
  readRow(row: number, out: Tensor): Tensor {
    return stridedCopy(this.engine, this.rows, out, {
      length: this.n,
      batch: this.batch,
      xBatch: this.capacity * this.n,
      xOffset: row * this.n,
      outBatch: this.n,
    });
  }

  dispose(): void {
    this.rows.dispose();
    this.coef.dispose();
    this.scalars.dispose();
  }
}

/**
 * One power-iteration step for unit vectors v ([n], batch B) and hv = H v: writes (λ = vᵀHv,
 * ‖Hv − λv‖, ‖Hv‖) to stats ([3], batch B) and replaces v by Hv / ‖Hv‖.
 */
export function powerStep(engine: Engine, v: Tensor, hv: Tensor, stats: Tensor): void {
  if (v.length !== hv.length || v.buffer === hv.buffer)
    throw new InputError('powerStep', `v ${v} and Hv ${hv} must be distinct and of equal size`);
  engine.launch({
    kernel: 'lanczos.power_step',
    shader: 'lanczos.wgsl',
    entry: 'power_step',
    constants: { WG: REDUCE_WG },
    buffers: { w: { tensor: v }, hv: { tensor: hv }, scalars: { tensor: stats, minBytes: 12 * v.batch } },
    uniforms: { n: v.size, batch: v.batch },
    workgroups: [v.batch],
  });
}

/** Invocations per workgroup of the short per-replica sums (shaders/curvature_sums.wgsl). */
const SUMS_WG = 64;

export interface ReplicaDot {
  /** Elements summed per replica. */
  length: number;
  /** Replicas (outputs). */
  batch: number;
  /** Elements between replicas of x and of y (default: length; 0 shares one vector). */
  xBatch?: number;
  yBatch?: number;
  /**
   * Output of replica b: out[(b / outGroup)·outBatch + b % outGroup + outOffset] (defaults 1, 1, 0):
   * groups of outGroup consecutive outputs in rows outBatch apart.
   */
  outGroup?: number;
  outBatch?: number;
  outOffset?: number;
  alpha?: number;
  /** 0 overwrites, 1 accumulates into out. */
  beta?: number;
}

/** Longest vectors summed by one invocation; longer overwriting sums use a workgroup tree per replica. */
const SERIAL_DOT_MAX = 4096;

/**
 * Per-replica alpha·⟨x_b, y_b⟩ (+ beta·out) with one invocation per replica: for many replicas of
 * short vectors, where the workgroup-per-replica tree of `dot` mostly waits on barriers. Pass the same
 * tensor as x and y for squared norms.
 */
export function replicaDots(engine: Engine, x: Tensor, y: Tensor, out: Tensor, spec: ReplicaDot): Tensor {
  const group = spec.outGroup ?? 1;
  const whole = spec.length * spec.batch;
  const dense =
    (spec.xBatch ?? spec.length) === spec.length &&
    (spec.yBatch ?? spec.length) === spec.length &&
    x.length === whole &&
    y.length === whole;
  if (spec.length > SERIAL_DOT_MAX && !spec.beta && dense && spec.batch % group === 0) {
    // Long vectors: a tree per replica, then one copy places the groups.
    const sums = dot(
      engine,
      engine.view(x, [spec.length], spec.batch),
      engine.view(y, [spec.length], spec.batch),
      {
        scale: spec.alpha ?? 1,
      },
    );
    stridedCopy(engine, sums, out, {
      length: group,
      batch: spec.batch / group,
      xBatch: group,
      outBatch: spec.outBatch ?? 1,
      outOffset: spec.outOffset ?? 0,
    });
    sums.dispose();
    return out;
  }
  const xBatch = spec.xBatch ?? spec.length;
  const yBatch = spec.yBatch ?? spec.length;
  const outGroup = spec.outGroup ?? 1;
  const outBatch = spec.outBatch ?? 1;
  const outOffset = spec.outOffset ?? 0;
  for (const [field, value] of Object.entries({ ...spec, xBatch, yBatch, outGroup, outBatch, outOffset }))
    if (field !== 'alpha' && field !== 'beta') uint32Integer(`replicaDots.${field}`, value as number);
  if (spec.length < 1 || spec.batch < 1 || outGroup < 1) throw new InputError('replicaDots', 'empty sum');
  const last = spec.batch - 1;
  const lastOut = Math.floor(last / outGroup) * outBatch + (last % outGroup) + outOffset;
  const { workgroups, rowStride } = grid1d(
    spec.batch,
    SUMS_WG,
    engine.limits.maxComputeWorkgroupsPerDimension,
  );
  engine.launch({
    kernel: 'curvature.dots',
    shader: 'curvature_sums.wgsl',
    entry: 'dots',
    constants: { WG: SUMS_WG },
    buffers: {
      x: { tensor: x, minBytes: 4 * (last * xBatch + spec.length) },
      y: { tensor: y, minBytes: 4 * (last * yBatch + spec.length) },
      out: { tensor: out, minBytes: 4 * (lastOut + 1) },
    },
    uniforms: {
      len: spec.length,
      batch: spec.batch,
      rowStride,
      xBatch,
      yBatch,
      outGroup,
      outBatch,
      outOffset,
      alpha: spec.alpha ?? 1,
      beta: spec.beta ?? 0,
    },
    workgroups,
  });
  return out;
}

/**
 * out[r] = alpha·Σ_j x[r·groups + j] (+ beta·out[r]) over consecutive replicas of x (each `length`
 * elements): e.g. per-sample gradients of batch R·s summed to one gradient per replica. Row r of out
 * starts at r·outBatch (default length).
 */
export function groupSum(
  engine: Engine,
  x: Tensor,
  out: Tensor,
  spec: {
    length: number;
    groups: number;
    replicas: number;
    outBatch?: number;
    alpha?: number;
    beta?: number;
  },
): Tensor {
  const outBatch = spec.outBatch ?? spec.length;
  const total = spec.replicas * spec.length;
  for (const [field, value] of Object.entries({ ...spec, outBatch, total }))
    if (field !== 'alpha' && field !== 'beta') uint32Integer(`groupSum.${field}`, value as number);
  if (total < 1 || spec.groups < 1) throw new InputError('groupSum', 'empty sum');
  const { workgroups, rowStride } = grid1d(total, SUMS_WG, engine.limits.maxComputeWorkgroupsPerDimension);
  engine.launch({
    kernel: 'curvature.groupSum',
    shader: 'curvature_sums.wgsl',
    entry: 'group_sum',
    constants: { WG: SUMS_WG },
    buffers: {
      x: { tensor: x, minBytes: 4 * total * spec.groups },
      out: { tensor: out, minBytes: 4 * ((spec.replicas - 1) * outBatch + spec.length) },
    },
    uniforms: {
      len: spec.length,
      groups: spec.groups,
      total,
      rowStride,
      outBatch,
      alpha: spec.alpha ?? 1,
      beta: spec.beta ?? 0,
    },
    workgroups,
  });
  return out;
}
