import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  LANCZOS_CHECK_EVERY,
  lanczosRecurrence,
  powerIteration,
  topEigenvalues,
} from '../src/curvature/lanczos.ts';
import { InputError } from '../src/errors.ts';
import {
  type CurvatureCase,
  type CurvatureInstance,
  FUSED_MODEL_CASES,
  MODEL_CASES,
  quadraticCase,
  SPECTRA,
} from './helpers/curvature-cases.ts';
import { eigenvalues, F32_EPS, spectralNorm } from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('curvature: Lanczos top eigenvalues and power iteration against dense Hessians');
test.after(destroyTestEngine);

const R = 2;
/** The accuracy target for the top-5 eigenvalues in f32. */
const RELATIVE = 1e-3;

/**
 * Floor of what f32 HVPs can resolve: each entry of Hv is a length-n dot product (γ_n = n·u), and the
 * perturbation E of H it amounts to moves any eigenvalue by at most ‖E‖ ≤ √n·n·u·‖H‖.
 */
function f32Floor(n: number, norm: number): number {
  return n * Math.sqrt(n) * F32_EPS * norm;
}

async function withInstance<T>(
  c: CurvatureCase,
  replicas: number,
  seed: number,
  body: (instance: CurvatureInstance, reference: number[][][]) => Promise<T>,
): Promise<T> {
  const engine = await testEngine();
  const instance = c.build(engine, replicas, seed);
  try {
    return await body(instance, await instance.reference());
  } finally {
    instance.dispose();
  }
}

/** Ritz residuals are honest: ‖Hx − θx‖ with the float64 H matches the reported value. */
async function checkRitzVectors(
  vectors: Float32Array,
  reference: number[][][],
  values: number[][],
  residuals: number[][],
  k: number,
  label: string,
): Promise<void> {
  const n = reference[0].length;
  reference.forEach((H, r) => {
    const norm = spectralNorm(eigenvalues(H));
    for (let i = 0; i < k; i++) {
      const x = vectors.subarray((r * k + i) * n, (r * k + i + 1) * n);
      const xNorm = Math.sqrt(x.reduce((a, v) => a + v * v, 0));
      let rr = 0;
      for (let a = 0; a < n; a++) {
        let hx = 0;
        for (let b = 0; b < n; b++) hx += H[a][b] * x[b];
        rr += (hx - values[r][i] * x[a]) ** 2;
      }
      const trueResidual = Math.sqrt(rr);
      const slack = 4 * f32Floor(n, norm);
      assert.ok(Math.abs(xNorm - 1) < 1e-4, `${label} replica ${r}: Ritz vector ${i} has norm ${xNorm}`);
      assert.ok(
        Math.abs(trueResidual - residuals[r][i]) <= slack + 0.05 * residuals[r][i],
        `${label} replica ${r}: Ritz pair ${i} true residual ${trueResidual} vs reported ${residuals[r][i]}`,
      );
    }
  });
}

function checkTopK(
  label: string,
  got: number[][],
  residuals: number[][],
  reference: number[][][],
  k: number,
  order: (values: number[]) => number[],
): void {
  reference.forEach((H, r) => {
    const all = eigenvalues(H);
    const want = order(all).slice(0, k);
    const n = H.length;
    const floor = f32Floor(n, spectralNorm(all));
    for (let i = 0; i < k; i++) {
      const error = Math.abs(got[r][i] - want[i]);
      assert.ok(
        error <= RELATIVE * Math.abs(want[i]) + floor,
        `${label} replica ${r}: eigenvalue ${i} is ${got[r][i]}, dense ${want[i]} (error ${error.toExponential(2)})`,
      );
      // Some eigenvalue lies within the reported residual of each Ritz value.
      const nearest = Math.min(...all.map((l) => Math.abs(l - got[r][i])));
      assert.ok(
        nearest <= residuals[r][i] + floor,
        `${label} replica ${r}: Ritz value ${got[r][i]} is ${nearest} from the spectrum, residual ${residuals[r][i]}`,
      );
    }
  });
}

const largestFirst = (values: number[]) => [...values].sort((a, b) => b - a);
const smallestFirst = (values: number[]) => [...values].sort((a, b) => a - b);
const magnitudeFirst = (values: number[]) => [...values].sort((a, b) => Math.abs(b) - Math.abs(a));

const QUADRATICS: [CurvatureCase, number][] = [
  [quadraticCase('quadratic n=60, separated top five, two spectra', (r) => SPECTRA.separated(60, r)), 60],
  [quadraticCase('quadratic n=60, top five clustered 1e-3 apart', () => SPECTRA.clustered(60)), 60],
  [quadraticCase('quadratic n=60, indefinite', () => SPECTRA.indefinite(60)), 60],
];

for (const [c] of QUADRATICS) {
  test(`${c.name}: top-5 to relative 1e-3 with honest Ritz residuals`, async () => {
    await withInstance(c, R, 5, async ({ operator }, reference) => {
      const result = await topEigenvalues(operator, 5, { ritzVectors: true, seed: 1 });
      assert.ok(result.converged.every(Boolean), `converged ${result.converged}`);
      checkTopK(c.name, result.values, result.residuals, reference, 5, largestFirst);
      const vectors = (await result.vectors!.read()) as Float32Array;
      result.vectors!.dispose();
      await checkRitzVectors(vectors, reference, result.values, result.residuals, 5, c.name);
      // Lockstep launches: α and β are read back every LANCZOS_CHECK_EVERY steps, so up to that
      // many minus one are made past the last replica's convergence.
      const used = Math.max(...result.hvps);
      assert.ok(
        result.totalHvps >= used && result.totalHvps < used + LANCZOS_CHECK_EVERY,
        `${result.totalHvps} launches for ${used} steps`,
      );
      assert.ok(result.hvps.every((h) => h >= 5 && h <= 60));
    });
  });
}

test('indefinite quadratic: the most negative five, and the five of largest magnitude', async () => {
  const [c] = QUADRATICS[2];
  await withInstance(c, R, 5, async ({ operator }, reference) => {
    const smallest = await topEigenvalues(operator, 5, { which: 'smallest', seed: 2 });
    checkTopK('smallest', smallest.values, smallest.residuals, reference, 5, smallestFirst);
    assert.ok(smallest.values[0][0] < -7.9, `λ_min ${smallest.values[0][0]}`);
    const magnitude = await topEigenvalues(operator, 5, { which: 'magnitude', seed: 3 });
    checkTopK('magnitude', magnitude.values, magnitude.residuals, reference, 5, magnitudeFirst);
  });
});

test('quadratic n=400: stops on Ritz residuals long before n HVPs, still to relative 1e-3', async () => {
  const c = quadraticCase('quadratic n=400', () => SPECTRA.separated(400));
  await withInstance(c, 1, 9, async ({ operator }, reference) => {
    const result = await topEigenvalues(operator, 5, { tolerance: 1e-4, seed: 4 });
    assert.ok(result.converged[0]);
    assert.ok(result.hvps[0] < 120, `used ${result.hvps[0]} HVPs`);
    checkTopK('n=400', result.values, result.residuals, reference, 5, largestFirst);
    const norm = 10;
    for (const residual of result.residuals[0]) assert.ok(residual <= 1e-4 * norm, `residual ${residual}`);
    // History: the top Ritz value grows monotonically towards λ_max (Cauchy interlacing).
    const h = result.history[0];
    for (let i = 1; i < h.length; i++)
      assert.ok(h[i] >= h[i - 1] - 1e-5 * norm, `history ${h[i - 1]} → ${h[i]}`);
  });
});

test('low-rank quadratic: the Krylov space closes (β = 0), restarts, and stops with exact eigenvalues', async () => {
  const spectrum = [6, 3, 1, ...new Array(37).fill(0)];
  const c = quadraticCase('rank 3', () => spectrum);
  await withInstance(c, R, 13, async ({ operator }, reference) => {
    // Four distinct eigenvalues (6, 3, 1 and the null space): the recurrence closes after 4 steps.
    const three = await topEigenvalues(operator, 3, { seed: 5 });
    checkTopK('rank 3, k=3', three.values, three.residuals, reference, 3, largestFirst);
    assert.equal(three.hvps, [4, 4], 'four distinct eigenvalues: four steps');
    assert.equal(three.restarts, [0, 0]);
    // Five wanted: after the breakdown a random restart orthogonal to the basis finds a second 0.
    const five = await topEigenvalues(operator, 5, { seed: 5 });
    checkTopK('rank 3, k=5', five.values, five.residuals, reference, 5, largestFirst);
    assert.equal(five.restarts, [1, 1], 'one restart after the breakdown');
    assert.equal(five.hvps, [5, 5]);
    assert.ok(five.converged.every(Boolean));
    // The breakdown falls inside a batch of unread steps: they are made again after the restart,
    // and α, β match a recurrence that reads them back after every step.
    const run = (checkEvery: number) =>
      lanczosRecurrence(operator, {
        maxSteps: 8,
        seed: 5,
        stream: 17,
        start: 'normal',
        breakdownTolerance: 1e-5,
        keepBasis: false,
        checkEvery,
        done: () => false,
      });
    const [eachStep, batched] = [await run(1), await run(8)];
    assert.equal(batched.restarts, eachStep.restarts);
    assert.ok(
      batched.restarts.every((n) => n >= 1),
      `restarts ${batched.restarts}`,
    );
    assert.equal(batched.alpha, eachStep.alpha);
    assert.equal(batched.beta, eachStep.beta);
    assert.ok(batched.hvps > 8, `${batched.hvps} launches: the steps after the breakdown twice`);
  });
});

for (const c of [...MODEL_CASES, ...FUSED_MODEL_CASES]) {
  test(`${c.name}: top-5 to relative 1e-3 against the float64 central-difference Hessian`, async () => {
    await withInstance(c, R, 21, async ({ operator }, reference) => {
      const result = await topEigenvalues(operator, 5, { ritzVectors: true, seed: 6 });
      checkTopK(c.name, result.values, result.residuals, reference, 5, largestFirst);
      const vectors = (await result.vectors!.read()) as Float32Array;
      result.vectors!.dispose();
      await checkRitzVectors(vectors, reference, result.values, result.residuals, 5, c.name);
    });
  });
}

test('power iteration: λ_max of the separated quadratic and of an MLP, residual below tolerance', async () => {
  for (const c of [QUADRATICS[0][0], MODEL_CASES[1]]) {
    await withInstance(c, R, 21, async ({ operator }, reference) => {
      const result = await powerIteration(operator, { tolerance: 1e-4, seed: 7, maxIterations: 2000 });
      reference.forEach((H, r) => {
        const all = eigenvalues(H);
        const dominant = magnitudeFirst(all)[0];
        assert.ok(result.converged[r], `${c.name} replica ${r} did not converge`);
        assert.ok(
          Math.abs(result.values[r] - dominant) <= RELATIVE * Math.abs(dominant),
          `${c.name} replica ${r}: λ ${result.values[r]} vs ${dominant}`,
        );
        assert.ok(result.residuals[r] <= 1e-4 * Math.abs(result.values[r]));
        assert.is(result.history[r].length, result.hvps[r]);
      });
    });
  }
});

test('bad input is refused before any GPU work, naming the field', async () => {
  const c = QUADRATICS[0][0];
  await withInstance(c, 1, 1, async ({ operator }) => {
    const launches = operator.engine.scheduler.launches;
    for (const [call, field] of [
      [() => topEigenvalues(operator, 61), 'k'],
      [() => topEigenvalues(operator, 0), 'k'],
      [() => topEigenvalues(operator, 2, { tolerance: 0 }), 'tolerance'],
      [() => topEigenvalues(operator, 2, { which: 'top' as 'largest' }), 'which'],
      [() => powerIteration(operator, { maxIterations: 0 }), 'maxIterations'],
    ] as const) {
      try {
        await call();
        assert.unreachable(`${field} accepted`);
      } catch (error) {
        assert.instance(error, InputError);
        assert.is((error as InputError).field, field);
      }
    }
    assert.throws(() => operator.applyFlat(operator.engine.empty([59])), /applyFlat/);
    assert.is(operator.engine.scheduler.launches, launches);
  });
});

test.run();
