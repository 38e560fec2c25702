// The `density` metric: rows of ρ(λ) at the end of training whose moments match the exact Hessian
// (integral 1, mean Tr H / n), the SLQ route within its sampling error, the CSV round trip of the
// eigenvalue column, the panel's validation and its SVG.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { renderSvg } from '../runner/node/render.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { type ResultRow, runExperiment } from '../src/experiments/executor.ts';
import { panelSpec } from '../src/experiments/plots.ts';
import { fromCsv, toCsv } from '../src/experiments/results.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('density metric');
test.after(destroyTestEngine);

const DENSITY_PANEL = { name: 'spectrum', kind: 'density', metrics: ['density'], title: 'Hessian spectrum' };

const CONFIG = deepLinearConfig({
  name: 'density-test',
  description: 'the Hessian spectral density of a depth-2 linear network',
  steps: 100,
  measure: { every: 50, evaluationSamples: 64, metrics: ['sharpness', 'lambdaMax', 'density'] },
  seeds: 2,
  seed: 3,
  groups: [{ name: 'only' }],
  panels: [{ ...DENSITY_PANEL, yScale: 'log' }],
});

/** Trapezoid mass and mean of one replica's density rows (computed here, apart from the library). */
function moments(rows: readonly ResultRow[]): { mass: number; mean: number; first: number; last: number } {
  const grid = rows.map((r) => r.eigenvalue ?? Number.NaN);
  let mass = 0;
  let mean = 0;
  for (let i = 1; i < rows.length; i++) {
    const h = grid[i] - grid[i - 1];
    mass += 0.5 * h * (rows[i].value + rows[i - 1].value);
    mean += 0.5 * h * (grid[i] * rows[i].value + grid[i - 1] * rows[i - 1].value);
  }
  return { mass, mean, first: grid[0], last: grid[grid.length - 1] };
}

const value = (rows: readonly ResultRow[], seed: number, step: number, metric: string) =>
  rows.find((r) => r.seed === seed && r.step === step && r.metric === metric)?.value ?? Number.NaN;

test('deep linear (exact population spectrum): only at the end, integral 1, mean Tr H / n, support to λ_max; CSV round trip; the panel renders', async () => {
  const engine = await testEngine();
  const config = prepareExperiment(CONFIG);
  const { rows } = await runExperiment(engine, config);
  const density = rows.filter((r) => r.metric === 'density');
  assert.equal([...new Set(density.map((r) => r.step))], [100], 'measured at the end of training only');
  const parameters = 8; // W1 2×2, W2 2×2
  for (const seed of [0, 1]) {
    const curve = density.filter((r) => r.seed === seed);
    assert.ok(curve.length >= 64, `seed ${seed}: a curve, not a point`);
    const { mass, mean, first, last } = moments(curve);
    assert.ok(Math.abs(mass - 1) < 1e-9, `seed ${seed}: ∫ρ = ${mass}`);
    const T = value(rows, seed, 100, 'sharpness');
    const lambdaMax = value(rows, seed, 100, 'lambdaMax');
    // Broadening by a symmetric Gaussian keeps the mean; cutting its tails at ±5σ moves it by < 1e-6 σ.
    assert.ok(
      Math.abs(mean - T / parameters) < 1e-6 * lambdaMax,
      `seed ${seed}: mean ${mean} vs Tr H/n ${T / 8}`,
    );
    // The grid spans the eigenvalues ± 5σ with σ = 1 % of their range: its top end gives λ_max back.
    const fromGrid = last - (0.05 * (last - first)) / 1.1;
    assert.ok(Math.abs(fromGrid - lambdaMax) < 1e-9 * lambdaMax, `λ_max ${fromGrid} vs ${lambdaMax}`);
  }
  // The CSV carries the eigenvalue column and gives the rows back.
  const back = fromCsv(toCsv(rows));
  assert.equal(back, rows);
  assert.ok(
    !toCsv(rows.filter((r) => r.metric !== 'density'))
      .split('\r\n')[0]
      .includes('eigenvalue'),
  );
  const svg = await renderSvg(panelSpec(config, config.panels[0], rows));
  assert.ok(svg.includes('Hessian spectrum') && svg.includes('eigenvalue λ of H') && svg.includes('ρ(λ)'));
});

test('MLP (stochastic Lanczos quadrature on the evaluation set): integral 1, mean within 5 s.e. of Tr H / n from the dense Hessian', async () => {
  const engine = await testEngine();
  const parameters = 2 * 3 + 3 + 3 * 2 + 2;
  const config = prepareExperiment({
    ...CONFIG,
    name: 'density-mlp',
    model: { kind: 'mlp', inputDim: 2, hidden: [3], outputDim: 2, activation: 'tanh' },
    measure: {
      ...CONFIG.measure,
      metrics: ['sharpness', 'topEigenvalues', 'density'],
      topEigenvalues: parameters,
    },
    panels: [],
  });
  const { rows } = await runExperiment(engine, config);
  for (const seed of [0, 1]) {
    const { mass, mean } = moments(rows.filter((r) => r.metric === 'density' && r.seed === seed));
    assert.ok(Math.abs(mass - 1) < 1e-6, `seed ${seed}: ∫ρ = ${mass}`);
    // Each of the 10 runs' mean is vᵀHv / n for a Rademacher v: variance ≤ 2 Σλ² / n².
    const squares = Array.from(
      { length: parameters },
      (_, k) => value(rows, seed, 100, `lambda${k + 1}`) ** 2,
    );
    const standardError = Math.sqrt((2 * squares.reduce((a, b) => a + b, 0)) / 10) / parameters;
    const exact = value(rows, seed, 100, 'sharpness') / parameters;
    assert.ok(
      Math.abs(mean - exact) < 5 * standardError + 1e-4 * Math.abs(exact),
      `seed ${seed}: mean ${mean} vs Tr H/n ${exact} (s.e. ${standardError})`,
    );
  }
});

test('a density is drawn only by a density panel, which draws nothing else', () => {
  const bad = (panel: Record<string, unknown>) => {
    try {
      prepareExperiment({ ...CONFIG, panels: [panel] });
      return '';
    } catch (error) {
      return String((error as Error).message);
    }
  };
  assert.match(bad({ ...DENSITY_PANEL, kind: 'timeseries' }), /panels\[0\]\.metrics\[0\].*kind 'density'/);
  assert.match(bad({ ...DENSITY_PANEL, metrics: ['sharpness'] }), /density panel shows only 'density'/);
});

test.run();
