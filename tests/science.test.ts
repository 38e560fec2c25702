/**
 * The paper's claims, checked on the quick presets as CI runs them: assertions on the science with
 * tolerances from the seed spread (Student t at 99 %), never on numbers from an earlier run.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { prepareExperiment } from '../src/experiments/config.ts';
import { type ResultRow, runExperiment } from '../src/experiments/executor.ts';
import { presetConfig } from '../src/experiments/presets/index.ts';
import { finalValues } from '../src/experiments/results.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('science: quick presets reproduce the paper');
test.after(destroyTestEngine);

/** Two-sided 99 % Student-t quantiles by degrees of freedom. */
const T99: Record<number, number> = {
  1: 63.66,
  2: 9.925,
  3: 5.841,
  4: 4.604,
  5: 4.032,
  6: 3.707,
  7: 3.499,
  8: 3.355,
  9: 3.25,
  10: 3.169,
  11: 3.106,
  12: 3.055,
  13: 3.012,
  14: 2.977,
  15: 2.947,
  16: 2.921,
  17: 2.898,
  18: 2.878,
  19: 2.861,
};

async function runQuick(name: string): Promise<{ rows: ResultRow[]; lateWindow: number }> {
  const config = prepareExperiment(presetConfig(name), { quick: true });
  const { rows, divergences } = await runExperiment(await testEngine(), config);
  assert.equal(divergences, [], `${name}: no replica diverged`);
  return { rows, lateWindow: config.measure.lateWindow };
}

function final(rows: ResultRow[], lateWindow: number, group: string, metric: string) {
  const f = finalValues(rows, lateWindow).find((v) => v.group === group && v.metric === metric);
  assert.ok(f, `${group} ${metric}`);
  return f;
}

/** Least-squares slope of value against step, one per seed, over steps in [from, to]. */
function slopes(rows: ResultRow[], group: string, metric: string, from: number, to: number): number[] {
  const bySeed = new Map<number, [number, number][]>();
  for (const r of rows) {
    if (
      r.group !== group ||
      r.metric !== metric ||
      typeof r.seed !== 'number' ||
      r.step < from ||
      r.step > to
    )
      continue;
    bySeed.set(r.seed, [...(bySeed.get(r.seed) ?? []), [r.step, r.value]]);
  }
  return [...bySeed.values()].map((points) => {
    const mx = points.reduce((a, p) => a + p[0], 0) / points.length;
    const my = points.reduce((a, p) => a + p[1], 0) / points.length;
    const sxy = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
    const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
    return sxy / sxx;
  });
}

function meanAndError(values: number[]): { mean: number; error: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
  return { mean, error: Math.sqrt(variance / values.length) };
}

test('init-scale: the final sharpness of every initialisation scale agrees with T*', async () => {
  const { rows, lateWindow } = await runQuick('init-scale');
  for (const group of ['scale-0.2', 'scale-0.5', 'scale-1', 'scale-1.5']) {
    const f = final(rows, lateWindow, group, 'sharpness');
    assert.ok(f.theory !== undefined);
    const tolerance = T99[f.count - 1] * f.standardError;
    assert.ok(
      Math.abs(f.mean - f.theory) <= tolerance,
      `${group}: T = ${f.mean} ± ${f.standardError}, T* = ${f.theory}`,
    );
  }
});

test('sharpening-linear: anisotropic noise ends sharper than isotropic, and approaches T*', async () => {
  const { rows, lateWindow } = await runQuick('sharpening-linear');
  const iso = final(rows, lateWindow, 'isotropic', 'sharpness');
  const aniso = final(rows, lateWindow, 'anisotropic', 'sharpness');
  const gap = aniso.mean - iso.mean;
  const gapError = Math.hypot(aniso.standardError, iso.standardError);
  assert.ok(
    gap > T99[Math.min(iso.count, aniso.count) - 1] * gapError,
    `T aniso ${aniso.mean} vs iso ${iso.mean} (± ${gapError})`,
  );
  assert.ok(aniso.theory !== undefined && iso.theory !== undefined && aniso.theory > iso.theory);
  // Isotropic noise sits at its (flattest) minimum; anisotropic noise is still drifting up toward T*.
  assert.ok(
    Math.abs(iso.mean - iso.theory) <= T99[iso.count - 1] * iso.standardError,
    `iso ${iso.mean} vs ${iso.theory}`,
  );
  const drift = slopes(rows, 'anisotropic', 'sharpness', 0, Number.POSITIVE_INFINITY);
  const { mean, error } = meanAndError(drift);
  assert.ok(mean > T99[drift.length - 1] * error, `anisotropic sharpening slope ${mean} ± ${error}`);
  assert.ok(aniso.mean < aniso.theory, 'it approaches T* from below');
});

test('sgd-vs-gd: the sharpness stops drifting after the switch to GD, while SGD keeps sharpening', async () => {
  const { rows } = await runQuick('sgd-vs-gd');
  const config = prepareExperiment(presetConfig('sgd-vs-gd'), { quick: true });
  const switchAt = config.groups.find((g) => g.name === 'sgd-then-gd')?.overrides as {
    train: { switchToGdAt: number };
  };
  const at = switchAt.train.switchToGdAt;
  const after = slopes(rows, 'sgd-then-gd', 'sharpness', at + 200, Number.POSITIVE_INFINITY);
  const sgd = slopes(rows, 'sgd', 'sharpness', at + 200, Number.POSITIVE_INFINITY);
  const a = meanAndError(after);
  const s = meanAndError(sgd);
  assert.ok(s.mean > T99[sgd.length - 1] * s.error, `SGD keeps sharpening: slope ${s.mean} ± ${s.error}`);
  assert.ok(
    Math.abs(a.mean) <= T99[after.length - 1] * a.error,
    `after the switch: slope ${a.mean} ± ${a.error}`,
  );
  assert.ok(Math.abs(a.mean) < s.mean / 5, `GD drift ${a.mean} is far below SGD's ${s.mean}`);
});

test.run();
