/**
 * The matmul autotuner: for each shape class, every candidate kernel variant × workgroup shape (the
 * `override` tunables of shaders/matmul*.wgsl) is first checked against a float64 CPU reference and
 * only then timed — with GPU timestamps through the engine's profiler when the adapter has them,
 * else on the wall clock. The winner and the default are finally re-timed side by side.
 */
import type { ProfileClock } from '../profile/profiler.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { MatmulShape, TunedMatmul } from '../tune/cache.ts';
import {
  MATMUL_VARIANTS,
  type MatmulConfig,
  type MatmulVariant,
  matmul,
  matmulVariant,
  matmulVariantAvailable,
  SWIFTSHADER_SUBGROUP,
} from './matmul.ts';

export interface ShapeClass {
  name: string;
  shape: MatmulShape;
  description: string;
}

/** The shape classes `tune` searches by default: what the experiments and benchmarks multiply. */
export const SHAPE_CLASSES: readonly ShapeClass[] = [
  { name: 'square', shape: [1, 512, 512, 512], description: 'square large' },
  { name: 'tall-skinny', shape: [1, 4096, 64, 64], description: 'activations × a small weight' },
  { name: 'wide', shape: [1, 64, 256, 4096], description: 'short-wide' },
  { name: 'batched-small', shape: [64, 32, 32, 32], description: '64 replicas of 32×32×32' },
  { name: 'batched-tiny', shape: [64, 10, 2, 2], description: 'deep linear d = 2, batch 10, 64 replicas' },
];

/** f32 unit roundoff. */
const F32_UNIT = 2 ** -24;

/** Rounding-error bound of a length-k f32 dot product: 2(k + 2)·u·Σ|aᵢbᵢ| (γ_k with a 2× margin). */
export function dotProductBound(k: number, absoluteSum: number): number {
  return 2 * (k + 2) * F32_UNIT * absoluteSum;
}

export function configLabel(config: MatmulConfig): string {
  return config.variant === 'flat4x4'
    ? `${config.variant} WG=${config.workgroup[0]}`
    : `${config.variant} ${config.workgroup[0]}×${config.workgroup[1]}`;
}

function pow2Upto(max: number): number[] {
  const out: number[] = [];
  for (let p = 1; p <= max; p *= 2) out.push(p);
  return out;
}

/**
 * Every workgroup shape worth trying on this device: powers of two within its workgroup limits,
 * no wider or taller than the result needs (a larger one would only add idle invocations), for each
 * kernel variant; the default configuration comes first.
 */
export function matmulCandidates(engine: Engine, shape: MatmulShape): MatmulConfig[] {
  const [batch, M, , N] = shape;
  const limits = engine.limits;
  const maxInvocations = limits.maxComputeInvocationsPerWorkgroup;
  const out: MatmulConfig[] = [matmulVariant(engine, M, N, undefined, batch)];
  const key = (c: MatmulConfig) => `${c.variant}:${c.workgroup.join('x')}`;
  const seen = new Set(out.map(key));
  const add = (c: MatmulConfig) => {
    if (!seen.has(key(c))) {
      seen.add(key(c));
      out.push(c);
    }
  };
  for (const variant of Object.keys(MATMUL_VARIANTS) as MatmulVariant[]) {
    if (!matmulVariantAvailable(engine, variant)) continue;
    const { rows, cols } = MATMUL_VARIANTS[variant];
    if (variant === 'flat4x4') {
      const blocks = batch * Math.ceil(M / 4) * Math.ceil(N / 4);
      for (const wg of pow2Upto(Math.min(maxInvocations, limits.maxComputeWorkgroupSizeX)))
        if (wg >= 8 && wg < 2 * blocks) add({ variant, workgroup: [wg, 1] });
      continue;
    }
    const needX = Math.ceil(N / cols);
    const needY = Math.ceil(M / rows);
    for (const x of pow2Upto(Math.min(64, limits.maxComputeWorkgroupSizeX))) {
      if (x >= 2 * needX && !(variant === 'subgroup16x8' && x === SWIFTSHADER_SUBGROUP)) continue;
      if (variant === 'subgroup16x8' && x % SWIFTSHADER_SUBGROUP !== 0) continue;
      for (const y of pow2Upto(Math.min(32, limits.maxComputeWorkgroupSizeY))) {
        if (y >= 2 * needY || x * y > maxInvocations) continue;
        // Below 4 invocations a workgroup leaves SIMD lanes idle, unless the result is that small.
        if (x * y < 4 && x * y < needX * needY) continue;
        add({ variant, workgroup: [x, y] });
      }
    }
  }
  // Nearest to the default first (in log2 of each workgroup side, another kernel counting 1), so a
  // budget that runs out has tried the likeliest neighbours.
  const [base, ...rest] = out;
  const distance = (c: MatmulConfig) =>
    (c.variant === base.variant ? 0 : 1) +
    Math.abs(Math.log2(c.workgroup[0] / base.workgroup[0])) +
    Math.abs(Math.log2(c.workgroup[1] / base.workgroup[1]));
  return [base, ...rest.sort((x, y) => distance(x) - distance(y))];
}

/** One candidate run: C = A·B with this config (the default; tests inject wrong ones here). */
export type CandidateRunner = (engine: Engine, config: MatmulConfig, a: Tensor, b: Tensor) => Tensor;

const runConfig: CandidateRunner = (engine, config, a, b) =>
  matmul(engine, a, b, { variant: config.variant, workgroup: config.workgroup });

export interface TuneOptions {
  shapes: readonly ShapeClass[];
  /** Wall-clock seconds for the whole search (the default and the final comparison always run). */
  budgetSeconds: number;
  /** Seconds of repetitions per timing of one candidate (default 0.15). */
  sampleSeconds?: number;
  candidates?: (engine: Engine, shape: MatmulShape) => MatmulConfig[];
  runCandidate?: CandidateRunner;
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface CandidateOutcome {
  config: MatmulConfig;
  /** Largest error over its bound (≤ 1 passes); Infinity for NaN or a failed launch. */
  errorRatio: number;
  error?: string;
  gflops?: number;
}

export interface TuneOutcome extends TunedMatmul<MatmulConfig> {
  candidates: CandidateOutcome[];
  /** Candidates the budget left untried. */
  skipped: number;
}

/** Deterministic uniform [-1, 1) values rounded to f32 (mulberry32): every run tunes and benchmarks the same inputs. */
export function deterministicFloats(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** float64 C = A·B per replica, with Σ|aᵢₖbₖⱼ| per entry for the error bound. */
export function referenceMatmul(
  [batch, M, K, N]: MatmulShape,
  a: Float32Array,
  b: Float32Array,
): { c: Float64Array; magnitude: Float64Array } {
  const c = new Float64Array(batch * M * N);
  const magnitude = new Float64Array(batch * M * N);
  for (let r = 0; r < batch; r++) {
    for (let i = 0; i < M; i++) {
      const row = (r * M + i) * N;
      for (let k = 0; k < K; k++) {
        const aik = a[(r * M + i) * K + k];
        const bRow = (r * K + k) * N;
        for (let j = 0; j < N; j++) {
          const product = aik * b[bRow + j];
          c[row + j] += product;
          magnitude[row + j] += Math.abs(product);
        }
      }
    }
  }
  return { c, magnitude };
}

/** Largest |got − want| / bound over all entries: ≤ 1 is within f32 rounding; NaN reads as Infinity. */
export function errorRatio(
  got: ArrayLike<number>,
  c: Float64Array,
  magnitude: Float64Array,
  K: number,
): number {
  if (got.length < c.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < c.length; i++) {
    const ratio = Math.abs(got[i] - c[i]) / (dotProductBound(K, magnitude[i]) + 1e-30);
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Number.POSITIVE_INFINITY : ratio;
  }
  return worst;
}

/** Seconds per product of one config: repetitions filling `seconds`, timed on the given clock. */
async function secondsPerProduct(
  engine: Engine,
  run: () => void,
  clock: ProfileClock,
  seconds: number,
  maxReps = 200,
): Promise<number> {
  const timeReps = async (reps: number): Promise<number> => {
    if (clock === 'gpu-timestamp') {
      engine.profiler.reset();
      engine.profiler.start();
      for (let i = 0; i < reps; i++) run();
      await engine.sync();
      engine.profiler.stop();
      const report = await engine.profiler.report();
      engine.profiler.reset();
      return report.totalMs / 1000 / reps;
    }
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) run();
    await engine.sync();
    return (performance.now() - t0) / 1000 / reps;
  };
  const first = await timeReps(1);
  const reps = Math.max(1, Math.min(maxReps, Math.floor(seconds / Math.max(first, 1e-6))));
  // Two samples of `reps`; the smaller is the one less disturbed by other work on the machine.
  return Math.min(first, await timeReps(reps), await timeReps(reps));
}

/**
 * Searches each shape class and returns its default and winning config with GFLOP/s of both.
 * A candidate whose output misses the float64 reference by more than the f32 bound is rejected
 * before it is timed, and can never win.
 */
export async function tuneMatmul(engine: Engine, options: TuneOptions): Promise<TuneOutcome[]> {
  const clock: ProfileClock =
    engine.profiler.hasTimestamps && !engine.profiler.recording ? 'gpu-timestamp' : 'wall-clock';
  const sample = options.sampleSeconds ?? 0.15;
  const runCandidate = options.runCandidate ?? runConfig;
  const candidateLists = options.shapes.map((s) => (options.candidates ?? matmulCandidates)(engine, s.shape));
  const total = candidateLists.reduce((n, list) => n + list.length, 0);
  const deadline = performance.now() + options.budgetSeconds * 1000;
  let done = 0;
  const outcomes: TuneOutcome[] = [];
  for (const [index, shapeClass] of options.shapes.entries()) {
    const shape = shapeClass.shape;
    const [batch, M, K, N] = shape;
    const flops = 2 * batch * M * K * N;
    const aData = deterministicFloats(batch * M * K, 2 * index + 1);
    const bData = deterministicFloats(batch * K * N, 2 * index + 2);
    const { c, magnitude } = referenceMatmul(shape, aData, bData);
    const a = engine.tensor(aData, [M, K], { batch, label: 'tune A' });
    const b = engine.tensor(bData, [K, N], { batch, label: 'tune B' });
    const defaultConfig = matmulVariant(engine, M, N, undefined, batch);
    const list = candidateLists[index];
    // This class's share of the remaining budget.
    const classDeadline =
      performance.now() + (deadline - performance.now()) / (options.shapes.length - index);
    const results: CandidateOutcome[] = [];
    let skipped = 0;
    for (const config of list) {
      const label = `${shapeClass.name} ${configLabel(config)}`;
      const isDefault = configLabel(config) === configLabel(defaultConfig);
      if (!isDefault && performance.now() > classDeadline) {
        skipped++;
        done++;
        continue;
      }
      options.onProgress?.(done, total, label);
      const outcome: CandidateOutcome = { config, errorRatio: Number.POSITIVE_INFINITY };
      results.push(outcome);
      try {
        const out = runCandidate(engine, config, a, b);
        const got = await out.read();
        out.dispose();
        outcome.errorRatio = errorRatio(got, c, magnitude, K);
        if (outcome.errorRatio <= 1) {
          const seconds = await secondsPerProduct(
            engine,
            () => runCandidate(engine, config, a, b).dispose(),
            clock,
            sample,
          );
          outcome.gflops = flops / seconds / 1e9;
        } else {
          outcome.error = `output differs from the float64 reference by ${outcome.errorRatio.toExponential(2)}× the f32 bound`;
        }
      } catch (error) {
        outcome.error = (error as Error).message;
      }
      done++;
    }
    const verified = results.filter((r) => r.gflops !== undefined);
    const defaultOutcome = results.find((r) => configLabel(r.config) === configLabel(defaultConfig));
    let best = verified.reduce<CandidateOutcome | undefined>(
      (x, y) => (x === undefined || (y.gflops ?? 0) > (x.gflops ?? 0) ? y : x),
      undefined,
    );
    // Re-time the default and the winner alternately, so both see the same machine load.
    let defaultGflops = defaultOutcome?.gflops ?? 0;
    let tunedGflops = best?.gflops ?? 0;
    if (best && defaultOutcome?.gflops !== undefined && best !== defaultOutcome) {
      const winner = best.config;
      const d: number[] = [];
      const t: number[] = [];
      for (let round = 0; round < 3; round++) {
        d.push(
          await secondsPerProduct(
            engine,
            () => runCandidate(engine, defaultConfig, a, b).dispose(),
            clock,
            sample,
          ),
        );
        t.push(
          await secondsPerProduct(engine, () => runCandidate(engine, winner, a, b).dispose(), clock, sample),
        );
      }
      defaultGflops = flops / Math.min(...d) / 1e9;
      tunedGflops = flops / Math.min(...t) / 1e9;
      // The search's pick must survive the side-by-side timing; otherwise keep the default.
      if (tunedGflops <= defaultGflops) {
        best = defaultOutcome;
        tunedGflops = defaultGflops;
      }
    }
    a.dispose();
    b.dispose();
    outcomes.push({
      shapeClass: shapeClass.name,
      shape,
      default: defaultConfig,
      tuned: best?.config ?? defaultConfig,
      defaultGflops,
      tunedGflops,
      clock,
      candidates: results,
      skipped,
    });
  }
  options.onProgress?.(total, total, 'done');
  return outcomes;
}

/** The outcomes worth caching: those whose winner passed verification (never a rejected config). */
export function verifiedWinners(outcomes: readonly TuneOutcome[]): TunedMatmul<MatmulConfig>[] {
  return outcomes
    .filter((o) =>
      o.candidates.some((c) => c.gflops !== undefined && configLabel(c.config) === configLabel(o.tuned)),
    )
    .map(({ shapeClass, shape, default: byDefault, tuned, defaultGflops, tunedGflops, clock }) => ({
      shapeClass,
      shape,
      default: byDefault,
      tuned,
      defaultGflops,
      tunedGflops,
      clock,
    }));
}
