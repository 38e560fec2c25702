import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copiesForWork, copiesWithinBudget } from '../src/curvature/copies.ts';
import { gradientFluctuation, minibatchGradientSquared } from '../src/curvature/fluctuation.ts';
import { powerIteration, topEigenvalues } from '../src/curvature/lanczos.ts';
import { HessianOperator, type LossClosure } from '../src/curvature/operator.ts';
import { exactTrace, hessianTrace } from '../src/curvature/trace.ts';
import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { InputError } from '../src/errors.ts';
import { mseLoss } from '../src/models/losses.ts';
import { buildModel } from '../src/models/model.ts';
import type { Engine, Tensor } from '../src/tensor/engine.ts';
import { deepLinearTheory } from '../src/theory/deep-linear.ts';
import type { Matrix } from '../src/theory/linalg.ts';
import { centralGradient } from './helpers/cpu-models.ts';
import { MODEL_CASES } from './helpers/curvature-cases.ts';
import {
  chain,
  empiricalHessian,
  lambdaMaxSampling,
  meanAndError,
  perSample,
  statistics,
} from './helpers/curvature-deep-linear.ts';
import { eigenvalues, F32_EPS, seededRandom } from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite(
  'curvature: deep linear networks at the predicted minimum vs the closed forms; fluctuation',
);
test.after(destroyTestEngine);

const SAMPLES = 4096;
const R = 2; // replicas: the same weights, each with its own fresh evaluation set

const SETUPS = [
  {
    name: 'D=2, Σ_x = I, Σ_ε = diag(1, 0.1)',
    depth: 2,
    V: [
      [1, 0.5],
      [-0.3, 2],
    ],
    sigmaX: [
      [1, 0],
      [0, 1],
    ],
    sigmaEps: [
      [1, 0],
      [0, 0.1],
    ],
  },
  {
    name: 'D=3, correlated Σ_x and Σ_ε',
    depth: 3,
    V: [
      [1, 0.5],
      [-0.3, 2],
    ],
    sigmaX: [
      [2, 0.5],
      [0.5, 1],
    ],
    sigmaEps: [
      [1, 0.3],
      [0.3, 0.2],
    ],
  },
];

const configOf = ({ depth, V, sigmaX, sigmaEps }: (typeof SETUPS)[number]) => ({
  depth,
  V,
  sigmaX,
  sigmaEps,
});

/** The theory's weights rounded to f32 (what the GPU holds), as replicated tensors and as rows. */
function weightTensors(engine: Engine, weights: Matrix[], replicas: number) {
  const rounded = weights.map((w) => w.map((row) => row.map((v) => Math.fround(v))));
  const tensors = rounded.map((w) =>
    engine.tensor(Array.from({ length: replicas }, () => w.flat()).flat(), [w.length, w[0].length], {
      batch: replicas,
    }),
  );
  return { rounded, tensors };
}

function deepLinearLoss(depth: number, inputDim: number, hidden: number, outputDim: number): LossClosure {
  const model = buildModel({
    kind: 'deep-linear',
    inputDim,
    hidden: new Array(depth - 1).fill(hidden),
    outputDim,
  });
  return (tape, params, { x, y }) => mseLoss(tape, model.forward(tape, params, x), y);
}

function rowsOf(data: Float32Array, replica: number, rows: number, width: number): Float64Array[] {
  return Array.from({ length: rows }, (_, i) =>
    Float64Array.from(data.subarray((replica * rows + i) * width, (replica * rows + i + 1) * width)),
  );
}

for (const setup of SETUPS) {
  test(`${setup.name}: trace, λ_max and fluctuation on ${SAMPLES} fresh samples agree with T*, λ*, S*`, async () => {
    const engine = await testEngine();
    const theory = deepLinearTheory(configOf(setup));
    const { rounded, tensors } = weightTensors(engine, theory.weights, R);
    const teacher = new LinearTeacher(engine, configOf(setup));
    const operator = HessianOperator.create(engine, {
      params: tensors,
      loss: deepLinearLoss(setup.depth, 2, theory.rank, 2),
      evaluation: { source: teacher, samples: SAMPLES, seed: 7, step: 0 },
    });
    try {
      const n = operator.size;
      const exact = await exactTrace(operator);
      const hutchinson = await hessianTrace(operator, { probes: 32, seed: 2 });
      const lanczos = await topEigenvalues(operator, 1, { tolerance: 1e-5, seed: 3 });
      const power = await powerIteration(operator, { tolerance: 1e-3, seed: 4 });
      const fluctuation = await gradientFluctuation(operator);
      const xs = (await operator.data.x.read()) as Float32Array;
      const ys = (await operator.data.y.read()) as Float32Array;
      // The sampling distribution of λ_max over evaluation sets of this size, simulated in float64.
      const sampling = lambdaMaxSampling(rounded, setup, SAMPLES, 40, 11);
      const c = chain(rounded);
      for (let r = 0; r < R; r++) {
        const x = rowsOf(xs, r, SAMPLES, 2);
        const y = rowsOf(ys, r, SAMPLES, 2);
        const { sigma, cross } = statistics(c, x, y);
        const H = empiricalHessian(rounded, sigma, cross);
        const spectrum = eigenvalues(H);
        const lambda = spectrum[spectrum.length - 1];
        const { traces, gradients } = perSample(rounded, x, y);
        const T = meanAndError(traces);
        const S = meanAndError(gradients);
        // (1) GPU vs the float64 empirical quantities of the same samples: each Hessian entry is a
        // mean over SAMPLES rows of positive-and-negative terms, f32 error ≤ γ_N·(Σ|terms|), N = SAMPLES.
        const f32 = 4 * SAMPLES * F32_EPS;
        assert.ok(
          Math.abs(exact.trace[r] - T.mean) <= f32 * T.mean,
          `replica ${r}: exact trace ${exact.trace[r]} vs float64 ${T.mean}`,
        );
        assert.ok(
          Math.abs(lanczos.values[r][0] - lambda) <= f32 * lambda + lanczos.residuals[r][0],
          `replica ${r}: Lanczos λ_max ${lanczos.values[r][0]} vs float64 ${lambda}`,
        );
        assert.ok(
          Math.abs(power.values[r] - lambda) <= 1e-3 * lambda,
          `replica ${r}: power ${power.values[r]}`,
        );
        assert.ok(
          Math.abs(fluctuation.fluctuation[r] - S.mean) <= f32 * S.mean,
          `replica ${r}: S ${fluctuation.fluctuation[r]} vs float64 ${S.mean}`,
        );
        // (2) The float64 empirical values vs the closed forms, within the sampling error of the set.
        assert.ok(
          Math.abs(T.mean - theory.sharpness) <= 4 * T.standardError,
          `replica ${r}: Tr H ${T.mean} ± ${T.standardError} vs T* ${theory.sharpness}`,
        );
        assert.ok(
          Math.abs(S.mean - theory.fluctuation) <= 4 * S.standardError,
          `replica ${r}: S ${S.mean} ± ${S.standardError} vs S* ${theory.fluctuation}`,
        );
        assert.ok(
          Math.abs(lambda - theory.lambdaMax) <= Math.abs(sampling.mean - theory.lambdaMax) + 4 * sampling.sd,
          `replica ${r}: λ_max ${lambda} vs λ* ${theory.lambdaMax} (simulated ${sampling.mean} ± ${sampling.sd})`,
        );
        // (3) The GPU estimators straight against the closed forms.
        const hutchinsonError = Math.hypot(hutchinson.standardError[r], T.standardError);
        assert.ok(
          Math.abs(hutchinson.estimate[r] - theory.sharpness) <= 4 * hutchinsonError,
          `replica ${r}: Hutchinson ${hutchinson.estimate[r]} ± ${hutchinson.standardError[r]} vs T* ${theory.sharpness}`,
        );
        assert.ok(
          Math.abs(fluctuation.standardError[r] - S.standardError) <= 1e-3 * S.standardError,
          'standard error of S',
        );
        // At a population minimum the mean gradient vanishes: E‖ḡ‖² = S/N, and E‖ḡ_B‖² = S/B.
        const g2 = fluctuation.meanGradientSquared[r];
        assert.ok(
          g2 < (10 * theory.fluctuation) / SAMPLES,
          `‖ḡ‖² = ${g2}, S*/N = ${theory.fluctuation / SAMPLES}`,
        );
        const minibatch = minibatchGradientSquared(fluctuation, 10)[r];
        assert.ok(
          Math.abs(minibatch - theory.fluctuation / 10) <= (4 * S.standardError) / 10 + g2,
          `replica ${r}: E‖ḡ_10‖² = ${minibatch} vs S*/10 = ${theory.fluctuation / 10}`,
        );
      }
      // The unit vectors go in as many batched launches as the copy limits (memory, work) allow, each
      // launch within one parameter (its block of H).
      const perLaunch = Math.min(copiesWithinBudget(operator, n), copiesForWork(operator, n));
      const launches = operator.layout.sizes.reduce((sum, size) => sum + Math.ceil(size / perLaunch), 0);
      assert.is(exact.hvps, launches, `${n} unit vectors, ${perLaunch} per batched launch, per parameter`);
    } finally {
      operator.dispose();
      teacher.dispose();
      for (const t of tensors) t.dispose();
    }
  });
}

test('minibatch form: E‖ḡ_B‖² over every subset (and every ordered draw) equals the formula', async () => {
  // Six samples; each subset of three (without replacement) and each ordered triple (with
  // replacement) becomes a replica, whose mean-gradient norm is one term of the expectation.
  const engine = await testEngine();
  const setup = SETUPS[0];
  const theory = deepLinearTheory(configOf(setup));
  const random = seededRandom(5);
  const n = 6;
  const xs = Array.from({ length: n * 2 }, () => Math.fround(2 * random() - 1));
  const ys = Array.from({ length: n * 2 }, () => Math.fround(2 * random() - 1));
  const loss = deepLinearLoss(2, 2, theory.rank, 2);
  const run = async (rows: number[][]) => {
    const { tensors } = weightTensors(engine, theory.weights, rows.length);
    const pick = (data: number[]) =>
      rows.flatMap((subset) => subset.flatMap((i) => [data[2 * i], data[2 * i + 1]]));
    const data = {
      x: engine.tensor(pick(xs), [rows[0].length, 2], { batch: rows.length }),
      y: engine.tensor(pick(ys), [rows[0].length, 2], { batch: rows.length }),
    };
    const operator = HessianOperator.create(engine, { params: tensors, loss, evaluation: { data } });
    try {
      return await gradientFluctuation(operator);
    } finally {
      operator.dispose();
      for (const t of [...tensors, data.x, data.y]) t.dispose();
    }
  };
  const full = await run([[0, 1, 2, 3, 4, 5]]);
  const subsets: number[][] = [];
  for (let a = 0; a < n; a++)
    for (let b = a + 1; b < n; b++) for (let c = b + 1; c < n; c++) subsets.push([a, b, c]);
  const draws: number[][] = [];
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) for (let c = 0; c < n; c++) draws.push([a, b, c]);
  for (const [rows, replacement] of [
    [subsets, false],
    [draws, true],
  ] as const) {
    const result = await run(rows);
    const expectation = result.meanGradientSquared.reduce((a, b) => a + b, 0) / rows.length;
    const formula = minibatchGradientSquared(full, 3, { replacement })[0];
    assert.ok(
      Math.abs(expectation - formula) <= 1e-4 * formula,
      `${replacement ? 'with' : 'without'} replacement: enumerated ${expectation}, formula ${formula}`,
    );
  }
});

for (const c of MODEL_CASES) {
  test(`${c.name}: per-sample squared gradient norms match float64 central differences`, async () => {
    const engine = await testEngine();
    const instance = c.build(engine, 2, 61);
    try {
      const result = await gradientFluctuation(instance.operator, { samplesPerLaunch: 5 });
      const cpu = instance.cpu!;
      assert.is(result.samples, cpu.samples);
      assert.is(result.launches, Math.ceil(cpu.samples / 5), 'chunks of five samples');
      let total = 0;
      for (let r = 0; r < 2; r++) {
        const theta = cpu.theta(r);
        for (let s = 0; s < cpu.samples; s++) {
          const g = centralGradient((t) => cpu.sampleLoss(r, s, t), theta);
          const want = g.reduce((a, v) => a + v * v, 0);
          total += want;
          // f32 gradients to a few hundred ulps of their largest entry (as in the autodiff tests).
          const maxEntry = Math.max(...g.map(Math.abs));
          const bound = 2 * Math.sqrt(want) * 512 * F32_EPS * maxEntry * Math.sqrt(g.length) + 1e-9;
          assert.ok(
            Math.abs(result.values[r][s] - want) <= bound,
            `replica ${r} sample ${s}: ‖∇ℓ‖² ${result.values[r][s]} vs ${want}`,
          );
        }
        const mean = result.values[r].reduce((a, b) => a + b, 0) / cpu.samples;
        assert.ok(Math.abs(result.fluctuation[r] - mean) <= 1e-6 * mean);
      }
      assert.ok(total > 0);
    } finally {
      instance.dispose();
    }
  });
}

test('per-sample gradients with one evaluation set shared by all replicas (batch 1) equal those of a copy per replica', async () => {
  const engine = await testEngine();
  const model = buildModel({ kind: 'mlp', inputDim: 3, hidden: [5], outputDim: 2, activation: 'tanh' });
  const random = seededRandom(8);
  const rows = 12;
  const replicas = 3;
  const values = (k: number) => Array.from({ length: k }, () => 2 * random() - 1);
  const params = model.parameters.map((p) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    return engine.tensor(values(replicas * size), p.shape, { batch: replicas });
  });
  const x = values(rows * 3);
  const y = values(rows * 2);
  const loss: LossClosure = (tape, vars, data) => mseLoss(tape, model.forward(tape, vars, data.x), data.y);
  const shared = { x: engine.tensor(x, [rows, 3]), y: engine.tensor(y, [rows, 2]) };
  const repeat = (v: number[]) => Array.from({ length: replicas }, () => v).flat();
  const perReplica = {
    x: engine.tensor(repeat(x), [rows, 3], { batch: replicas }),
    y: engine.tensor(repeat(y), [rows, 2], { batch: replicas }),
  };
  const a = HessianOperator.create(engine, { params, loss, evaluation: { data: shared } });
  const b = HessianOperator.create(engine, { params, loss, evaluation: { data: perReplica } });
  const chunked = await gradientFluctuation(a, { samplesPerLaunch: 5 });
  const whole = await gradientFluctuation(b);
  for (let r = 0; r < replicas; r++) {
    for (let s = 0; s < rows; s++) {
      const want = whole.values[r][s];
      assert.ok(Math.abs(chunked.values[r][s] - want) <= 1e-5 * want + 1e-9, `replica ${r} sample ${s}`);
    }
    assert.ok(
      Math.abs(chunked.meanGradientSquared[r] - whole.meanGradientSquared[r]) <=
        1e-5 * whole.meanGradientSquared[r],
    );
  }
  a.dispose();
  b.dispose();
  for (const t of [...params, ...Object.values(shared), ...Object.values(perReplica)]) t.dispose();
});

test('fluctuation refuses an evaluation set without rows, or with rows that disagree', async () => {
  const engine = await testEngine();
  const theta = engine.tensor([1, 2], [1, 2]);
  const loss: LossClosure = (tape, [p]) => tape.dot(p, p);
  const empty = HessianOperator.create(engine, { params: [theta], loss, evaluation: { data: {} } });
  const mismatched = HessianOperator.create(engine, {
    params: [theta],
    loss,
    evaluation: { data: { x: engine.empty([3, 2]), y: engine.empty([4, 2]) } },
  });
  for (const [operator, field] of [
    [empty, 'evaluation'],
    [mismatched, 'evaluation.data.y'],
  ] as const) {
    try {
      await gradientFluctuation(operator);
      assert.unreachable();
    } catch (error) {
      assert.instance(error, InputError);
      assert.is((error as InputError).field, field);
    }
  }
  assert.throws(
    () =>
      HessianOperator.create(engine, {
        params: [theta],
        loss,
        evaluation: { source: { sample: () => ({}) }, samples: 0, seed: 0, step: 0 },
      }),
    (error: unknown) => error instanceof InputError && error.field === 'evaluation.samples',
  );
  for (const t of [theta, ...Object.values(mismatched.data)] as Tensor[]) t.dispose();
});

test.run();
