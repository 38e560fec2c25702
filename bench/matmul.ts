/**
 * Matmul throughput, side by side on one adapter in one process: our `matmul`, TensorFlow.js's WebGPU
 * backend, and a plain TypeScript loop on the CPU. GFLOP/s = 2·batch·M·K·N / seconds, where seconds
 * is the median wall-clock time of one repetition from its launch until the GPU has finished.
 */
import { InputError } from '../src/errors.ts';
import { matmul } from '../src/kernels/matmul.ts';
import type { Tensor } from '../src/tensor/engine.ts';
import { markdownTable } from './format.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { measure, measureInterleaved, randomFloats } from './timing.ts';

export const MATMUL_ENGINES = ['sharpness-lab', 'tfjs-webgpu', 'cpu'] as const;
export type MatmulEngine = (typeof MATMUL_ENGINES)[number];

/** [batch, M, K, N]: C (M×N) = A (M×K) · B (K×N) for each of `batch` independent replicas. */
export type MatmulShape = readonly [number, number, number, number];

export const MATMUL_SHAPES: readonly MatmulShape[] = [
  [1, 512, 512, 512],
  [1, 1024, 1024, 1024],
  [1, 4096, 64, 64], // tall-skinny: a batch of activations times a small weight
  [1, 64, 256, 4096], // short-wide
  [64, 32, 32, 32], // many small replicas
];

/**
 * The shapes to run: SHARPNESS_LAB_BENCH_MATMUL_SHAPES (e.g. `64x32x32x32,1x512x512x512`, each
 * batch×m×k×n) replaces the default list — a quick run, or one shape of interest.
 */
export function matmulShapes(
  spec = globalThis.process?.env?.SHARPNESS_LAB_BENCH_MATMUL_SHAPES,
): readonly MatmulShape[] {
  if (!spec) return MATMUL_SHAPES;
  return spec.split(',').map((item) => {
    const dims = item.trim().split('x').map(Number);
    if (dims.length !== 4 || !dims.every((d) => Number.isInteger(d) && d > 0))
      throw new InputError(
        'SHARPNESS_LAB_BENCH_MATMUL_SHAPES',
        `'${item}' is not batch×m×k×n (e.g. 64x32x32x32)`,
      );
    return dims as unknown as MatmulShape;
  });
}

export interface MatmulResult extends BenchResult {
  engine: MatmulEngine;
  shape: MatmulShape;
}

/** Largest |got − want| over the largest |want|: a wrong index gives O(1), f32 rounding ~1e-6. */
export const MAX_RELATIVE_ERROR = 1e-4;

/** A case prepared on one engine: inputs uploaded, ready to repeat. */
interface Prepared {
  /** One repetition: launch, then wait until the result is complete. */
  run(): Promise<void>;
  /** One launch whose result is read back (the correctness check; also the warm-up). */
  result(): Promise<Float32Array>;
  dispose(): void;
}

interface Peer {
  name: MatmulEngine;
  /** Fewest timed repetitions (the CPU loop at 1024³ takes seconds: one is enough there). */
  minReps: number;
  prepare(shape: MatmulShape, a: Float32Array, b: Float32Array): Promise<Prepared>;
}

function flops([batch, m, k, n]: MatmulShape): number {
  return 2 * batch * m * k * n;
}

/** The CPU reference: a triple loop in i-k-j order (unit-stride inner loop), f32 storage. */
export function cpuMatmul([batch, m, k, n]: MatmulShape, a: Float32Array, b: Float32Array): Float32Array {
  const c = new Float32Array(batch * m * n);
  for (let r = 0; r < batch; r++) {
    const aBase = r * m * k;
    const bBase = r * k * n;
    const cBase = r * m * n;
    for (let i = 0; i < m; i++) {
      const cRow = cBase + i * n;
      for (let p = 0; p < k; p++) {
        const aip = a[aBase + i * k + p];
        const bRow = bBase + p * n;
        for (let j = 0; j < n; j++) c[cRow + j] += aip * b[bRow + j];
      }
    }
  }
  return c;
}

export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Number.POSITIVE_INFINITY;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    err = d > err || Number.isNaN(d) ? d : err;
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / (scale || 1);
}

/** Checks the CPU loop itself on sampled entries against float64 dot products. */
function checkCpuReference(shape: MatmulShape, a: Float32Array, b: Float32Array, c: Float32Array): number {
  const [batch, m, k, n] = shape;
  const random = randomFloats(3 * 256, 99);
  const got: number[] = [];
  const want: number[] = [];
  for (let s = 0; s < 256; s++) {
    const pick = (x: number, size: number) => Math.min(size - 1, Math.floor(((x + 1) / 2) * size));
    const [r, i, j] = [pick(random[3 * s], batch), pick(random[3 * s + 1], m), pick(random[3 * s + 2], n)];
    let sum = 0;
    for (let p = 0; p < k; p++) sum += a[(r * m + i) * k + p] * b[(r * k + p) * n + j];
    got.push(c[(r * m + i) * n + j]);
    want.push(sum);
  }
  return maxRelativeError(got, want);
}

function sharpnessLabPeer(context: BenchContext): Peer {
  const { engine } = context;
  return {
    name: 'sharpness-lab',
    minReps: 3,
    async prepare([batch, m, k, n], aData, bData) {
      const a = engine.tensor(aData, [m, k], { batch, label: 'bench A' });
      const b = engine.tensor(bData, [k, n], { batch, label: 'bench B' });
      const once = (): Tensor => matmul(engine, a, b);
      return {
        async run() {
          const c = once();
          await engine.sync();
          c.dispose();
        },
        async result() {
          const c = once();
          const data = (await c.read()) as Float32Array;
          c.dispose();
          return data;
        },
        dispose() {
          a.dispose();
          b.dispose();
        },
      };
    },
  };
}

function tfjsPeer(context: BenchContext): Peer {
  return {
    name: 'tfjs-webgpu',
    minReps: 3,
    async prepare([batch, m, k, n], aData, bData) {
      const t = await context.tfjs();
      const { tf } = t;
      const a = tf.tensor3d(aData, [batch, m, k]);
      const b = tf.tensor3d(bData, [batch, k, n]);
      return {
        async run() {
          const c = tf.matMul(a, b);
          await t.sync();
          c.dispose();
        },
        async result() {
          const c = tf.matMul(a, b);
          const data = (await c.data()) as Float32Array;
          c.dispose();
          return data;
        },
        dispose() {
          a.dispose();
          b.dispose();
        },
      };
    },
  };
}

function cpuPeer(): Peer {
  return {
    name: 'cpu',
    minReps: 1,
    async prepare(shape, a, b) {
      return {
        async run() {
          cpuMatmul(shape, a, b);
        },
        async result() {
          return cpuMatmul(shape, a, b);
        },
        dispose() {},
      };
    },
  };
}

/** The shape whose GFLOP/s stands for the adapter's matmul-bound rate (the train suite's bound). */
export const MATMUL_BOUND_SHAPE: MatmulShape = [1, 512, 512, 512];

/** Our `matmul` on one shape, ready to time beside other work (the train suite's bound). */
export interface MatmulRate {
  /** One repetition: launch, then wait until the GPU has finished (as the suite times it). */
  run(): Promise<void>;
  /** GFLOP/s at a median of `seconds` per repetition. */
  gflops(seconds: number): number;
  dispose(): void;
}

/** Prepares our `matmul` on `shape` and runs it once, read back (the warm-up: pipelines, buffers). */
export async function prepareOurMatmul(context: BenchContext, shape: MatmulShape): Promise<MatmulRate> {
  const [batch, m, k, n] = shape;
  const prepared = await sharpnessLabPeer(context).prepare(
    shape,
    randomFloats(batch * m * k, 1),
    randomFloats(batch * k * n, 2),
  );
  await prepared.result();
  return { run: prepared.run, gflops: (seconds) => flops(shape) / seconds / 1e9, dispose: prepared.dispose };
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

async function runMatmul(context: BenchContext): Promise<MatmulResult[]> {
  const results: MatmulResult[] = [];
  const log = (line: string) => context.log(`matmul ${line}`);
  const peers = [sharpnessLabPeer(context), tfjsPeer(context)];
  const cpu = cpuPeer();
  for (const [index, shape] of matmulShapes().entries()) {
    const [batch, m, k, n] = shape;
    const label = formatShape(shape);
    const a = randomFloats(batch * m * k, 2 * index + 1);
    const b = randomFloats(batch * k * n, 2 * index + 2);
    const shapeResults = new Map<MatmulEngine, MatmulResult>();
    const record = (engine: MatmulEngine, gflops: number | null, error?: string) => {
      shapeResults.set(engine, { engine, shape, gflops, ...(error ? { error } : {}) });
      log(`${label} ${engine}: ${gflops === null ? `no result (${error})` : `${gflops.toFixed(3)} GFLOP/s`}`);
    };

    // The reference (also the CPU engine's warm-up), itself checked against float64 dot products.
    log(`${label} cpu: reference result`);
    const cpuPrepared = await cpu.prepare(shape, a, b);
    const reference = await cpuPrepared.result();
    const cpuError = checkCpuReference(shape, a, b, reference);
    const referenceOk = cpuError <= MAX_RELATIVE_ERROR;

    // Each GPU engine: one checked launch (also the warm-up: pipelines, buffer pools), then the
    // engines that passed are timed interleaved, so load from other work hits them alike.
    const timed: { peer: Peer; prepared: Prepared }[] = [];
    const opened: Prepared[] = [];
    try {
      for (const peer of peers) {
        if (!referenceOk) {
          record(peer.name, null, 'the CPU reference failed its own check');
          continue;
        }
        try {
          log(`${label} ${peer.name}: warm-up and correctness check`);
          const prepared = await peer.prepare(shape, a, b);
          opened.push(prepared);
          const error = maxRelativeError(await prepared.result(), reference);
          if (!(error <= MAX_RELATIVE_ERROR)) {
            record(peer.name, null, `wrong result: max relative error ${error.toExponential(2)}`);
            continue;
          }
          log(`${label} ${peer.name}: correct (max relative error ${error.toExponential(2)})`);
          timed.push({ peer, prepared });
        } catch (error) {
          record(peer.name, null, (error as Error).message.split('\n')[0]);
        }
      }
      if (timed.length > 0) {
        log(`${label} timing ${timed.map((t) => t.peer.name).join(' and ')}, interleaved`);
        try {
          const timings = await measureInterleaved(
            timed.map((t) => t.prepared.run),
            { minSeconds: context.minSeconds, minReps: Math.max(...timed.map((t) => t.peer.minReps)) },
          );
          for (const [i, { peer }] of timed.entries())
            record(peer.name, flops(shape) / timings[i].median / 1e9);
        } catch (error) {
          for (const { peer } of timed) record(peer.name, null, (error as Error).message.split('\n')[0]);
        }
      }
    } finally {
      for (const prepared of opened) prepared.dispose();
    }

    if (referenceOk) {
      log(`${label} cpu: timing`);
      const timing = await measure(cpuPrepared.run, {
        minSeconds: context.minSeconds,
        minReps: cpu.minReps,
        warmup: false,
      });
      record('cpu', flops(shape) / timing.median / 1e9);
    } else {
      record('cpu', null, `wrong result: max relative error ${cpuError.toExponential(2)} against float64`);
    }
    for (const engine of MATMUL_ENGINES) results.push(shapeResults.get(engine)!);
  }
  return results;
}

function ratio(x: number | null | undefined, y: number | null | undefined): string {
  return x && y ? `${(x / y).toFixed(2)}×` : '—';
}

function formatMatmulTable(results: readonly BenchResult[]): string {
  const rows = new Map<string, Map<string, number | null>>();
  for (const r of results) {
    const key = formatShape(r.shape);
    if (!rows.has(key)) rows.set(key, new Map());
    rows.get(key)!.set(r.engine, r.gflops);
  }
  const header = ['shape [b, m, k, n]', ...MATMUL_ENGINES, 'ours/tfjs', 'ours/cpu'];
  const lines = [...rows].map(([shape, byEngine]) => {
    const ours = byEngine.get('sharpness-lab');
    return [
      shape,
      ...MATMUL_ENGINES.map((e) => {
        const g = byEngine.get(e);
        return g === undefined ? '' : g === null ? 'failed' : g.toFixed(3);
      }),
      ratio(ours, byEngine.get('tfjs-webgpu')),
      ratio(ours, byEngine.get('cpu')),
    ];
  });
  return [
    'matmul: GFLOP/s (2·b·m·k·n / median seconds per repetition; higher is better)',
    '',
    markdownTable(header, lines),
  ].join('\n');
}

export const suite: BenchSuite = {
  run: runMatmul,
  formatTable: formatMatmulTable,
};
