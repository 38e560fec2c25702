/**
 * A log point's cost in training steps of the same model: the curvature round an experiment runs at
 * each log point (`measureCurvature` with the experiments' method limits: dense Hessian up to 64
 * parameters, exact trace up to 256, Hutchinson beyond, Lanczos for λ_max) against one general-path
 * SGD step, for the quick presets' general-path models (anisotropy-sweep's RNN and Transformer,
 * sharpening-mnist's MLP) at their quick settings. Both are timed interleaved (same load) and
 * reported as medians; the target is a log point ≤ 50 steps.
 */
import {
  MEASURE_DENSE_MAX_PARAMETERS,
  MEASURE_EXACT_TRACE_MAX_PARAMETERS,
  measureCurvature,
} from '../src/curvature/measure.ts';
import { HessianOperator } from '../src/curvature/operator.ts';
import { fusedCurvature } from '../src/kernels/fused-hvp.ts';
import { initParameters } from '../src/models/init.ts';
import { lossFunction } from '../src/models/losses.ts';
import { train } from '../src/train/trainer.ts';
import { markdownTable } from './format.ts';
import { type BenchSetup, benchSetups } from './models.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { measureInterleaved } from './timing.ts';

/** SGD steps per timed repetition of the step side. */
const STEPS_PER_REP = 5;

interface LogPointCase {
  /** A set-up of bench/models.ts by name. */
  setup: string;
  /** Replicas trained and measured together (the quick batches hold 4–48). */
  replicas: number;
  /** The quick preset's minibatch, evaluation rows and curvature settings. */
  batchSize: number;
  evaluationSamples: number;
  lambdaMax: boolean;
  probes: number;
  lanczosSteps: number;
}

/**
 * anisotropy-sweep --quick for its sequence models: trace only (Hutchinson past 256 parameters, 4
 * probes: the preset's 32 spread over its 8 chunks of the evaluation set).
 */
const ANISOTROPY_QUICK = {
  replicas: 8,
  batchSize: 10,
  evaluationSamples: 200,
  lambdaMax: false,
  probes: 4,
  lanczosSteps: 10,
};

const CASES: LogPointCase[] = [
  { setup: 'RNN 8-4-8, T=4', ...ANISOTROPY_QUICK },
  { setup: 'Transformer d=8, 2 heads, T=4', ...ANISOTROPY_QUICK },
  {
    setup: 'MNIST MLP 784-128-10',
    // sharpening-mnist --quick: 2 groups × 2 seeds in one batch.
    replicas: 4,
    batchSize: 128,
    evaluationSamples: 256,
    lambdaMax: true,
    probes: 8,
    lanczosSteps: 10,
  },
];

export interface LogPointResult extends BenchResult {
  model: string;
  parameters: number;
  replicas: number;
  /** How the trace was measured at this size ('dense', 'exact' or 'hutchinson'). */
  traceMethod: string;
  /** Median seconds of one SGD step and of one log point. */
  stepMs: number;
  logPointMs: number;
  /** logPointMs / stepMs: the log point's cost in training steps. */
  stepsPerLogPoint: number;
  /** Kernel launches of one step and of one log point; submits (readbacks included) of a log point. */
  stepLaunches: number;
  logPointLaunches: number;
  logPointSubmits: number;
}

async function benchCase(
  context: BenchContext,
  setup: BenchSetup,
  spec: LogPointCase,
): Promise<LogPointResult> {
  const { engine } = context;
  const data = setup.data(engine);
  const params = initParameters(
    engine,
    setup.model,
    { kind: 'xavier' },
    { replicas: spec.replicas, seed: 1 },
  );
  const evaluation = data.sample({ seed: 7, step: 0, rows: spec.evaluationSamples, replicas: spec.replicas });
  const lossOf = lossFunction(setup.loss);
  const operator = HessianOperator.create(engine, {
    params,
    loss: (tape, vars, d) => lossOf(tape, setup.model.forward(tape, vars, d.x), d.y),
    evaluation: { data: { x: evaluation.x, y: evaluation.y } },
    // As the experiments measure: the fused curvature kernels where they cover the model.
    fused: fusedCurvature(setup.model.spec, setup.loss),
  });
  let step = 0;
  let method = '';
  try {
    // A tiny rate: the weights stay near their start, so every repetition measures the same point.
    const steps = async () => {
      await train(engine, {
        model: setup.model,
        params,
        data,
        loss: setup.loss,
        learningRate: 1e-6,
        batchSize: spec.batchSize,
        steps: STEPS_PER_REP,
        startStep: step,
        seed: 1,
        path: 'general',
      });
      step += STEPS_PER_REP;
      await engine.sync();
    };
    const logPoint = async () => {
      const measured = await measureCurvature(operator, {
        trace: true,
        lambdaMax: spec.lambdaMax,
        denseMaxParameters: MEASURE_DENSE_MAX_PARAMETERS,
        exactTraceMaxParameters: MEASURE_EXACT_TRACE_MAX_PARAMETERS,
        probes: spec.probes,
        lanczosSteps: Math.min(operator.size, spec.lanczosSteps),
        seed: step,
      });
      method = measured.methods.trace ?? '';
    };
    context.log(`log-point: ${setup.name} (${spec.replicas} replicas)`);
    const { scheduler } = engine;
    const launches0 = scheduler.launches;
    await steps();
    const stepLaunches = (scheduler.launches - launches0) / STEPS_PER_REP;
    const [launches1, submits1] = [scheduler.launches, scheduler.submits];
    await logPoint();
    const logPointLaunches = scheduler.launches - launches1;
    const logPointSubmits = scheduler.submits - submits1;
    const [stepTimes, logTimes] = await measureInterleaved([steps, logPoint], {
      minSeconds: context.minSeconds,
      minReps: 3,
      sliceSeconds: 0.5,
    });
    const stepMs = (stepTimes.median * 1000) / STEPS_PER_REP;
    const logPointMs = logTimes.median * 1000;
    context.log(
      `log-point: ${setup.name}: step ${stepMs.toFixed(1)} ms, log point ${logPointMs.toFixed(0)} ms (${(logPointMs / stepMs).toFixed(0)} steps; ${logPointLaunches} launches, ${logPointSubmits} submits)`,
    );
    return {
      engine: 'sharpness-lab',
      shape: [operator.size, spec.evaluationSamples],
      gflops: null,
      model: setup.name,
      parameters: operator.size,
      replicas: spec.replicas,
      traceMethod: method,
      stepMs,
      logPointMs,
      stepsPerLogPoint: logPointMs / stepMs,
      stepLaunches,
      logPointLaunches,
      logPointSubmits,
    };
  } finally {
    operator.dispose();
    for (const t of [...params, evaluation.x, evaluation.y]) t.dispose();
    data.dispose();
  }
}

export const suite: BenchSuite = {
  async run(context) {
    const setups = new Map(benchSetups(context).map((s) => [s.name, s]));
    const results: LogPointResult[] = [];
    for (const spec of CASES) {
      const setup = setups.get(spec.setup);
      if (!setup) throw new Error(`bench/models.ts has no set-up '${spec.setup}'`);
      results.push(await benchCase(context, setup, spec));
    }
    return results;
  },
  formatTable(results) {
    const rows = (results as LogPointResult[]).map((r) => [
      r.model,
      String(r.parameters),
      String(r.replicas),
      r.traceMethod,
      r.stepMs.toFixed(1),
      r.logPointMs.toFixed(0),
      r.stepsPerLogPoint.toFixed(0),
      `${r.stepLaunches} / ${r.logPointLaunches} / ${r.logPointSubmits}`,
    ]);
    return markdownTable(
      [
        'model (quick settings)',
        'n',
        'replicas',
        'trace',
        'step ms',
        'log point ms',
        'log point in steps',
        'launches: step / log point / its submits',
      ],
      rows,
    );
  },
};
