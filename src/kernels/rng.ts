import { InputError, uint32Integer } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';

/**
 * Where in the random stream a launch draws from. Every value is a pure function of
 * (seed, stream, replica, counter, element index), so runs are reproducible and resumable.
 */
export interface RandomPosition {
  seed: number;
  /** Separates independent uses (data, label noise, probes, init) under one seed. */
  stream: number;
  /** Usually the training step; up to 2^53. */
  counter: number;
  /** Index of the first replica of this tensor within the run (default 0). */
  replicaOffset?: number;
}

const WORKGROUP = 64;

type Distribution = 'sample_uniform' | 'sample_normal' | 'sample_rademacher' | 'sample_integer';

function launchRandom(
  engine: Engine,
  entry: Distribution,
  out: Tensor,
  position: RandomPosition,
  a: number,
  b: number,
  bound: number,
): Tensor {
  uint32Integer('random.seed', position.seed);
  uint32Integer('random.stream', position.stream);
  if (
    !Number.isInteger(position.counter) ||
    position.counter < 0 ||
    position.counter > Number.MAX_SAFE_INTEGER
  ) {
    throw new InputError('random.counter', `must be a non-negative integer, got ${position.counter}`);
  }
  const n = out.size;
  const blocks = Math.ceil(n / 4) * out.batch;
  const { workgroups, rowStride } = grid1d(blocks, WORKGROUP, engine.limits.maxComputeWorkgroupsPerDimension);
  const integer = entry === 'sample_integer';
  engine.launch({
    kernel: `rng.${entry.slice(7)}`,
    shader: 'rng.wgsl',
    entry,
    constants: { WG: WORKGROUP },
    buffers: integer ? { outIndex: { tensor: out } } : { out: { tensor: out } },
    uniforms: {
      n,
      batch: out.batch,
      seed: position.seed,
      stream: position.stream,
      counterLo: position.counter % 2 ** 32,
      counterHi: Math.floor(position.counter / 2 ** 32),
      replicaOffset: position.replicaOffset ?? 0,
      // One invocation per block: grid1d's stride (invocations per row) is the blocks per row.
      rowStride,
      a,
      b,
      bound,
    },
    workgroups,
  });
  return out;
}

function target(
  engine: Engine,
  shape: readonly number[],
  batch: number,
  dtype: 'f32' | 'u32',
  out?: Tensor,
): Tensor {
  if (out && out.dtype !== dtype) throw new InputError('random.out', `must be ${dtype}, got ${out.dtype}`);
  return out ?? engine.empty(shape, { batch, dtype });
}

/** Uniform samples in (low, high). */
export function randomUniform(
  engine: Engine,
  shape: readonly number[],
  position: RandomPosition,
  options: { batch?: number; low?: number; high?: number; out?: Tensor } = {},
): Tensor {
  const out = target(engine, shape, options.batch ?? 1, 'f32', options.out);
  return launchRandom(engine, 'sample_uniform', out, position, options.low ?? 0, options.high ?? 1, 0);
}

/** Normal samples N(mean, std²). */
export function randomNormal(
  engine: Engine,
  shape: readonly number[],
  position: RandomPosition,
  options: { batch?: number; mean?: number; std?: number; out?: Tensor } = {},
): Tensor {
  const out = target(engine, shape, options.batch ?? 1, 'f32', options.out);
  return launchRandom(engine, 'sample_normal', out, position, options.mean ?? 0, options.std ?? 1, 0);
}

/** ±1 with equal probability. */
export function randomRademacher(
  engine: Engine,
  shape: readonly number[],
  position: RandomPosition,
  options: { batch?: number; out?: Tensor } = {},
): Tensor {
  const out = target(engine, shape, options.batch ?? 1, 'f32', options.out);
  return launchRandom(engine, 'sample_rademacher', out, position, 0, 0, 0);
}

/** u32 integers uniform in [0, bound): minibatch indices into a fixed dataset. */
export function randomIntegers(
  engine: Engine,
  shape: readonly number[],
  bound: number,
  position: RandomPosition,
  options: { batch?: number; out?: Tensor } = {},
): Tensor {
  if (!Number.isInteger(bound) || bound < 1 || bound > 0xffffffff)
    throw new InputError('random.bound', `must be an integer in [1, 2^32), got ${bound}`);
  const out = target(engine, shape, options.batch ?? 1, 'u32', options.out);
  return launchRandom(engine, 'sample_integer', out, position, 0, 0, bound);
}
