/**
 * Launches of shaders/autodiff.wgsl: the fused row kernels of softmax and its VJPs over the last axis,
 * and the sum of up to six same-shaped tensors in one pass (gradient contributions).
 */
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';

export type SoftmaxRowEntry = 'softmax' | 'softmax_backward' | 'softmax_backward_output';

/** The most tensors `sumTensors` adds in one launch (bindings a0…a5). */
export const SUM_MAX_TERMS = 6;

/** A fused row kernel of shaders/autodiff.wgsl over the last axis of x (and s, h). */
export function softmaxRows(
  engine: Engine,
  entry: SoftmaxRowEntry,
  x: Tensor,
  s?: Tensor,
  h?: Tensor,
): Tensor {
  const len = x.shape[x.shape.length - 1];
  const rows = x.length / len;
  const out = engine.empty(x.shape, { batch: x.batch });
  const { workgroups, rowStride } = grid1d(rows, 64, engine.limits.maxComputeWorkgroupsPerDimension);
  const buffers: Record<string, { tensor: Tensor }> = { x: { tensor: x }, out: { tensor: out } };
  if (s) buffers.s = { tensor: s };
  if (h) buffers.h = { tensor: h };
  engine.launch({
    kernel: `autodiff.${entry}`,
    shader: 'autodiff.wgsl',
    entry,
    constants: { WG: 64 },
    buffers,
    uniforms: { len, rows, rowStride },
    workgroups,
  });
  return out;
}

/** out = Σ terms (2…6 tensors of out's size) in one launch of `sum_n`. */
export function sumTensors(engine: Engine, out: Tensor, terms: readonly Tensor[]): Tensor {
  const total = out.length;
  const { workgroups, rowStride } = grid1d(total, 256, engine.limits.maxComputeWorkgroupsPerDimension);
  const buffers: Record<string, { tensor: Tensor }> = { out: { tensor: out } };
  for (let k = 0; k < SUM_MAX_TERMS; k++) buffers[`a${k}`] = { tensor: terms[k] ?? terms[0] };
  engine.launch({
    kernel: 'autodiff.sum',
    shader: 'autodiff.wgsl',
    entry: 'sum_n',
    constants: { WG: 256 },
    buffers,
    uniforms: { total, rowStride, count: terms.length },
    workgroups,
  });
  return out;
}
