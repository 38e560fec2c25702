import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { denseHessian, denseHessianEigenvalues } from '../src/curvature/dense.ts';
import { spectralDensity } from '../src/curvature/density.ts';
import { randomVectors, STREAM_SLQ } from '../src/curvature/probes.ts';
import { exactTrace, hessianTrace } from '../src/curvature/trace.ts';
import { symmetricEigenvalues } from '../src/curvature/tridiagonal.ts';
import { InputError } from '../src/errors.ts';
import {
  type CurvatureCase,
  FUSED_RNN_CASES,
  MODEL_CASES,
  quadraticCase,
  SPECTRA,
} from './helpers/curvature-cases.ts';
import {
  eigenvalues,
  F32_EPS,
  f32Array,
  seededRandom,
  spectralNorm,
  wassersteinDensityToAtoms,
} from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { shadersLaunched } from './helpers/launches.ts';

const test = suite('curvature: Hessian traces (exact, Hutchinson), dense Hessian and SLQ spectral density');
test.after(destroyTestEngine);

const R = 2;
const QUADRATIC = quadraticCase('quadratic n=60, separated', (r) => SPECTRA.separated(60, r));
const MLP = MODEL_CASES[1];
const CASES: CurvatureCase[] = [QUADRATIC, ...MODEL_CASES];

async function build(c: CurvatureCase, replicas: number, seed: number) {
  const engine = await testEngine();
  const instance = c.build(engine, replicas, seed);
  return { engine, instance, reference: await instance.reference() };
}

const trace = (H: number[][]) => H.reduce((s, row, i) => s + row[i], 0);

/** Each Hv entry is a length-n f32 dot product: error ≤ n·u·‖H‖ per entry (γ_n bound, ‖v‖∞ = 1). */
function entryTolerance(H: number[][]): number {
  return 4 * H.length * F32_EPS * spectralNorm(eigenvalues(H)) + 1e-6;
}

for (const c of FUSED_RNN_CASES) {
  test(`${c.name}: the exact trace's diagonal, from one fused launch with no matmul, matches float64`, async () => {
    const { engine, instance, reference } = await build(c, R, 33);
    try {
      let exact: Awaited<ReturnType<typeof exactTrace>> | undefined;
      const shaders = await shadersLaunched(engine, async () => {
        exact = await exactTrace(instance.operator);
      });
      assert.ok(shaders.has('fused_hessian_diagonal_rnn.wgsl'), [...shaders].join(', '));
      assert.not.ok(shaders.has('matmul.wgsl') || shaders.has('matmul_flat.wgsl'), [...shaders].join(', '));
      const n = instance.operator.size;
      reference.forEach((H, r) => {
        // A diagonal entry sums rows·T·(h + d) products of O(‖H‖) terms: a few hundred ulps of ‖H‖.
        const tol = entryTolerance(H);
        for (let i = 0; i < n; i++)
          assert.ok(
            Math.abs(exact!.diagonal[r][i] - H[i][i]) <= tol,
            `replica ${r} H[${i}][${i}] = ${exact!.diagonal[r][i]}, float64 ${H[i][i]}`,
          );
        assert.ok(Math.abs(exact!.trace[r] - trace(H)) <= n * tol, `replica ${r} trace ${exact!.trace[r]}`);
      });
    } finally {
      instance.dispose();
    }
  });
}

for (const c of CASES) {
  test(`${c.name}: exact trace, diagonal and dense Hessian from unit-vector HVPs match float64`, async () => {
    const { instance, reference } = await build(c, R, 31);
    try {
      const exact = await exactTrace(instance.operator, { perLaunch: 16 });
      const dense = await denseHessian(instance.operator, { perLaunch: 16 });
      const n = instance.operator.size;
      // One launch per 16 unit vectors of each parameter (a launch never spans two parameters).
      const launches = instance.operator.layout.sizes.reduce((sum, size) => sum + Math.ceil(size / 16), 0);
      assert.is(exact.hvps, launches);
      reference.forEach((H, r) => {
        const tol = entryTolerance(H);
        for (let i = 0; i < n; i++) {
          assert.ok(Math.abs(exact.diagonal[r][i] - H[i][i]) <= tol, `replica ${r} H[${i}][${i}]`);
          for (let j = 0; j < n; j++)
            assert.ok(
              Math.abs(dense[r][i][j] - H[i][j]) <= tol,
              `replica ${r} H[${i}][${j}] = ${dense[r][i][j]}, float64 ${H[i][j]}`,
            );
        }
        assert.ok(Math.abs(exact.trace[r] - trace(H)) <= n * tol, `replica ${r} trace ${exact.trace[r]}`);
      });
      const spectra =
        c === QUADRATIC ? await denseHessianEigenvalues(instance.operator) : dense.map(symmetricEigenvalues);
      spectra.forEach((values, r) => {
        const want = eigenvalues(reference[r]);
        const tol = n * entryTolerance(reference[r]);
        // Weyl: eigenvalues move by at most ‖E‖₂ ≤ n · max|E_ij|.
        values.forEach((v, i) => {
          assert.ok(Math.abs(v - want[i]) <= tol, `eigenvalue ${i}`);
        });
      });
    } finally {
      instance.dispose();
    }
  });
}

for (const c of CASES) {
  test(`${c.name}: applyBlock gives each parameter's diagonal block H_pp·v (float64), the last in fewer launches than H·v`, async () => {
    const { engine, instance, reference } = await build(c, R, 37);
    const operator = instance.operator;
    const { sizes, offsets } = operator.layout;
    const random = seededRandom(5);
    try {
      for (const [p, size] of sizes.entries()) {
        const values = f32Array(random, R * size, 1);
        const v = engine.tensor(values, [size], { batch: R });
        const launches = engine.scheduler.launches;
        const hv = operator.applyBlock(p, v);
        const blockLaunches = engine.scheduler.launches - launches;
        const got = await hv.read();
        for (const t of [v, hv]) t.dispose();
        reference.forEach((H, r) => {
          const tol = entryTolerance(H);
          for (let i = 0; i < size; i++) {
            let want = 0;
            for (let j = 0; j < size; j++) want += H[offsets[p] + i][offsets[p] + j] * values[r * size + j];
            const value = got[r * size + i];
            assert.ok(
              Math.abs(value - want) <= tol,
              `replica ${r} parameter ${p} row ${i}: ${value}, float64 ${want}`,
            );
          }
        });
        if (p === sizes.length - 1 && sizes.length > 1) {
          // The output layer's block: its pass skips everything that leads only to earlier layers.
          const flat = engine.tensor(f32Array(random, R * operator.size, 1), [operator.size], { batch: R });
          const start = engine.scheduler.launches;
          const full = operator.applyFlat(flat);
          const fullLaunches = engine.scheduler.launches - start;
          for (const t of [flat, full]) t.dispose();
          assert.ok(
            blockLaunches < fullLaunches,
            `${blockLaunches} launches for the block, ${fullLaunches} for H·v`,
          );
        }
      }
    } finally {
      instance.dispose();
    }
  });
}

test('Hutchinson: within 3 standard errors of the exact trace for 20 seeds; the standard errors are right', async () => {
  for (const c of [QUADRATIC, MLP]) {
    const { instance, reference } = await build(c, R, 31);
    try {
      const probes = 64;
      const z: number[] = [];
      let varianceRatio = 0;
      for (let seed = 1; seed <= 20; seed++) {
        const result = await hessianTrace(instance.operator, { probes, seed });
        assert.is(result.hvps, 2, '64 probes in two launches of 32');
        reference.forEach((H, r) => {
          const exact = trace(H);
          const error = result.estimate[r] - exact;
          assert.is(result.probes[r], probes);
          assert.ok(
            Math.abs(error) <= 3 * result.standardError[r],
            `${c.name} seed ${seed} replica ${r}: ${result.estimate[r]} ± ${result.standardError[r]}, exact ${exact}`,
          );
          z.push(error / result.standardError[r]);
          // Rademacher probes: Var(zᵀHz) = 2(‖H‖_F² − Σ H_ii²).
          let offDiagonal = 0;
          H.forEach((row, i) => {
            row.forEach((h, j) => {
              if (i !== j) offDiagonal += h * h;
            });
          });
          varianceRatio += (result.standardError[r] ** 2 * probes) / (2 * offDiagonal);
        });
      }
      // The standardised errors of 40 estimates: Σz² ~ χ²₄₀ (0.1 % and 99.9 % quantiles 17.9, 73.4).
      const chi2 = z.reduce((a, v) => a + v * v, 0);
      assert.ok(chi2 > 17.9 && chi2 < 73.4, `${c.name}: Σ z² = ${chi2} over ${z.length} estimates`);
      // Pooled sample variance over 40 × 63 degrees of freedom vs the exact probe variance.
      const ratio = varianceRatio / z.length;
      assert.ok(ratio > 0.85 && ratio < 1.15, `${c.name}: sample/true probe variance ${ratio}`);
    } finally {
      instance.dispose();
    }
  }
});

test('Hutchinson with a target relative error stops once SE ≤ target·|estimate| for every replica', async () => {
  const { instance, reference } = await build(MLP, R, 31);
  try {
    const target = 0.05;
    const result = await hessianTrace(instance.operator, {
      targetRelativeError: target,
      probesPerLaunch: 16,
      seed: 3,
    });
    reference.forEach((H, r) => {
      assert.ok(result.standardError[r] <= target * Math.abs(result.estimate[r]), `replica ${r}`);
      assert.ok(result.probes[r] >= 16 && result.probes[r] % 16 === 0, `probes ${result.probes[r]}`);
      assert.ok(Math.abs(result.estimate[r] - trace(H)) <= 4 * result.standardError[r]);
    });
    assert.is(result.hvps, Math.max(...result.probes) / 16);
  } finally {
    instance.dispose();
  }
});

/**
 * W1 between the SLQ density and the dense spectrum's histogram is bounded by the broadening
 * (E|σZ| = σ√(2/π)), the Gauss quadrature error of m nodes (≤ πW/4m for a spectrum of width W, by
 * Jackson's theorem; 0 when m = n) and the probe sampling error of the quadrature weights: a run's
 * CDF zᵀP_t z / n (P_t the spectral projector, rank nF) has variance 2(‖P_t‖_F² − Σ_i P_ii²)/n² ≤
 * 2F(1 − F)/n, so E W1 ≤ ∫ √(2F(1 − F)/(n·runs)) dt (3× margin).
 */
function slqBound(spectrum: number[], sigma: number, steps: number, runs: number): number {
  const n = spectrum.length;
  const sorted = [...spectrum].sort((a, b) => a - b);
  const width = sorted[n - 1] - sorted[0];
  let sampling = 0;
  for (let i = 0; i + 1 < n; i++) {
    const F = (i + 1) / n;
    sampling += Math.sqrt((2 * F * (1 - F)) / (n * runs)) * (sorted[i + 1] - sorted[i]);
  }
  const quadrature = steps >= n ? 0 : (Math.PI * width) / (4 * steps);
  return sigma * Math.sqrt(2 / Math.PI) + quadrature + 3 * sampling;
}

for (const [c, steps] of [
  [QUADRATIC, 60],
  [QUADRATIC, 30],
  [MLP, 62],
  [MODEL_CASES[3], 30],
] as const) {
  test(`${c.name}: SLQ (${steps} steps): exact quadrature moments, density within W1 of the dense spectrum`, async () => {
    const { instance, reference } = await build(c, R, 31);
    try {
      const runs = 12;
      const result = await spectralDensity(instance.operator, { runs, steps, seed: 9 });
      const n = instance.operator.size;
      const copies = instance.operator.withCopies(runs);
      const startTensor = randomVectors(copies, 'rademacher', { seed: 9, stream: STREAM_SLQ, counter: 0 });
      const starts = await startTensor.read();
      startTensor.dispose();
      copies.dispose();
      // One launch per step, plus the steps remade after a restart (α, β are read back every
      // LANCZOS_CHECK_EVERY steps, so a restart remakes fewer than that many).
      const stepsMade = Math.min(steps, instance.operator.size);
      assert.ok(result.hvps >= stepsMade && result.hvps <= 2 * stepsMade, `${result.hvps} launches`);
      reference.forEach((H, r) => {
        const spectrum = eigenvalues(H);
        const { grid, density, sigma } = {
          grid: result.grid[r],
          density: result.density[r],
          sigma: result.sigma[r],
        };
        const step = grid[1] - grid[0];
        let integral = 0;
        for (let i = 1; i < grid.length; i++) integral += 0.5 * (density[i] + density[i - 1]) * step;
        assert.ok(Math.abs(integral - 1) < 1e-9, `integral ${integral}`);
        assert.ok(Math.abs(result.weights[r].reduce((a, b) => a + b, 0) - 1) < 1e-9);
        // Gauss quadrature is exact to degree 2m − 1: the measure's moments are the mean over runs of
        // vᵀHᵖv/n for its own start vectors v (regenerated here), up to f32 rounding.
        for (const power of [1, 2, 3]) {
          let want = 0;
          for (let j = 0; j < runs; j++) {
            let v = Array.from(starts.subarray((r * runs + j) * n, (r * runs + j + 1) * n));
            const v0 = v;
            for (let p = 0; p < power; p++) v = H.map((row) => row.reduce((a, h, k) => a + h * v[k], 0));
            want += v.reduce((a, x, i) => a + x * v0[i], 0) / n / runs;
          }
          const got = result.nodes[r].reduce((a, theta, k) => a + result.weights[r][k] * theta ** power, 0);
          const norm = spectralNorm(spectrum) ** power;
          assert.ok(
            Math.abs(got - want) <= 1e-4 * norm,
            `replica ${r}: moment ${power} of the SLQ measure ${got}, quadratic forms ${want}`,
          );
        }
        const distance = wassersteinDensityToAtoms(grid, density, spectrum);
        const bound = slqBound(spectrum, sigma, steps, runs);
        const width = spectrum[spectrum.length - 1] - spectrum[0];
        assert.ok(
          distance <= bound,
          `replica ${r}: W1 ${distance.toExponential(3)} > bound ${bound.toExponential(3)} (width ${width})`,
        );
      });
    } finally {
      instance.dispose();
    }
  });
}

test('bad input is refused before any GPU work, naming the field', async () => {
  const { instance } = await build(QUADRATIC, 1, 1);
  try {
    const op = instance.operator;
    const launches = op.engine.scheduler.launches;
    for (const [call, field] of [
      [() => hessianTrace(op, { probes: 0 }), 'probes'],
      [() => hessianTrace(op, { probes: 10, targetRelativeError: 0.1 }), 'probes'],
      [() => hessianTrace(op, { targetRelativeError: -1 }), 'targetRelativeError'],
      [() => hessianTrace(op, { probesPerLaunch: 1.5 }), 'probesPerLaunch'],
      [() => exactTrace(op, { perLaunch: 0 }), 'perLaunch'],
      [() => spectralDensity(op, { runs: 0 }), 'runs'],
      [() => spectralDensity(op, { sigma: -1 }), 'sigma'],
    ] as const) {
      try {
        await call();
        assert.unreachable(`${field} accepted`);
      } catch (error) {
        assert.instance(error, InputError, String(error));
        assert.is((error as InputError).field, field);
      }
    }
    assert.is(op.engine.scheduler.launches, launches);
  } finally {
    instance.dispose();
  }
});

test.run();
