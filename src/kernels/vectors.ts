/**
 * Launches of shaders/vectors.wgsl: strided copies between flat vectors (packing parameters into a
 * flat vector and back, repeating replicas for probe copies) and unit vectors. Every launch covers
 * all replicas; nothing here reads back.
 */
import { InputError, uint32Integer } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';

const VECTOR_WG = 256;

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
