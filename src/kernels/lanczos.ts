/**
 * Launches of shaders/lanczos.wgsl: the Krylov basis's Gram–Schmidt passes and the power-iteration
 * step, for every replica at once; nothing here reads back.
 */
import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';
import { chooseReduceStrategy } from './reduce.ts';
import { placeholder } from './shapes.ts';
import { stridedCopy } from './vectors.ts';

/** Workgroup of the per-replica reductions (project, finish, normalize, power_step). */
const REDUCE_WG = 64;

/**
 * A Krylov basis for every replica: `capacity` rows of length n per replica, stored as one tensor
 * [capacity, n] of batch B; coefficients [2, capacity] per replica hold the two Gram–Schmidt passes.
 */
export class KrylovBasis {
  readonly rows: Tensor;
  readonly coef: Tensor;
  /** α, β per replica after each `finish`. */
  readonly scalars: Tensor;
  /** α_j, β_j of every `finish(w, j)` so far ([capacity, 2] per replica): read once per batch of steps. */
  readonly history: Tensor;

  constructor(
    private readonly engine: Engine,
    readonly n: number,
    readonly capacity: number,
    readonly batch: number,
  ) {
    this.rows = engine.empty([capacity, n], { batch, label: `krylov basis [${batch}; ${capacity}×${n}]` });
    this.coef = engine.empty([2, capacity], { batch });
    this.scalars = engine.empty([2], { batch });
    this.history = engine.empty([capacity, 2], { batch });
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
      historyBatch: 2 * this.capacity,
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

  /**
   * After orthogonalise(w, j + 1): scalars = (α_j, β_j = ‖w‖), also kept as history row j, and row
   * j + 1 = w / β_j if it exists.
   */
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
        history: { tensor: this.history },
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
    this.history.dispose();
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
