/** After a log point's measurements: progress, the resumable state, and the live view's hook. */
import type { PreparedBatch } from './batch.ts';
import type { LogPointWeights } from './freeze.ts';
import type { ExperimentHooks } from './hooks.ts';
import { batchLabel, type ExperimentShard, isCheckpointStep } from './plan.ts';
import type { RunState } from './resume.ts';

/** Where the run is: batch `batchIndex` of `batches`, the last log point it reported. */
export interface RunPosition {
  experiment: string;
  shard: ExperimentShard | null;
  batchIndex: number;
  batches: number;
  lastStep: number;
}

/** Counts the steps since the last log point as done and reports progress. */
export function reportProgress(
  hooks: ExperimentHooks,
  state: RunState,
  position: RunPosition,
  prepared: PreparedBatch,
  step: number,
): void {
  state.done += step - position.lastStep;
  position.lastStep = step;
  hooks.onProgress?.({
    group: batchLabel(prepared.batch),
    groupIndex: position.batchIndex,
    groups: position.batches,
    step,
    steps: prepared.resolved.train.steps,
    done: state.done,
    total: state.total,
  });
}

/**
 * Hands the host a resumable state at a log point strictly inside the batch: not at 0 (the initial
 * state is rebuilt from the seeds) nor at the end (the run is done).
 */
export async function saveCheckpoint(
  hooks: ExperimentHooks,
  state: RunState,
  position: RunPosition,
  prepared: PreparedBatch,
  step: number,
  weights: LogPointWeights,
): Promise<void> {
  if (!hooks.checkpoint || !isCheckpointStep(prepared.resolved, step)) return;
  const { optimizerState } = prepared;
  await hooks.checkpoint({
    version: 2,
    experiment: position.experiment,
    shard: position.shard,
    batchIndex: position.batchIndex,
    step,
    params: weights.map((v) => Array.from(v)),
    ...(optimizerState.tensors.length > 0 && { optimizerState: await optimizerState.read() }),
    rows: [...state.rows],
    divergences: [...state.divergences],
    weights: state.finalWeights.map((t) => ({ ...t, values: Array.from(t.values) })),
  });
}
