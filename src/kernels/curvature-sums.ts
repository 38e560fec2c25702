/**
 * Launches of shaders/curvature_sums.wgsl: short per-replica dot products and sums over groups of
 * consecutive replicas, one invocation per output.
 */
import { InputError, uint32Integer } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';
import { dot } from './reduce.ts';
import { stridedCopy } from './vectors.ts';

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
