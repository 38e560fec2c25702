/**
 * Where a run starts: afresh, or from a checkpoint's log point (its rows, divergences and final
 * weights so far, and the parameters and optimizer state of the batch it was training).
 */
import { InputError } from '../../errors.ts';
import type { NamedTensor } from '../../models/weights.ts';
import type { Engine, Tensor } from '../../tensor/engine.ts';
import type { OptimizerState } from '../../train/optimizer.ts';
import type { ResultRow } from '../results.ts';
import type { Checkpoint, ReplicaDivergence } from './hooks.ts';
import { batchSteps, type ExperimentShard, type ReplicaBatch } from './plan.ts';

/** What a run has produced so far and how far it is (steps over all batches). */
export interface RunState {
  rows: ResultRow[];
  divergences: ReplicaDivergence[];
  finalWeights: NamedTensor[];
  done: number;
  total: number;
}

/** Refuses a checkpoint of another run (experiment, shard, format, or a batch this run lacks). */
export function checkResume(
  resume: Checkpoint | undefined,
  experiment: string,
  shard: ExperimentShard | null,
  batches: readonly ReplicaBatch[],
): void {
  if (
    resume &&
    (resume.version !== 2 ||
      resume.experiment !== experiment ||
      JSON.stringify(resume.shard ?? null) !== JSON.stringify(shard) ||
      !(resume.batchIndex < batches.length))
  ) {
    const where = resume.shard ? `, shard ${resume.shard.index}/${resume.shard.count}` : '';
    throw new InputError(
      '--resume',
      `the checkpoint belongs to another run (experiment '${resume.experiment}'${where}, batch ${resume.batchIndex}, format ${resume.version}); start afresh without --resume`,
    );
  }
}

/** The run's state before its first batch: empty, or the checkpoint's. */
export function startState(batches: readonly ReplicaBatch[], resume: Checkpoint | undefined): RunState {
  const total = batches.reduce((sum, b) => sum + batchSteps(b), 0);
  if (!resume) return { rows: [], divergences: [], finalWeights: [], done: 0, total };
  return {
    rows: [...resume.rows],
    divergences: [...resume.divergences],
    finalWeights: (resume.weights ?? []).map((t) => ({ ...t, values: Float32Array.from(t.values) })),
    done: batches.slice(0, resume.batchIndex).reduce((sum, b) => sum + batchSteps(b), 0) + resume.step,
    total,
  };
}

/** The step batch `batchIndex` starts at, or undefined when the checkpoint already finished it. */
export function startStepOf(resume: Checkpoint | undefined, batchIndex: number): number | undefined {
  if (!resume) return 0;
  if (batchIndex < resume.batchIndex) return undefined;
  return batchIndex === resume.batchIndex ? resume.step : 0;
}

/** Writes the checkpoint's parameters over the batch's (refused if they do not fit its model). */
export function restoreParameters(engine: Engine, resume: Checkpoint, params: readonly Tensor[]): void {
  if (
    resume.params.length !== params.length ||
    resume.params.some((values, i) => values.length !== params[i].length)
  ) {
    throw new InputError('--resume', 'the checkpoint parameters do not match the model of this batch');
  }
  resume.params.forEach((values, i) => {
    engine.write(params[i], values);
  });
}

/** A checkpoint without the momentum/moment tensors cannot continue this optimizer exactly. */
export function restoreOptimizerState(resume: Checkpoint, state: OptimizerState): void {
  if (state.tensors.length > 0) state.write(resume.optimizerState ?? []);
}
