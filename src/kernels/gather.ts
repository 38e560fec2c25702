import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';
import { broadcastBatch, outputTensor, product } from './shapes.ts';

const WORKGROUP = 64;

/** Most elements one invocation copies. */
const GATHER_MAX_CHUNK = 16;

/** Rows of up to 16 elements in one piece, longer rows in equal pieces of at most 16 (784 pixels: 49 of 16). */
function gatherChunk(rowLength: number): number {
  return Math.ceil(rowLength / Math.ceil(rowLength / GATHER_MAX_CHUNK));
}

/**
 * Gathers rows: out[b, r, …] = src[b, index[b, r], …]. `src` is [rows, …] per replica, `index` a
 * u32 tensor [count]; indices past the last row are clamped to it. Either may have batch 1.
 */
export function gatherRows(
  engine: Engine,
  src: Tensor,
  index: Tensor,
  /** `chunk`: elements per invocation (default `gatherChunk`; tests force 1 to fill a dispatch row cheaply). */
  options: { out?: Tensor; chunk?: number } = {},
): Tensor {
  if (index.dtype !== 'u32') throw new InputError('gather.index', `must be a u32 tensor, got ${index}`);
  if (src.shape.length < 1) throw new InputError('gather.src', 'needs at least one dimension');
  const rows = index.size;
  const rowShape = src.shape.slice(1);
  const rowLength = product(rowShape);
  const batch = broadcastBatch('gather', src, index);
  const out = outputTensor(engine, 'gather', [rows, ...rowShape], batch, options.out);
  const chunk =
    rowLength === 0 ? 1 : Math.max(1, Math.min(options.chunk ?? gatherChunk(rowLength), rowLength));
  const chunksPerRow = Math.ceil(rowLength / chunk);
  const invocations = batch * rows * chunksPerRow;
  const { workgroups, rowStride } = grid1d(
    invocations,
    WORKGROUP,
    engine.limits.maxComputeWorkgroupsPerDimension,
  );
  engine.launch({
    kernel: 'gather',
    shader: 'gather.wgsl',
    constants: { WG: WORKGROUP },
    buffers: { src: { tensor: src }, index: { tensor: index }, out: { tensor: out } },
    uniforms: {
      rows,
      rowLength,
      srcRows: src.shape[0],
      chunk,
      chunksPerRow,
      invocations,
      srcBatch: src.batch > 1 ? src.size : 0,
      indexBatch: index.batch > 1 ? rows : 0,
      rowStride,
    },
    workgroups,
  });
  return out;
}
