/**
 * Wall time of every preset's `--quick` form, end to end through runExperiment (start-up and report
 * excluded), against the issue's target of 90 s each on a 2-core CPU. No peer runs these
 * experiments; the ratio to the target is printed instead. `SHARPNESS_LAB_BENCH_PRESETS` (comma-
 * separated names) picks a subset. The slow entry with init-scale (`--skip-slow` leaves it out).
 */
import { InputError } from '../src/errors.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { PRESET_NAMES, presetConfig } from '../src/experiments/presets/index.ts';
import { type ExperimentWallTime, formatTable, timeExperiment } from './init-scale.ts';
import type { BenchResult, BenchSuite } from './suite.ts';

/** Seconds a quick form may take here (issue #20). */
export const QUICK_TARGET_SECONDS = 90;

/** The presets to time: all, or those named in SHARPNESS_LAB_BENCH_PRESETS. */
export function quickPresetNames(spec = globalThis.process?.env?.SHARPNESS_LAB_BENCH_PRESETS): string[] {
  if (spec === undefined || spec.trim() === '') return [...PRESET_NAMES];
  const names = spec.split(',').map((s) => s.trim());
  for (const name of names)
    if (!PRESET_NAMES.includes(name))
      throw new InputError(
        'SHARPNESS_LAB_BENCH_PRESETS',
        `unknown preset '${name}' (known: ${PRESET_NAMES.join(', ')})`,
      );
  return names;
}

export const suite: BenchSuite = {
  async run(context) {
    const results: ExperimentWallTime[] = [];
    for (const name of quickPresetNames()) {
      const config = prepareExperiment(presetConfig(name), { quick: true });
      results.push(await timeExperiment(context, config, `${name} --quick`));
    }
    return results;
  },
  formatTable(results: readonly BenchResult[]) {
    const rows = results as ExperimentWallTime[];
    const ratios = rows.map(
      (r) =>
        `${r.experiment}: ${r.seconds === null ? 'failed' : `${(r.seconds / QUICK_TARGET_SECONDS).toFixed(2)} × the ${QUICK_TARGET_SECONDS} s target`}`,
    );
    return [formatTable(results), '', ...ratios].join('\n');
  },
};
