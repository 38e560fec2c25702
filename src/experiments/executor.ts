/**
 * Runs an experiment: the seeds of consecutive groups that differ only in noise, Σ_x or init train
 * as one batch of replicas (see run/plan.ts); at each log point the loss, sharpness (Hessian trace),
 * λ_max, gradient fluctuation and layer condition numbers are measured on a fixed evaluation set
 * (run/measure.ts), and linear-teacher deep linear groups get the theory values (run/write.ts).
 * Output is tidy rows (experiment, group, seed, step, metric, value; seed = 'theory' for theory).
 */
import type { Engine } from '../tensor/engine.ts';
import { type ExperimentConfig, validateExperiment } from './config.ts';
import { prepareBatch } from './run/batch.ts';
import { type RunPosition, reportProgress, saveCheckpoint } from './run/checkpoint.ts';
import { freezeDiverged } from './run/freeze.ts';
import type { ExperimentHooks, ExperimentOutcome } from './run/hooks.ts';
import { measureLogPoint, planMeasurement } from './run/measure.ts';
import { planBatches, shardRange } from './run/plan.ts';
import { ReplicaRows } from './run/replica-rows.ts';
import { checkResume, startState, startStepOf } from './run/resume.ts';
import { batchDefinitions } from './run/route.ts';
import { trainSegment } from './run/train-segment.ts';
import { relativeSharpnessRows, writeBatch } from './run/write.ts';

export type { ResultRow } from './results.ts';
export { checkInitialWeights } from './run/batch.ts';
export { heldOutMetrics } from './run/held-out.ts';
export type {
  Checkpoint,
  ExperimentHooks,
  ExperimentOutcome,
  ExperimentProgress,
  LogPoint,
  ReplicaDivergence,
} from './run/hooks.ts';
export {
  type BatchMember,
  type ExperimentShard,
  isCheckpointStep,
  logSteps,
  planBatches,
  type ReplicaBatch,
  replicaOffsets,
  shardRange,
} from './run/plan.ts';
export {
  DEFAULT_TOP_EIGENVALUES,
  experimentDefinitions,
  measurementRoute,
  topEigenvalueCount,
} from './run/route.ts';
export { relativeSharpnessRows } from './run/write.ts';

/**
 * Runs every group of a validated config (or one shard of its replicas); `rows` are ready for
 * results.csv. Consecutive groups that differ only in noise or initialisation train as one batch.
 */
export async function runExperiment(
  engine: Engine,
  config: ExperimentConfig,
  hooks: ExperimentHooks = {},
): Promise<ExperimentOutcome> {
  const groups = validateExperiment(config);
  const shard = hooks.shard ?? null;
  const batches = planBatches(groups, shard ? shardRange(config, shard) : undefined);
  const { resume } = hooks;
  checkResume(resume, config.name, shard, batches);
  const state = startState(batches, resume);
  const definitions = batchDefinitions(batches);
  for (const [batchIndex, batch] of batches.entries()) {
    const startStep = startStepOf(resume, batchIndex);
    if (startStep === undefined) continue;
    const out = new ReplicaRows(config.name, batch, state.rows, state.divergences, startStep > 0);
    const prepared = prepareBatch(engine, batch, hooks, startStep > 0 ? resume : undefined);
    const measurement = planMeasurement(prepared, out);
    const position: RunPosition = {
      experiment: config.name,
      shard,
      batchIndex,
      batches: batches.length,
      lastStep: startStep,
    };
    try {
      await trainSegment(engine, prepared, startStep, async (step, loss) => {
        // Read back once, diverged replicas zeroed: measurements, checkpoint and live view share them.
        const weights = await freezeDiverged(engine, prepared, out, step, loss);
        await measureLogPoint(engine, measurement, step, loss, weights);
        reportProgress(hooks, state, position, prepared, step);
        await saveCheckpoint(hooks, state, position, prepared, step, weights);
        await hooks.logPoint?.({ batchIndex, step, rows: state.rows, params: weights });
      });
      await writeBatch(state, prepared, out);
    } finally {
      prepared.dispose();
    }
  }
  if (!shard) state.rows.push(...relativeSharpnessRows(config, state.rows));
  return { rows: state.rows, divergences: state.divergences, weights: state.finalWeights, definitions };
}
