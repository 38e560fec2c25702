/**
 * SGD steps per second for the paper's set-ups. The deep linear preset (D = 3, d = 2, batch 10) runs
 * on three engines side by side at 1 and 64 replicas — our fused path (many steps per dispatch), our
 * general path (tape forward/backward, one submit per step) and a straightforward tfjs-webgpu loop
 * (bench/tfjs-train.ts) on the same adapter — timed interleaved; the other models run the general
 * path (1 and 8 replicas). Before timing, the tfjs loop and ours train from the same weights and
 * their population loss must fall toward the noise floor, so the peer is an honest SGD. For MLPs the
 * general path's step is also set against its matmul bound: the same products alone, timed
 * interleaved with the steps.
 */

import { matmul } from '../src/kernels/matmul.ts';
import { initParameters } from '../src/models/init.ts';
import { layerWidths } from '../src/models/model.ts';
import type { Tensor } from '../src/tensor/engine.ts';
import { fusedDispatchSteps } from '../src/train/fused.ts';
import { train } from '../src/train/trainer.ts';
import { sgdStepFlops } from './flops.ts';
import { markdownTable } from './format.ts';
import { MATMUL_BOUND_SHAPE, type MatmulRate, prepareOurMatmul } from './matmul.ts';
import { type BenchSetup, benchSetups, LINEAR_TEACHER } from './models.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { loadTfjsGradients } from './tfjs.ts';
import { deepLinearPopulationLoss, type TfjsDeepLinearSgd, tfjsDeepLinearSgd } from './tfjs-train.ts';
import { measureInterleaved } from './timing.ts';

export type TrainEngine = 'sharpness-lab' | 'tfjs-webgpu';
export type TrainPath = 'fused' | 'general' | 'tfjs';

export interface TrainResult extends BenchResult {
  engine: TrainEngine;
  model: string;
  /** 'fused' (many steps per dispatch), 'general' (autodiff tape, one submit per step), 'tfjs'. */
  path: TrainPath;
  replicas: number;
  batchSize: number;
  /** null when the engine could not run (then `error` says why). */
  stepsPerSecond: number | null;
  /** Flops of one step of all replicas, counted from the shapes (bench/flops.ts). */
  flopsPerStep: number;
  /**
   * The bound: our `matmul`'s GFLOP/s on MATMUL_BOUND_SHAPE, timed interleaved with this row's
   * engines (the same load falls on both); null if it could not run.
   */
  matmulGflops: number | null;
  /** flopsPerStep × stepsPerSecond over the bound's flop rate (null without either). */
  matmulBoundFraction: number | null;
  /**
   * General-path MLPs: time of the step's own matrix products alone (forward x·Wᵀ per layer, backward
   * gᵀ·h per layer and g·W below the top, same shapes and replicas) over the time of the whole step,
   * both timed interleaved: the share of the step its products take at their own shapes.
   */
  productsShare?: number;
}

/** A row as timed, before the flop count and fraction are attached in `run`. */
type TimedRow = Omit<TrainResult, 'flopsPerStep' | 'matmulBoundFraction'>;

/** Fractions of the matmul bound the issue asks for (issue 20), printed, never asserted. */
const BOUND_TARGETS = 'Transformer and RNN ≥ 30 %, MNIST MLP ≥ 50 %';

/** Did a loop learn: population loss before and after `steps` SGD steps from the same weights. */
export interface LearningCheck extends BenchResult {
  kind: 'learning-check';
  model: string;
  path: TrainPath;
  replicas: number;
  steps: number;
  learningRate: number;
  /** Mean over replicas of the population loss ½‖P − V‖²_F + ½ Tr Σ_ε. */
  lossBefore: number;
  lossAfter: number;
  /** ½ Tr Σ_ε, the loss at P = V. */
  noiseFloor: number;
  learned: boolean;
}

/** Learning check: steps and rate at which the excess loss of every engine falls well below its start. */
const CHECK_STEPS = 100;
const CHECK_LEARNING_RATE = 0.05;
/** Few replicas: the tfjs loop takes ~50 ms per step on SwiftShader. */
const CHECK_REPLICAS = 4;
/** The excess loss (above the floor) must fall to this fraction of its start. */
const CHECK_FRACTION = 0.5;

interface Runner {
  path: TrainPath;
  engine: TrainEngine;
  /** Steps one repetition takes (a fused repetition covers whole dispatches). */
  steps: number;
  rep(): Promise<void>;
  dispose(): void;
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

function widthsOf(setup: BenchSetup): number[] {
  const spec = setup.model.spec;
  if (spec.kind !== 'deep-linear') throw new Error(`${setup.name} is not a deep linear model`);
  return layerWidths(spec);
}

function initialWeights(context: BenchContext, setup: BenchSetup, replicas: number): Tensor[] {
  return initParameters(context.engine, setup.model, { kind: 'xavier' }, { replicas, seed: 1 });
}

/** Our loop on one path, `steps` per repetition, continuing the step counter across repetitions. */
function oursRunner(
  context: BenchContext,
  setup: BenchSetup,
  params: Tensor[],
  path: 'fused' | 'general',
  options: { steps: number; learningRate: number },
): Runner {
  const { engine } = context;
  const data = setup.data(engine);
  let step = 0;
  return {
    path,
    engine: 'sharpness-lab',
    steps: options.steps,
    async rep() {
      await train(engine, {
        model: setup.model,
        params,
        data,
        loss: setup.loss,
        learningRate: options.learningRate,
        batchSize: setup.batchSize,
        steps: options.steps,
        seed: 1,
        startStep: step,
        path,
      });
      step += options.steps;
      await engine.sync();
    },
    dispose() {
      for (const p of params) p.dispose();
      data.dispose();
    },
  };
}

async function tfjsRunner(
  context: BenchContext,
  setup: BenchSetup,
  replicas: number,
  initial: Float32Array[],
  options: { steps: number; learningRate: number },
): Promise<Runner & { loop: TfjsDeepLinearSgd }> {
  const t = await context.tfjs();
  await loadTfjsGradients();
  const loop = tfjsDeepLinearSgd(t.tf, {
    widths: widthsOf(setup),
    replicas,
    batchSize: setup.batchSize,
    learningRate: options.learningRate,
    V: LINEAR_TEACHER.V,
    noiseStd: LINEAR_TEACHER.noiseStd,
    initial,
    seed: 1,
  });
  return {
    path: 'tfjs',
    engine: 'tfjs-webgpu',
    steps: options.steps,
    loop,
    async rep() {
      for (let s = 0; s < options.steps; s++) loop.step();
      await t.sync();
    },
    dispose: () => loop.dispose(),
  };
}

const readAll = (tensors: readonly Tensor[]) =>
  Promise.all(tensors.map((t) => t.read() as Promise<Float32Array>));

/** The same initial weights as `initialWeights`, read back (for the tfjs loop and the CPU). */
async function initialArrays(
  context: BenchContext,
  setup: BenchSetup,
  replicas: number,
): Promise<Float32Array[]> {
  const tensors = initialWeights(context, setup, replicas);
  try {
    return await readAll(tensors);
  } finally {
    for (const t of tensors) t.dispose();
  }
}

/** Trains each engine CHECK_STEPS steps from the same weights; records population loss before/after. */
async function learningChecks(context: BenchContext, setup: BenchSetup): Promise<LearningCheck[]> {
  const replicas = CHECK_REPLICAS;
  const widths = widthsOf(setup);
  const { V, noiseStd } = LINEAR_TEACHER;
  const noiseFloor = 0.5 * noiseStd.reduce((s, v) => s + v * v, 0);
  const population = (w: Float32Array[]) => mean(deepLinearPopulationLoss(w, widths, V, noiseStd, replicas));
  const checks: LearningCheck[] = [];
  const record = (path: TrainPath, engine: TrainEngine, before: number, after: number, error?: string) => {
    const learned = after - noiseFloor <= CHECK_FRACTION * (before - noiseFloor);
    checks.push({
      kind: 'learning-check',
      engine,
      shape: [replicas, setup.batchSize],
      gflops: null,
      model: setup.name,
      path,
      replicas,
      steps: CHECK_STEPS,
      learningRate: CHECK_LEARNING_RATE,
      lossBefore: before,
      lossAfter: after,
      noiseFloor,
      learned,
      ...(error
        ? { error }
        : !learned
          ? { error: 'the population loss did not fall toward the noise floor' }
          : {}),
    });
    context.log(
      `train: learning check ${path}: population loss ${before.toPrecision(5)} → ${after.toPrecision(5)} after ${CHECK_STEPS} steps (floor ${noiseFloor.toPrecision(5)})`,
    );
  };
  const options = { steps: CHECK_STEPS, learningRate: CHECK_LEARNING_RATE };
  const start = await initialArrays(context, setup, replicas);
  const before = population(start);
  for (const path of ['fused', 'general'] as const) {
    const params = initialWeights(context, setup, replicas);
    const runner = oursRunner(context, setup, params, path, options);
    try {
      await runner.rep();
      record(path, 'sharpness-lab', before, population(await readAll(params)));
    } finally {
      runner.dispose();
    }
  }
  try {
    const runner = await tfjsRunner(context, setup, replicas, start, options);
    try {
      await runner.rep();
      record('tfjs', 'tfjs-webgpu', before, population(await runner.loop.weights()));
    } finally {
      runner.dispose();
    }
  } catch (error) {
    record('tfjs', 'tfjs-webgpu', before, Number.NaN, (error as Error).message.split('\n')[0]);
  }
  return checks;
}

/** The deep linear preset on fused, general and tfjs at `replicas`, timed interleaved. */
async function deepLinearRow(
  context: BenchContext,
  setup: BenchSetup,
  replicas: number,
  bound: MatmulRate | null,
): Promise<TimedRow[]> {
  const learningRate = 1e-3;
  const runners: Runner[] = [
    // Enough steps per repetition that a fused dispatch (256 steps) is measured whole.
    oursRunner(context, setup, initialWeights(context, setup, replicas), 'fused', {
      steps: 1024,
      learningRate,
    }),
    oursRunner(context, setup, initialWeights(context, setup, replicas), 'general', {
      steps: 10,
      learningRate,
    }),
  ];
  const results: TimedRow[] = [];
  let matmulGflops: number | null = null;
  const result = (
    r: Runner | { path: TrainPath; engine: TrainEngine },
    stepsPerSecond: number | null,
    error?: string,
  ) =>
    results.push({
      engine: r.engine,
      shape: [replicas, setup.batchSize],
      gflops: null,
      model: setup.name,
      path: r.path,
      replicas,
      batchSize: setup.batchSize,
      stepsPerSecond,
      matmulGflops,
      ...(error ? { error } : {}),
    });
  try {
    try {
      const initial = await initialArrays(context, setup, replicas);
      runners.push(await tfjsRunner(context, setup, replicas, initial, { steps: 10, learningRate }));
    } catch (error) {
      result({ path: 'tfjs', engine: 'tfjs-webgpu' }, null, (error as Error).message.split('\n')[0]);
    }
    context.log(
      `train: ${setup.name}, ${replicas} replica(s): warm-up, then ${runners.map((r) => r.path).join(', ')} interleaved`,
    );
    for (const r of [...runners]) {
      try {
        await r.rep();
      } catch (error) {
        // An engine that cannot run the loop is reported, the others still timed.
        result(r, null, (error as Error).message.split('\n')[0]);
        runners.splice(runners.indexOf(r), 1);
        r.dispose();
      }
    }
    const timings = await measureInterleaved([...runners.map((r) => r.rep), ...(bound ? [bound.run] : [])], {
      minSeconds: context.minSeconds,
      minReps: 2,
    });
    if (bound) matmulGflops = bound.gflops(timings[runners.length].median);
    for (const r of results) r.matmulGflops = matmulGflops;
    runners.forEach((r, i) => {
      result(r, r.steps / timings[i].median);
      context.log(
        `train: ${setup.name}, ${replicas} replica(s), ${r.path}: ${(r.steps / timings[i].median).toFixed(1)} steps/s`,
      );
    });
  } finally {
    for (const r of runners) r.dispose();
  }
  return results.sort((a, b) => ORDER.indexOf(a.path) - ORDER.indexOf(b.path));
}

const ORDER: TrainPath[] = ['fused', 'general', 'tfjs'];

/** Another preset model on one of our paths. */
async function pathRow(
  context: BenchContext,
  setup: BenchSetup,
  replicas: number,
  path: 'fused' | 'general',
  bound: MatmulRate | null,
  dispatchSteps = 1,
): Promise<TimedRow> {
  context.log(`train: ${setup.name}, ${replicas} replica(s), ${path} path`);
  const kind = setup.model.spec.kind === 'mlp' ? 'kaiming' : 'xavier';
  const params = initParameters(context.engine, setup.model, { kind }, { replicas, seed: 1 });
  // The fused path runs many steps per dispatch: time whole dispatches (at least 10 steps).
  const runner = oursRunner(context, setup, params, path, {
    steps: path === 'fused' ? dispatchSteps * Math.ceil(10 / dispatchSteps) : 10,
    learningRate: 1e-3,
  });
  const products = path === 'general' ? mlpProducts(context, setup, replicas, runner.steps) : undefined;
  try {
    await runner.rep();
    await products?.rep();
    const reps = [runner.rep, ...(bound ? [bound.run] : []), ...(products ? [products.rep] : [])];
    const timings = await measureInterleaved(reps, { minSeconds: context.minSeconds, minReps: 2 });
    const productsTiming = products ? timings[reps.length - 1] : undefined;
    return {
      ...(productsTiming ? { productsShare: productsTiming.median / timings[0].median } : {}),
      engine: 'sharpness-lab',
      shape: [replicas, setup.batchSize],
      gflops: null,
      model: setup.name,
      path,
      replicas,
      batchSize: setup.batchSize,
      stepsPerSecond: runner.steps / timings[0].median,
      matmulGflops: bound ? bound.gflops(timings[1].median) : null,
    };
  } finally {
    runner.dispose();
    products?.dispose();
  }
}

/**
 * The matrix products of `steps` general-path steps of an MLP (undefined for other models), as the
 * tape launches them: forward h·Wᵀ per layer, backward ∂W = gᵀ·h per layer and ∂h = g·W below the
 * top layer (the input takes no gradient). Bias, activation and loss kernels are left out.
 */
function mlpProducts(
  context: BenchContext,
  setup: BenchSetup,
  replicas: number,
  steps: number,
): { rep(): Promise<void>; dispose(): void } | undefined {
  const spec = setup.model.spec;
  if (spec.kind !== 'mlp') return undefined;
  const { engine } = context;
  const widths = layerWidths(spec);
  const rows = setup.batchSize;
  const filled = (shape: number[]) =>
    engine.tensor(new Float32Array(replicas * shape[0] * shape[1]).fill(0.01), shape, { batch: replicas });
  const layers = widths.slice(1).map((out, l) => ({
    input: filled([rows, widths[l]]),
    weight: filled([out, widths[l]]),
    grad: filled([rows, out]),
    output: engine.empty([rows, out], { batch: replicas }),
    weightGrad: engine.empty([out, widths[l]], { batch: replicas }),
    inputGrad: l > 0 ? engine.empty([rows, widths[l]], { batch: replicas }) : undefined,
  }));
  return {
    async rep() {
      for (let s = 0; s < steps; s++) {
        for (const layer of layers)
          matmul(engine, layer.input, layer.weight, { transposeB: true, out: layer.output });
        for (const layer of [...layers].reverse()) {
          matmul(engine, layer.grad, layer.input, { transposeA: true, out: layer.weightGrad });
          if (layer.inputGrad) matmul(engine, layer.grad, layer.weight, { out: layer.inputGrad });
        }
        engine.flush();
      }
      await engine.sync();
    },
    dispose() {
      for (const layer of layers) for (const t of Object.values(layer)) t?.dispose();
    },
  };
}

/** Attaches a row's flops per step and the fraction of the matmul bound its rate reaches. */
function withFlops(setup: BenchSetup, row: TimedRow): TrainResult {
  const flopsPerStep = sgdStepFlops({
    student: setup.model.spec,
    teacher: setup.teacher,
    batchSize: row.batchSize,
    replicas: row.replicas,
  });
  const matmulBoundFraction =
    row.stepsPerSecond !== null && row.matmulGflops
      ? (flopsPerStep * row.stepsPerSecond) / (row.matmulGflops * 1e9)
      : null;
  return { ...row, flopsPerStep, matmulBoundFraction };
}

async function run(context: BenchContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  let bound: MatmulRate | null = null;
  try {
    bound = await prepareOurMatmul(context, MATMUL_BOUND_SHAPE);
  } catch (error) {
    // The rows are still timed; their fractions are null.
    context.log(`train: the matmul bound could not run: ${(error as Error).message.split('\n')[0]}`);
  }
  // SHARPNESS_LAB_BENCH_TRAIN_MODELS=MNIST,RNN: only the set-ups whose names contain one of these.
  const only = globalThis.process?.env?.SHARPNESS_LAB_BENCH_TRAIN_MODELS?.split(',').map((n) =>
    n.trim().toLowerCase(),
  );
  const setups = benchSetups(context).filter(
    (s) => !only || only.some((n) => s.name.toLowerCase().includes(n)),
  );
  try {
    for (const setup of setups) {
      const counted = (rows: TimedRow[]) => rows.map((row) => withFlops(setup, row));
      if (setup.model.spec.kind === 'deep-linear') {
        results.push(...(await learningChecks(context, setup)));
        for (const replicas of [1, 64])
          results.push(...counted(await deepLinearRow(context, setup, replicas, bound)));
      } else {
        for (const replicas of [1, 8]) {
          // Teacher–student MLPs and RNNs also have a fused kernel.
          const probe = setup.data(context.engine);
          const dispatchSteps = fusedDispatchSteps(setup.model, probe, setup.loss, setup.batchSize);
          probe.dispose();
          if (dispatchSteps)
            results.push(
              ...counted([await pathRow(context, setup, replicas, 'fused', bound, dispatchSteps)]),
            );
          results.push(...counted([await pathRow(context, setup, replicas, 'general', bound)]));
        }
      }
    }
  } finally {
    bound?.dispose();
  }
  return results;
}

const share = (fraction: number | undefined) =>
  fraction === undefined ? '' : `${(100 * fraction).toFixed(0)} %`;

function ratio(x: number | null | undefined, y: number | null | undefined): string {
  return x && y ? `${(x / y).toFixed(1)}×` : '—';
}

const percent = (fraction: number | null | undefined) =>
  fraction === null || fraction === undefined
    ? '—'
    : `${100 * fraction >= 10 ? (100 * fraction).toFixed(0) : (100 * fraction).toPrecision(2)} %`;

function formatTable(all: readonly BenchResult[]): string {
  const rows = all.filter((r): r is TrainResult => 'stepsPerSecond' in r);
  const checks = all.filter((r): r is LearningCheck => (r as LearningCheck).kind === 'learning-check');
  const lines: string[] = [
    'SGD training: steps/s (fused: many steps per dispatch; general: tape, one submit per step; tfjs: tfjs-webgpu loop)',
    `and each rate's fraction of the matmul bound: MFLOP/step (bench/flops.ts) × steps/s over the GFLOP/s of our matmul on [${MATMUL_BOUND_SHAPE.join(', ')}], timed interleaved with the row`,
  ];
  const groups = new Map<string, TrainResult[]>();
  for (const r of rows) {
    const key = `${r.model}\u0000${r.replicas}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const header = [
    'model',
    'replicas',
    'batch',
    'MFLOP/step',
    'bound GFLOP/s',
    'fused',
    'general',
    'tfjs',
    'fused/general',
    'fused/tfjs',
    'fused % bound',
    'general % bound',
    'tfjs % bound',
    'general: products share',
  ];
  const table = [...groups.values()].map((g) => {
    const by = (p: TrainPath) => g.find((r) => r.path === p);
    const cell = (p: TrainPath) => {
      const r = by(p);
      return r === undefined ? '' : r.stepsPerSecond === null ? 'failed' : r.stepsPerSecond.toFixed(1);
    };
    return [
      g[0].model,
      String(g[0].replicas),
      String(g[0].batchSize),
      (g[0].flopsPerStep / 1e6).toPrecision(3),
      // Each path's bound was timed beside it: fused / general where both ran apart.
      [...new Set(g.map((r) => (r.matmulGflops === null ? '—' : r.matmulGflops.toFixed(3))))].join(' / '),
      cell('fused'),
      cell('general'),
      cell('tfjs'),
      by('fused') ? ratio(by('fused')?.stepsPerSecond, by('general')?.stepsPerSecond) : '',
      by('tfjs') ? ratio(by('fused')?.stepsPerSecond, by('tfjs')?.stepsPerSecond) : '',
      by('fused') ? percent(by('fused')?.matmulBoundFraction) : '',
      by('general') ? percent(by('general')?.matmulBoundFraction) : '',
      by('tfjs') ? percent(by('tfjs')?.matmulBoundFraction) : '',
      share(by('general')?.productsShare),
    ];
  });
  lines.push(
    '',
    markdownTable(header, table),
    '',
    `- targets (issue 20, not asserted): ${BOUND_TARGETS} of the bound`,
  );
  for (const c of checks)
    lines.push(
      `- learning check (${c.path}, ${c.replicas} replicas, ${c.steps} steps at η = ${c.learningRate}): population loss ${c.lossBefore.toPrecision(5)} → ${c.lossAfter.toPrecision(5)}, floor ${c.noiseFloor.toPrecision(5)}: ${c.learned ? 'learns' : `FAILED${c.error ? ` (${c.error})` : ''}`}`,
    );
  return lines.join('\n');
}

export const suite: BenchSuite = { run, formatTable };
