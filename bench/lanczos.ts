/**
 * Lanczos and power iteration per model on one fixed evaluation batch: Hessian-vector products needed
 * for λ_max to relative 1e-3 (against a converged Lanczos reference), and the wall-clock time of one
 * Lanczos iteration (HVP + full reorthogonalisation + readback of α, β + the float64 tridiagonal
 * eigenproblem) relative to one HVP alone (forward + double backward + a scalar readback). Both are
 * measured alternately and reported as medians, so they see the same load on a shared machine.
 */
import { powerIteration, topEigenvalues } from '../src/curvature/lanczos.ts';
import { HessianOperator } from '../src/curvature/operator.ts';
import { randomVectors } from '../src/curvature/probes.ts';
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import type { DataSource } from '../src/data/source.ts';
import { TeacherStudent } from '../src/data/teacher-student.ts';
import { stridedCopy } from '../src/kernels/vectors.ts';
import { initParameters } from '../src/models/init.ts';
import { type LossKind, lossFunction } from '../src/models/losses.ts';
import { buildModel, type Model } from '../src/models/model.ts';
import type { Engine } from '../src/tensor/engine.ts';
import { markdownTable } from './format.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { median } from './timing.ts';

/** Relative accuracy of λ_max the HVP counts refer to. */
export const LAMBDA_ACCURACY = 1e-3;

export interface LanczosSetup {
  name: string;
  model: Model;
  loss: LossKind;
  /** Rows of the evaluation batch. */
  rows: number;
  data: (engine: Engine) => DataSource;
}

export interface LanczosResult extends BenchResult {
  model: string;
  /** Parameters n. */
  parameters: number;
  /** λ_max of the reference run and its Ritz residual. */
  lambdaMax: number;
  referenceResidual: number;
  /** HVPs until the top Ritz value is within 1e-3 of λ_max (and stays). */
  lanczosHvps: number;
  /** HVPs Lanczos takes to stop on its own rule (Ritz residual ≤ 1e-3·|θ|). */
  lanczosStopHvps: number;
  /**
   * HVPs until power iteration's Rayleigh quotient is within 1e-3 of λ_max (and stays); null: not
   * within 400 HVPs, or it stopped (residual ≤ 1e-5·|λ|) first.
   */
  powerHvps: number | null;
  hvpMs: number;
  /** Median time of one Lanczos iteration over `iterations` measured steps. */
  iterationMs: number;
  iterations: number;
  ratio: number;
}

const diag = (values: number[]) => values.map((v, i) => values.map((_, j) => (i === j ? v : 0)));

/** The paper's model families at sizes a CPU adapter runs in seconds. */
export function lanczosSetups(): LanczosSetup[] {
  const sequence = { inputDim: 4, outputDim: 4, sequenceLength: 4 };
  const noise4 = diag([16, 0.0016, 16, 0.0016]);
  return [
    {
      name: 'deep linear D=3, d=2',
      model: buildModel({ kind: 'deep-linear', inputDim: 2, hidden: [2, 2], outputDim: 2 }),
      loss: 'mse',
      rows: 200,
      data: (engine) => new LinearTeacher(engine, { V: diag([1, 1]), sigmaEps: diag([100, 0.01]) }),
    },
    {
      name: 'deep linear D=3, d=16, h=32',
      model: buildModel({ kind: 'deep-linear', inputDim: 16, hidden: [32, 32], outputDim: 16 }),
      loss: 'mse',
      rows: 256,
      data: (engine) =>
        new LinearTeacher(engine, {
          V: diag(Array.from({ length: 16 }, (_, i) => 1 + i / 8)),
          sigmaEps: diag(Array.from({ length: 16 }, (_, i) => (i % 2 ? 1 : 0.01))),
        }),
    },
    {
      name: 'teacher-student MLP 2-32-2 relu',
      model: buildModel({ kind: 'mlp', inputDim: 2, hidden: [32], outputDim: 2, activation: 'relu' }),
      loss: 'mse',
      rows: 200,
      data: (engine) =>
        new TeacherStudent(engine, {
          teacher: { kind: 'mlp', inputDim: 2, hidden: [100], outputDim: 2, activation: 'relu' },
          teacherSeed: 1,
          sigmaEps: diag([9, 0.0009]),
        }),
    },
    {
      name: 'RNN h=8, T=4',
      model: buildModel({ kind: 'rnn', hidden: 8, ...sequence }),
      loss: 'mse',
      rows: 100,
      data: (engine) =>
        new TeacherStudent(engine, {
          teacher: { kind: 'rnn', hidden: 32, ...sequence },
          teacherSeed: 2,
          sigmaEps: noise4,
        }),
    },
    {
      name: 'Transformer d=8, 2 heads, T=4',
      model: buildModel({ kind: 'transformer', modelDim: 8, heads: 2, mlpHidden: 8, ...sequence }),
      loss: 'mse',
      rows: 50,
      data: (engine) =>
        new TeacherStudent(engine, {
          teacher: { kind: 'transformer', modelDim: 8, heads: 2, mlpHidden: 32, ...sequence },
          teacherSeed: 3,
          sigmaEps: noise4,
        }),
    },
  ];
}

/** First index after which every value is within `accuracy` of `target` (1-based HVP count). */
function hvpsToAccuracy(history: readonly number[], target: number, accuracy: number): number | null {
  let last = -1;
  history.forEach((v, i) => {
    if (!(Math.abs(v - target) <= accuracy * Math.abs(target))) last = i;
  });
  return last + 1 < history.length ? last + 2 : null;
}

async function benchSetup(context: BenchContext, setup: LanczosSetup): Promise<LanczosResult> {
  const { engine } = context;
  const source = setup.data(engine);
  const params = initParameters(engine, setup.model, { kind: 'xavier' }, { replicas: 1, seed: 1 });
  const lossOf = lossFunction(setup.loss);
  const operator = HessianOperator.create(engine, {
    params,
    loss: (tape, vars, { x, y }) => lossOf(tape, setup.model.forward(tape, vars, x), y),
    evaluation: { source, samples: setup.rows, seed: 2, step: 0 },
  });
  const n = operator.size;
  const result: LanczosResult = {
    engine: 'sharpness-lab',
    shape: [n, setup.rows],
    gflops: null,
    model: setup.name,
    parameters: n,
    lambdaMax: Number.NaN,
    referenceResidual: Number.NaN,
    lanczosHvps: Number.NaN,
    lanczosStopHvps: Number.NaN,
    powerHvps: null,
    hvpMs: Number.NaN,
    iterationMs: Number.NaN,
    iterations: 0,
    ratio: Number.NaN,
  };
  try {
    const reference = await topEigenvalues(operator, 1, { tolerance: 1e-5, maxSteps: 100, seed: 11 });
    result.lambdaMax = reference.values[0][0];
    result.referenceResidual = reference.residuals[0][0];
    const run = await topEigenvalues(operator, 1, { tolerance: 1e-12, maxSteps: 80, seed: 12 });
    result.lanczosHvps = hvpsToAccuracy(run.history[0], result.lambdaMax, LAMBDA_ACCURACY) ?? Number.NaN;
    const stop = await topEigenvalues(operator, 1, { tolerance: LAMBDA_ACCURACY, seed: 13 });
    result.lanczosStopHvps = stop.hvps[0];
    const power = await powerIteration(operator, { tolerance: 1e-5, maxIterations: 400, seed: 14 });
    result.powerHvps = hvpsToAccuracy(power.history[0], result.lambdaMax, LAMBDA_ACCURACY);

    // Alternate one HVP (forward + double backward) with one Lanczos run, so both see
    // the same load on a shared machine; an iteration's time is the median of the per-step times
    // (HVP, reorthogonalisation, readback of α and β, tridiagonal solve) after the first step.
    const v = randomVectors(operator, 'normal', { seed: 15, stream: 99, counter: 0 });
    const hv = engine.empty([n]);
    const steps = Math.min(n, 30);
    const hvpTimes: number[] = [];
    const stepTimes: number[] = [];
    const lanczosRun = async () => {
      const { stepMs } = await topEigenvalues(operator, 1, { tolerance: 1e-30, maxSteps: steps, seed: 16 });
      stepTimes.push(...stepMs.slice(1));
    };
    const first = engine.empty([1]);
    const hvpRun = async () => {
      // Waited for the way a Lanczos step waits for α and β: a readback of a scalar.
      operator.applyFlat(v, hv);
      stridedCopy(engine, hv, first, { length: 1, batch: 1 });
      await first.read();
    };
    await hvpRun();
    await lanczosRun();
    stepTimes.length = 0;
    const started = performance.now();
    while (hvpTimes.length < 5 || performance.now() - started < 1000 * context.minSeconds) {
      const t0 = performance.now();
      await hvpRun();
      hvpTimes.push(performance.now() - t0);
      await lanczosRun();
    }
    for (const t of [v, hv, first]) t.dispose();
    result.hvpMs = median(hvpTimes);
    result.iterations = stepTimes.length;
    result.iterationMs = median(stepTimes);
    result.ratio = result.iterationMs / result.hvpMs;
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    operator.dispose();
    for (const p of params) p.dispose();
    source.dispose();
  }
  return result;
}

async function run(context: BenchContext): Promise<LanczosResult[]> {
  const results: LanczosResult[] = [];
  for (const setup of lanczosSetups()) {
    context.log(`lanczos: ${setup.name}`);
    results.push(await benchSetup(context, setup));
  }
  return results;
}

function formatTable(results: readonly BenchResult[]): string {
  const rows = results as LanczosResult[];
  const columns: [string, number, (r: LanczosResult) => string][] = [
    ['model', 32, (r) => r.model],
    ['n', 7, (r) => String(r.parameters)],
    ['λ_max', 11, (r) => r.lambdaMax.toPrecision(6)],
    ['Lanczos', 9, (r) => String(r.lanczosHvps)],
    ['stop', 6, (r) => String(r.lanczosStopHvps)],
    ['power', 7, (r) => (r.powerHvps === null ? '>400' : String(r.powerHvps))],
    ['HVP ms', 9, (r) => r.hvpMs.toFixed(2)],
    ['iter ms', 9, (r) => r.iterationMs.toFixed(2)],
    ['iter/HVP', 10, (r) => r.ratio.toFixed(2)],
  ];
  return [
    `Lanczos: HVPs for λ_max to relative ${LAMBDA_ACCURACY} (Lanczos, its residual stop, power iteration) and one iteration vs one HVP`,
    '',
    markdownTable(
      columns.map((c) => c[0]),
      rows.map((r) =>
        r.error
          ? [r.model, `failed: ${r.error}`, ...columns.slice(2).map(() => '')]
          : columns.map((c) => c[2](r)),
      ),
    ),
  ].join('\n');
}

export const suite: BenchSuite = { run, formatTable };
