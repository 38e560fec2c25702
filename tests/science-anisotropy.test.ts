/**
 * Fig 3 of the paper on the quick `anisotropy-sweep` preset as CI runs it: for every model (deep
 * linear, MLP, RNN, Transformer) and loss (MSE, cross-entropy), the relative sharpness T(κ)/T(1)
 * rises with the anisotropy κ of the label noise. The tolerance comes from the seed spread (one-sided
 * Student t at 99 %), never from numbers of an earlier run.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ExperimentConfig, prepareExperiment, resolveGroup } from '../src/experiments/config.ts';
import { type ResultRow, runExperiment } from '../src/experiments/executor.ts';
import { presetConfig } from '../src/experiments/presets/index.ts';
import { relativeFinalValues } from '../src/experiments/results.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('science: relative sharpness rises with the anisotropy of the label noise');
test.after(destroyTestEngine);

/** One-sided 99 % Student-t quantiles t(0.99, df) by degrees of freedom. */
const T99_ONE_SIDED: Record<number, number> = {
  1: 31.82,
  2: 6.965,
  3: 4.541,
  4: 3.747,
  5: 3.365,
  6: 3.143,
  7: 2.998,
  8: 2.896,
  9: 2.821,
  10: 2.764,
  11: 2.7181,
  12: 2.681,
  13: 2.65,
  14: 2.624,
  15: 2.602,
};

interface Sweep {
  config: ExperimentConfig;
  rows: ResultRow[];
}

let sweep: Promise<Sweep> | undefined;

/** The quick preset, run once for every test of this file. */
function quickSweep(): Promise<Sweep> {
  sweep ??= (async () => {
    const config = prepareExperiment(presetConfig('anisotropy-sweep'), { quick: true });
    const { rows, divergences } = await runExperiment(await testEngine(), config);
    assert.equal(divergences, [], 'no replica diverged');
    return { config, rows };
  })();
  return sweep;
}

/**
 * Per seed, the least-squares slope of ln T(κ)/T(1) against ln κ through the origin, over the κ > 1
 * groups of one model and loss (T = late-window mean sharpness; the ratio is the one the report
 * plots). The line goes through (0, 0) because T(1)/T(1) = 1 by construction, not by measurement;
 * a free intercept would also ignore the middle κ of three equally spaced ln κ.
 *
 * Why this statistic: replicas are independent across seeds, so the per-seed slopes are independent
 * draws and a one-sided t-test on their mean needs no assumption on how the spread depends on κ. A
 * slope uses every κ at once (a paired test per κ step would split the same seeds over several
 * comparisons), and logs make the ratios' multiplicative spread additive. The test fails when the
 * mean slope is not significantly positive, whatever the cause (no effect, too few steps, noise).
 */
function slopesOverKappa(config: ExperimentConfig, rows: ResultRow[], prefix: string): number[] {
  const all = config.groups.filter((g) => g.name.startsWith(prefix));
  const groups = all.filter((g) => g.name !== `${prefix}k1`);
  const kappaOf = new Map(all.map((g) => [g.name, g.value as number]));
  const references = Object.fromEntries(all.map((g) => [g.name, g.reference]));
  assert.ok(
    groups.length >= 1 && all.length === groups.length + 1,
    `${prefix}: κ = 1 and at least one κ > 1`,
  );
  assert.ok(
    all.every((g) => g.value !== undefined && g.reference === `${prefix}k1`) &&
      groups.every((g) => (g.value as number) > 1),
    `${prefix}: κ values and the isotropic reference`,
  );
  // The window the report uses: each group's own measure.lateWindow.
  const lateWindow = (group: string) => resolveGroup(config, group).measure.lateWindow;
  const seeds = [
    ...new Set(
      rows.filter((r) => kappaOf.has(r.group) && typeof r.seed === 'number').map((r) => r.seed as number),
    ),
  ];
  const slopes: number[] = [];
  for (const seed of seeds) {
    const seedRows = rows.filter((r) => r.seed === seed && r.metric === 'sharpness' && kappaOf.has(r.group));
    const points = relativeFinalValues(seedRows, lateWindow, references)
      .filter((v) => v.group !== `${prefix}k1`)
      .map((v) => {
        assert.ok(
          v.count === 1 && Number.isFinite(v.mean) && v.mean > 0,
          `${v.group} seed ${seed}: T(κ)/T(1)`,
        );
        return [Math.log(kappaOf.get(v.group) as number), Math.log(v.mean)];
      });
    assert.equal(points.length, groups.length, `${prefix} seed ${seed}: every κ measured`);
    const sxy = points.reduce((a, p) => a + p[0] * p[1], 0);
    const sxx = points.reduce((a, p) => a + p[0] ** 2, 0);
    slopes.push(sxy / sxx);
  }
  return slopes;
}

function meanAndError(values: number[]): { mean: number; error: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
  return { mean, error: Math.sqrt(variance / values.length) };
}

/** Every model and loss pair of Fig 3. */
const PAIRS: [string, string][] = [
  ['linear', 'mse'],
  ['linear', 'cross-entropy'],
  ['mlp', 'mse'],
  ['mlp', 'cross-entropy'],
  ['rnn', 'mse'],
  ['rnn', 'cross-entropy'],
  ['transformer', 'mse'],
  ['transformer', 'cross-entropy'],
];

for (const [model, loss] of PAIRS) {
  test(`${model}, ${loss}: T(κ)/T(1) rises with κ`, async () => {
    const { config, rows } = await quickSweep();
    const slopes = slopesOverKappa(config, rows, `${model}-${loss}-`);
    assert.ok(slopes.length >= 3, `${model}-${loss}: at least 3 seeds for a spread (got ${slopes.length})`);
    const { mean, error } = meanAndError(slopes);
    const critical = T99_ONE_SIDED[slopes.length - 1];
    assert.ok(critical !== undefined, `a t quantile for ${slopes.length - 1} degrees of freedom`);
    assert.ok(
      mean > critical * error,
      `${model}-${loss}: slope of ln T(κ)/T(1) against ln κ = ${mean.toFixed(3)} ± ${error.toFixed(3)} ` +
        `(per seed ${slopes.map((s) => s.toFixed(3)).join(', ')}) is not above ${critical} × its standard error`,
    );
  });
}

test.run();
