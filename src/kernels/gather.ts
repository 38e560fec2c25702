import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';
import { broadcastBatch, outputTensor, product } from './shapes.ts';

const WORKGROUP = 256;

/**
 * Gathers rows: out[b, r, …] = src[b, index[b, r], …]. `src` is [rows, …] per replica, `index` a
 * u32 tensor [count]; indices past the last row are clamped to it. Either may have batch 1.
 */
export function gatherRows(
  engine: Engine,
  src: Tensor,
  index: Tensor,
  options: { out?: Tensor } = {},
): Tensor {
  if (index.dtype !== 'u32') throw new InputError('gather.index', `must be a u32 tensor, got ${index}`);
  if (src.shape.length < 1) throw new InputError('gather.src', 'needs at least one dimension');
  const rows = index.size;
  const rowShape = src.shape.slice(1);
  const rowLength = product(rowShape);
  const batch = broadcastBatch('gather', src, index);
  const out = outputTensor(engine, 'gather', [rows, ...rowShape], batch, options.out);
  const total = batch * rows * rowLength;
  const { workgroups, rowStride } = grid1d(total, WORKGROUP, engine.limits.maxComputeWorkgroupsPerDimension);
  engine.launch({
    kernel: 'gather',
    shader: 'gather.wgsl',
    constants: { WG: WORKGROUP },
    buffers: { src: { tensor: src }, index: { tensor: index }, out: { tensor: out } },
    uniforms: {
      rows,
      rowLength,
      srcRows: src.shape[0],
      total,
      srcBatch: src.batch > 1 ? src.size : 0,
      indexBatch: index.batch > 1 ? rows : 0,
      rowStride,
    },
    workgroups,
  });
  return out;
}
