import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { broadcastBatch, ceilDiv, outputTensor, placeholder } from './shapes.ts';

export type Activation = 'none' | 'relu' | 'tanh';
const ACTIVATION_CODE: Record<Activation, number> = { none: 0, relu: 1, tanh: 2 };

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  alpha?: number;
  /** Scales the existing contents of `out` (which must then be given). */
  beta?: number;
  out?: Tensor;
  /** Per-column bias of shape [N], batch 1 or the output's batch. */
  bias?: Tensor;
  activation?: Activation;
  /** Workgroup shape override (tuning); each invocation computes a 4×4 block of C. */
  workgroup?: readonly [number, number];
}

/** Default workgroup: 8×8 invocations, a 32×32 tile of C. */
export const MATMUL_DEFAULT_WORKGROUP = [8, 8] as const;

/**
 * C[b] = act(alpha·op(A[b])·op(B[b]) + beta·C[b] + bias[b]) for every replica b, where
 * op(X) = Xᵀ when the transpose flag is set; a batch-1 operand is shared by all replicas.
 * A is [M, K] ([K, M] transposed), B is [K, N] ([N, K] transposed), C is [M, N].
 */
export function matmul(engine: Engine, a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  if (a.shape.length !== 2) throw new InputError('matmul.a', `must be a matrix per replica, got ${a}`);
  if (b.shape.length !== 2) throw new InputError('matmul.b', `must be a matrix per replica, got ${b}`);
  const [M, K] = options.transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [KB, N] = options.transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (K !== KB)
    throw new InputError('matmul', `inner dimensions differ: op(A) is ${M}×${K}, op(B) is ${KB}×${N}`);
  const batch = broadcastBatch('matmul', a, b, ...(options.out ? [options.out] : []));
  const beta = options.beta ?? 0;
  if (beta !== 0 && !options.out)
    throw new InputError('matmul.beta', 'beta ≠ 0 accumulates into `out`, which was not given');
  const out = outputTensor(engine, 'matmul', [M, N], batch, options.out);
  if (options.bias) {
    const bias = options.bias;
    if (bias.size !== N || (bias.batch !== 1 && bias.batch !== batch)) {
      throw new InputError('matmul.bias', `expected [${N}] with batch 1 or ${batch}, got ${bias}`);
    }
  }
  const [wgX, wgY] = options.workgroup ?? MATMUL_DEFAULT_WORKGROUP;
  engine.launch({
    kernel: 'matmul',
    shader: 'matmul.wgsl',
    constants: { WG_X: wgX, WG_Y: wgY },
    buffers: {
      a: { tensor: a },
      b: { tensor: b },
      bias: { tensor: options.bias ?? placeholder(engine) },
      c: { tensor: out },
    },
    uniforms: {
      M,
      N,
      K,
      aBatch: a.batch === 1 ? 0 : M * K,
      aRow: options.transposeA ? 1 : K,
      aCol: options.transposeA ? M : 1,
      bBatch: b.batch === 1 ? 0 : K * N,
      bRow: options.transposeB ? 1 : N,
      bCol: options.transposeB ? K : 1,
      biasBatch: options.bias && options.bias.batch > 1 ? N : 0,
      hasBias: options.bias ? 1 : 0,
      activation: ACTIVATION_CODE[options.activation ?? 'none'],
      alpha: options.alpha ?? 1,
      beta,
    },
    workgroups: [ceilDiv(N, 4 * wgX), ceilDiv(M, 4 * wgY), batch],
  });
  return out;
}
