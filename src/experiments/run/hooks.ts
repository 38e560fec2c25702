/** What a host hands `runExperiment` (hooks) and what it gets back (outcome, progress, log points). */
import type { LabelledTables } from '../../data/arrays.ts';
import type { DigitSet } from '../../data/mnist.ts';
import type { NamedTensor } from '../../models/weights.ts';
import type { DivergenceReport } from '../../train/trainer.ts';
import type { MetricDefinition } from '../definitions.ts';
import type { ResultRow } from '../results.ts';
import type { ExperimentShard } from './plan.ts';

export interface ExperimentProgress {
  /** The replica batch being trained: its group name, or the first … last of the groups it holds. */
  group: string;
  /** Index of the batch and the number of batches (groups that differ only in noise or init share one). */
  groupIndex: number;
  groups: number;
  /** Steps done in this batch and in the whole experiment. */
  step: number;
  steps: number;
  done: number;
  total: number;
}

/** A diverged replica: `replica` is the seed within the group. */
export type ReplicaDivergence = DivergenceReport & { group: string };

/**
 * Everything needed to continue a run from a log point: the counter-based RNG makes the continuation
 * identical to an uninterrupted run (same minibatches, noise and probes at every later step).
 */
export interface Checkpoint {
  version: 2;
  experiment: string;
  /** The shard this run trains (null: all replicas). */
  shard: ExperimentShard | null;
  /** Replica batch being trained, and the next step it will take. */
  batchIndex: number;
  step: number;
  /** Its parameters, one array per parameter tensor (all replicas of the batch, replica-major). */
  params: number[][];
  /** The optimizer's state tensors (momentum buffers, Adam moments; see `OptimizerState.read`), if any. */
  optimizerState?: number[][];
  /** Rows and divergences of everything done so far (earlier batches included). */
  rows: ResultRow[];
  divergences: ReplicaDivergence[];
  /** Final weights of the batches already done (see `ExperimentOutcome.weights`), values as arrays. */
  weights?: { name: string; shape: number[]; values: number[] }[];
}

export interface ExperimentHooks {
  /** The digits for MNIST groups (the host loads them; src/ reads no files). */
  mnist?: () => { train: DigitSet; test: DigitSet };
  /** The tables of group g's `data: { kind: 'file' }` (the host reads and checks the files). */
  dataFiles?: (groupIndex: number) => LabelledTables;
  /**
   * Initial weights instead of each group's `init`: tensors named `group/seed/parameter` (a run's
   * weights.safetensors), checked by `checkInitialWeights` before any GPU work.
   */
  initialWeights?: { tensors: readonly NamedTensor[]; field: string };
  onProgress?: (progress: ExperimentProgress) => void;
  /** Called at every log point (after its measurements) with a resumable state. */
  checkpoint?: (state: Checkpoint) => void | Promise<void>;
  /** Continue from this state instead of starting afresh. */
  resume?: Checkpoint;
  /**
   * Awaited at every log point, the last included, after its measurements: a live view (the lab page)
   * reads the rows so far (the run's own array: read it, do not keep or change it) and this log
   * point's weights, and may pause the run by not returning, or stop it by throwing.
   */
  logPoint?: (point: LogPoint) => void | Promise<void>;
  /**
   * Train only this shard's replicas: its rows, plus the theory rows of the groups it touches (the
   * same in every shard), and no relativeSharpness rows (the reference may be in another shard;
   * merging recomputes them with `relativeSharpnessRows`).
   */
  shard?: ExperimentShard;
}

/** What `ExperimentHooks.logPoint` sees. */
export interface LogPoint {
  batchIndex: number;
  /** Updates applied at this log point (0: the initialisation; see src/train/schedule.ts). */
  step: number;
  rows: readonly ResultRow[];
  /** Every parameter tensor of the batch at this step (replica-major). */
  params: readonly (Float32Array | Uint32Array)[];
}

export interface ExperimentOutcome {
  rows: ResultRow[];
  /** What each (group, metric) is: "population, exact" or "sample of n = …" (see definitions.ts). */
  definitions: MetricDefinition[];
  /** `replica` is the seed within the group. */
  divergences: ReplicaDivergence[];
  /** Each replica's final weights, named `group/seed/parameter` (diverged replicas left out). */
  weights: NamedTensor[];
}
