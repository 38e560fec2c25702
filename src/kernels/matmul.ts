import { InputError } from '../errors.ts';
import { type AdapterDescription, isSwiftShader } from '../gpu/context.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import {
  cacheFormatError,
  isRecord,
  positiveIntegerEntry,
  readAdapterTuning,
  type TunedConfig,
  type TunedMatmul,
  type WorkgroupLimits,
} from '../tune/cache.ts';
import { broadcastBatch, ceilDiv, outputTensor, placeholder } from './shapes.ts';

export type Activation = 'none' | 'relu' | 'tanh';
/** Codes match the ACTIVATION_* constants in shaders/matmul_common.wgsl. */
export const ACTIVATION_CODE: Record<Activation, number> = { none: 0, relu: 1, tanh: 2 };

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  alpha?: number;
  /** Scales the existing contents of `out` (which must then be given). */
  beta?: number;
  out?: Tensor;
  /** Per-column bias of shape [N], batch 1 or the output's batch. */
  bias?: Tensor;
  /** A whole addend D of shape [M, N], batch 1 or the output's batch: C = op(A)·op(B) + D in one launch (not with `bias`). */
  addend?: Tensor;
  activation?: Activation;
  /** Workgroup shape override (tuning), [x (columns), y (rows)] in invocations. */
  workgroup?: readonly [number, number];
  /** Forces a kernel variant instead of the one `matmulVariant` picks (tuning, tests, benchmarks). */
  variant?: MatmulVariant;
}

/**
 * The kernels, by the block of C one invocation computes. All have the same contract, bindings and
 * uniforms and accept every shape, transpose, batch broadcast, bias and activation.
 * - `tile4x4` (shaders/matmul.wgsl): 4×4 per invocation; the default on hardware adapters.
 * - `flat4x4` (shaders/matmul_flat.wgsl): 4×4 per invocation with (replica, row block, column block)
 *   flattened into one axis of 64-wide workgroups; for many small products (attention, per-sample
 *   gradients), which the other kernels would give one mostly idle workgroup per replica.
 * - `tile16x8` (shaders/matmul_16x8.wgsl): 16×8 per invocation in straight-line code; the default on
 *   SwiftShader without subgroups, where loads are emulated gathers and the big block does 128
 *   multiply-adds per 24 loads (about 2× the 4×4 kernel's GFLOP/s there, see bench/README.md).
 * - `subgroup16x8` (shaders/matmul_16x8_subgroup.wgsl): the 16×8 kernel with each subgroup of four
 *   neighbouring invocations loading its shared 16 rows of A once and broadcasting them (12 loads
 *   per k instead of 24); bit for bit the 16×8 kernel's results. SwiftShader only (its subgroups are
 *   four consecutive invocations), with the `subgroups` feature and WG_X a multiple of 4.
 */
export const MATMUL_VARIANTS = {
  tile4x4: { shader: 'matmul.wgsl', rows: 4, cols: 4 },
  tile16x8: { shader: 'matmul_16x8.wgsl', rows: 16, cols: 8 },
  flat4x4: { shader: 'matmul_flat.wgsl', rows: 4, cols: 4 },
  subgroup16x8: { shader: 'matmul_16x8_subgroup.wgsl', rows: 16, cols: 8 },
} as const;
export type MatmulVariant = keyof typeof MATMUL_VARIANTS;

/** Invocations of one subgroup on SwiftShader (its SIMD width): `subgroup16x8`'s WG_X is a multiple. */
export const SWIFTSHADER_SUBGROUP = 4;

/** Whether this engine can run a variant: `subgroup16x8` needs SwiftShader with the `subgroups` feature. */
export function matmulVariantAvailable(engine: Engine, variant: MatmulVariant): boolean {
  if (variant !== 'subgroup16x8') return true;
  return isSwiftShader(engine.context) && engine.context.device.features.has('subgroups');
}

export interface MatmulConfig extends TunedConfig {
  variant: MatmulVariant;
  /** [x (columns), y (rows)] invocations; the flattened kernel uses [WG, 1]. */
  workgroup: readonly [number, number];
}

/** A config that names a known kernel and fits this device's workgroup limits. */
export function checkMatmulConfig(value: unknown, path: string, limits: WorkgroupLimits): MatmulConfig {
  const fail: (path: string, message: string) => never = cacheFormatError;
  if (!isRecord(value)) fail(path, 'expected {variant, workgroup}');
  const variant = value.variant;
  if (typeof variant !== 'string' || !Object.hasOwn(MATMUL_VARIANTS, variant))
    fail(`${path}.variant`, `unknown matmul variant ${JSON.stringify(variant)}`);
  const wg = value.workgroup;
  if (!Array.isArray(wg) || wg.length !== 2) fail(`${path}.workgroup`, 'expected [x, y]');
  const x = positiveIntegerEntry(wg[0], `${path}.workgroup[0]`);
  const y = positiveIntegerEntry(wg[1], `${path}.workgroup[1]`);
  if (variant === 'flat4x4' && y !== 1) fail(`${path}.workgroup`, 'the flattened kernel takes [WG, 1]');
  if (variant === 'subgroup16x8' && x % SWIFTSHADER_SUBGROUP !== 0)
    fail(
      `${path}.workgroup`,
      `the subgroup kernel takes a WG_X that is a multiple of ${SWIFTSHADER_SUBGROUP}`,
    );
  if (
    x > limits.maxComputeWorkgroupSizeX ||
    y > limits.maxComputeWorkgroupSizeY ||
    x * y > limits.maxComputeInvocationsPerWorkgroup
  )
    fail(`${path}.workgroup`, `[${x}, ${y}] exceeds this device's workgroup limits`);
  return { variant: variant as MatmulVariant, workgroup: [x, y] };
}

/** Lookup of tuned matmul configs by shape, as matmul dispatch uses it. */
export class MatmulTuning {
  constructor(readonly entries: readonly TunedMatmul<MatmulConfig>[]) {}

  /**
   * The tuned config of the nearest shape class whose batch, M, K and N are each within a factor 2
   * of this product's (nearest in summed |log2 ratio|); undefined (use the defaults) otherwise, so a
   * winner is never stretched to shapes far from the one it was measured on.
   */
  lookup(batch: number, M: number, K: number, N: number): TunedMatmul<MatmulConfig> | undefined {
    let best: TunedMatmul<MatmulConfig> | undefined;
    let bestDistance = Number.POSITIVE_INFINITY;
    const dims = [batch, M, K, N];
    for (const entry of this.entries) {
      let distance = 0;
      let near = true;
      for (let i = 0; i < 4; i++) {
        const d = Math.abs(Math.log2(dims[i] / entry.shape[i]));
        if (d > 1) near = false;
        distance += d;
      }
      if (near && distance < bestDistance) {
        best = entry;
        bestDistance = distance;
      }
    }
    return best;
  }
}

export type LoadedTuning =
  | { tuning: MatmulTuning; warning?: undefined; entries: number }
  | { tuning?: undefined; warning: string };

/**
 * Validates tuning-cache contents (src/tune/cache.ts) for this adapter: a corrupt file, an unknown
 * version or no entry for this adapter gives a warning (one line) and no tuning; never throws.
 */
export function loadTuning(data: unknown, info: AdapterDescription, limits: WorkgroupLimits): LoadedTuning {
  const read = readAdapterTuning(data, info, limits, checkMatmulConfig);
  if (read.warning !== undefined) return { warning: read.warning };
  return { tuning: new MatmulTuning(read.entries), entries: read.entries.length };
}

/** The winners of `sharpness-lab tune` each engine dispatches with; owned here, not by the engine. */
const tunings = new WeakMap<Engine, MatmulTuning>();

/** Makes matmul on `engine` use these tuned configs (undefined: the built-in defaults). */
export function setMatmulTuning(engine: Engine, tuning: MatmulTuning | undefined): void {
  if (tuning) tunings.set(engine, tuning);
  else tunings.delete(engine);
}

export function matmulTuning(engine: Engine): MatmulTuning | undefined {
  return tunings.get(engine);
}

/** Default workgroup of the 4×4 kernel on hardware adapters: 8×8 invocations, a 32×32 tile of C. */
export const MATMUL_DEFAULT_WORKGROUP = [8, 8] as const;

/** Invocations per workgroup of the flattened kernel. */
const FLAT_WORKGROUP = 64;

/** Smallest power of two ≥ n, clamped to [1, max]. */
function fitPow2(n: number, max: number): number {
  let p = 1;
  while (p < n && p < max) p *= 2;
  return p;
}

/**
 * The kernel and workgroup `matmul` uses for an M×N result on this engine's adapter (`variant`
 * forces the kernel). Hardware adapters keep the 4×4 kernel with 8×8 workgroups. On SwiftShader
 * (CPU) the 16×8 kernel is used unless M < 16, where most of its rows would be clamped copies, and
 * workgroups are shrunk (powers of two) to the invocations the result needs, at most 8 × 4 (16×8)
 * or 8 × 8 (4×4), so small matrices do not launch mostly idle workgroups. With subgroups the 16×8
 * kernel's subgroup form takes results wider than 16 columns (WG_X ≥ 4; narrower ones would pad
 * WG_X with idle invocations).
 */
export function matmulVariant(
  engine: Engine,
  M: number,
  N: number,
  variant?: MatmulVariant,
  batch = 1,
): { variant: MatmulVariant; workgroup: readonly [number, number] } {
  // Many replicas of a result of at most 16 blocks, or of a result at most 4 wide (whose 16×8 tiles
  // would be mostly idle): one flat grid instead of workgroups per replica. Measured on SwiftShader,
  // 80 replicas of 200×2·2×2: 4.5 ms tiled, 1.9 ms flat; of 2×200·200×2: 8.9 ms vs 1.4 ms.
  const smallBatched = batch >= 4 && (Math.ceil(M / 4) * Math.ceil(N / 4) <= 16 || Math.min(M, N) <= 4);
  if (variant === 'flat4x4' || (variant === undefined && smallBatched)) {
    return { variant: 'flat4x4', workgroup: [FLAT_WORKGROUP, 1] };
  }
  if (!isSwiftShader(engine.context)) {
    return { variant: variant ?? 'tile4x4', workgroup: MATMUL_DEFAULT_WORKGROUP };
  }
  const subgroups = N > 16 && matmulVariantAvailable(engine, 'subgroup16x8');
  const chosen = variant ?? (M >= 16 ? (subgroups ? 'subgroup16x8' : 'tile16x8') : 'tile4x4');
  const { rows, cols } = MATMUL_VARIANTS[chosen];
  const maxY = chosen === 'tile4x4' ? 8 : 4;
  const minX = chosen === 'subgroup16x8' ? SWIFTSHADER_SUBGROUP : 1;
  return {
    variant: chosen,
    workgroup: [Math.max(minX, fitPow2(Math.ceil(N / cols), 8)), fitPow2(Math.ceil(M / rows), maxY)],
  };
}

/**
 * The kernel and workgroup a product of `batch` M×K by K×N uses: what the options force; else the
 * engine's tuning cache for the nearest tuned shape class (`sharpness-lab tune`); else the defaults
 * of `matmulVariant`.
 */
export function matmulConfig(
  engine: Engine,
  batch: number,
  M: number,
  K: number,
  N: number,
  options: Pick<MatmulOptions, 'variant' | 'workgroup'> = {},
): { variant: MatmulVariant; workgroup: readonly [number, number]; source: 'options' | 'tuned' | 'default' } {
  if (options.variant === undefined && options.workgroup === undefined) {
    const tuned = matmulTuning(engine)?.lookup(batch, M, K, N);
    if (tuned && matmulVariantAvailable(engine, tuned.tuned.variant))
      return { ...tuned.tuned, source: 'tuned' };
  }
  const chosen = matmulVariant(engine, M, N, options.variant, batch);
  if (options.workgroup) return { variant: chosen.variant, workgroup: options.workgroup, source: 'options' };
  return { ...chosen, source: options.variant === undefined ? 'default' : 'options' };
}

/** op(A) is M×K and op(B) K×N, or an input error; also for operands not yet computed (the tape's). */
export function matmulShape(
  a: { readonly shape: readonly number[] },
  b: { readonly shape: readonly number[] },
  options: Pick<MatmulOptions, 'transposeA' | 'transposeB'> = {},
): { M: number; K: number; N: number } {
  if (a.shape.length !== 2)
    throw new InputError('matmul.a', `must be a matrix per replica, got [${a.shape}]`);
  if (b.shape.length !== 2)
    throw new InputError('matmul.b', `must be a matrix per replica, got [${b.shape}]`);
  const [M, K] = options.transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [KB, N] = options.transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (K !== KB)
    throw new InputError('matmul', `inner dimensions differ: op(A) is ${M}×${K}, op(B) is ${KB}×${N}`);
  return { M, K, N };
}

/**
 * C[b] = act(alpha·op(A[b])·op(B[b]) + beta·C[b] + bias[b]) for every replica b, where
 * op(X) = Xᵀ when the transpose flag is set; a batch-1 operand is shared by all replicas.
 * A is [M, K] ([K, M] transposed), B is [K, N] ([N, K] transposed), C is [M, N].
 */
export function matmul(engine: Engine, a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const { M, K, N } = matmulShape(a, b, options);
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
  const addend = options.addend;
  if (addend) {
    if (options.bias) throw new InputError('matmul.addend', 'give a bias or an addend, not both');
    if (addend.size !== M * N || (addend.batch !== 1 && addend.batch !== batch))
      throw new InputError('matmul.addend', `expected [${M}, ${N}] with batch 1 or ${batch}, got ${addend}`);
    // WebGPU forbids one buffer bound both read-only and writable in a dispatch.
    if (options.out && addend.buffer === options.out.buffer)
      throw new InputError(
        'matmul.addend',
        'shares memory with `out`; accumulate into `out` with beta instead',
      );
  }
  // The bias binding carries either a per-column bias or the addend (row stride N).
  const added = options.bias ?? addend;
  if (options.variant !== undefined && !Object.hasOwn(MATMUL_VARIANTS, options.variant)) {
    throw new InputError(
      'matmul.variant',
      `unknown variant '${options.variant}' (known: ${Object.keys(MATMUL_VARIANTS).join(', ')})`,
    );
  }
  if (options.variant !== undefined && !matmulVariantAvailable(engine, options.variant))
    throw new InputError(
      'matmul.variant',
      `'${options.variant}' needs SwiftShader with the subgroups feature`,
    );
  const chosen = matmulConfig(engine, batch, M, K, N, options);
  const { shader, rows, cols } = MATMUL_VARIANTS[chosen.variant];
  const [wgX, wgY] = chosen.workgroup;
  if (chosen.variant === 'subgroup16x8' && wgX % SWIFTSHADER_SUBGROUP !== 0)
    throw new InputError(
      'matmul.workgroup',
      `the subgroup kernel needs WG_X a multiple of ${SWIFTSHADER_SUBGROUP} (its subgroups share rows), got ${wgX}`,
    );
  const flat = chosen.variant === 'flat4x4';
  const flatGroups = Math.ceil((batch * ceilDiv(M, 4) * ceilDiv(N, 4)) / wgX);
  engine.launch({
    kernel: 'matmul',
    shader,
    constants: flat ? { WG: wgX } : { WG_X: wgX, WG_Y: wgY },
    buffers: {
      a: { tensor: a },
      b: { tensor: b },
      bias: { tensor: added ?? placeholder(engine) },
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
      biasBatch: added && added.batch > 1 ? (addend ? M * N : N) : 0,
      biasRow: addend ? N : 0,
      hasBias: added ? 1 : 0,
      activation: ACTIVATION_CODE[options.activation ?? 'none'],
      alpha: options.alpha ?? 1,
      beta,
      batch,
    },
    workgroups: flat
      ? [Math.min(flatGroups, 65535), ceilDiv(flatGroups, 65535), 1]
      : [ceilDiv(N, cols * wgX), ceilDiv(M, rows * wgY), batch],
  });
  return out;
}
