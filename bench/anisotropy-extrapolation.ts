/**
 * The full `anisotropy-sweep` preset's wall time on this adapter, extrapolated from short
 * measurements (issue 20: "its full form fits an afternoon on one GPU by the bench's own
 * extrapolation"). For each batch the executor would train (the preset loaded and planned by the
 * experiment code itself), the batch is prepared as the executor prepares it; then
 *
 * 1. a warm-up step (one fused dispatch, or one general-path step), untimed;
 * 2. training steps without log points, in chunks (4 general-path steps, or 2048 fused steps in
 *    whole dispatches) until `STEP_SECONDS` have passed, at least one chunk (the path `train`
 *    picks, as in the experiment): the time per step;
 * 3. a log point timed as the executor runs one (read back and freeze diverged replicas, then every
 *    metric of the batch). Its first run includes compiling the curvature pipelines: when it took
 *    under `WARM_LOG_POINT_BELOW` seconds a second, warm one is timed and stands; a slower one
 *    stands itself (compilation is a few % of it), which keeps the run to about two minutes here.
 *
 * Estimate = steps × time per step + log points × time per log point. Left out: start-up, pipeline
 * compilation and batch preparation (seconds), report and file writing.
 */
import { type ExperimentConfig, prepareExperiment, validateExperiment } from '../src/experiments/config.ts';
import { planBatches, type ReplicaBatch } from '../src/experiments/executor.ts';
import { presetConfig } from '../src/experiments/presets/index.ts';
import { prepareBatch } from '../src/experiments/run/batch.ts';
import { freezeDiverged } from '../src/experiments/run/freeze.ts';
import { measureLogPoint, planMeasurement } from '../src/experiments/run/measure.ts';
import { batchLabel, logSteps } from '../src/experiments/run/plan.ts';
import { ReplicaRows } from '../src/experiments/run/replica-rows.ts';
import { batchTrainOptions } from '../src/experiments/run/train-segment.ts';
import type { LossKind } from '../src/models/losses.ts';
import { fusedDispatchSteps, prefersFused } from '../src/train/fused.ts';
import { train } from '../src/train/trainer.ts';
import { markdownTable } from './format.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';

const PRESET = 'anisotropy-sweep';
/** General-path steps per timed chunk (a step of the full RNN or Transformer takes 1–2 s here). */
const GENERAL_CHUNK_STEPS = 4;
/** Fused steps per timed chunk, rounded up to whole dispatches. */
const FUSED_CHUNK_STEPS = 2048;
/** Chunks of steps are timed until this many seconds have passed (at least one chunk). */
const STEP_SECONDS = 6;
/** A first log point faster than this is followed by a second, warm one, which stands. */
const WARM_LOG_POINT_BELOW = 5;

export interface BatchExtrapolation extends BenchResult {
  kind: 'anisotropy-batch';
  batch: string;
  model: string;
  loss: string;
  replicas: number;
  batchSize: number;
  path: 'fused' | 'general';
  /** The full preset's training steps and log points of this batch. */
  steps: number;
  logPoints: number;
  /** What was measured: steps timed, log points timed (the last stands), seconds per step and per log point. */
  measuredSteps: number;
  measuredLogPoints: number;
  secondsPerStep: number;
  secondsPerLogPoint: number;
  /** steps × secondsPerStep + logPoints × secondsPerLogPoint. */
  extrapolatedSeconds: number;
}

async function extrapolateBatch(
  context: BenchContext,
  config: ExperimentConfig,
  batch: ReplicaBatch,
): Promise<BatchExtrapolation> {
  const { engine } = context;
  const prepared = prepareBatch(engine, batch, {});
  const { resolved } = prepared;
  const label = batchLabel(batch);
  try {
    const out = new ReplicaRows(config.name, batch, [], [], false);
    const plan = planMeasurement(prepared, out);
    const loss = resolved.loss as LossKind;
    const fused = prefersFused(prepared.model, prepared.data, loss, resolved.train.batchSize, batch.replicas);
    const dispatch = fused
      ? (fusedDispatchSteps(prepared.model, prepared.data, loss, resolved.train.batchSize) ?? 1)
      : 1;
    const chunk = fused ? dispatch * Math.ceil(FUSED_CHUNK_STEPS / dispatch) : GENERAL_CHUNK_STEPS;
    const run = (
      startStep: number,
      steps: number,
      onLog?: (step: number, l: Float32Array) => Promise<void>,
    ) =>
      train(engine, {
        ...batchTrainOptions(prepared, startStep, steps),
        ...(onLog && { logEvery: steps, onLog }),
      });
    const path = fused ? 'fused' : 'general';
    context.log(`${PRESET} extrapolation: ${label} (${batch.replicas} replicas, ${path}): timing steps`);
    let step = fused ? dispatch : 1;
    await run(0, step);
    await engine.sync();
    let measuredSteps = 0;
    const t0 = performance.now();
    do {
      await run(step, chunk);
      await engine.sync();
      step += chunk;
      measuredSteps += chunk;
    } while (performance.now() - t0 < STEP_SECONDS * 1000);
    const secondsPerStep = (performance.now() - t0) / 1000 / measuredSteps;
    // One step with a log point at its end (a run from a later step logs only there), as the executor times it.
    const logSeconds: number[] = [];
    const logPoint = async (at: number, l: Float32Array) => {
      const started = performance.now();
      const weights = await freezeDiverged(engine, prepared, out, at, l);
      await measureLogPoint(engine, plan, at, l, weights);
      await engine.sync();
      logSeconds.push((performance.now() - started) / 1000);
    };
    context.log(`${PRESET} extrapolation: ${label}: timing a log point`);
    for (let i = 0; i < 2 && (i === 0 || logSeconds[0] < WARM_LOG_POINT_BELOW); i++) {
      await run(step, 1, logPoint);
      step += 1;
    }
    const secondsPerLogPoint = logSeconds[logSeconds.length - 1];
    const steps = resolved.train.steps;
    const logPoints = logSteps(resolved).length;
    const extrapolatedSeconds = steps * secondsPerStep + logPoints * secondsPerLogPoint;
    context.log(
      `${PRESET} extrapolation: ${label}: ${(1000 * secondsPerStep).toFixed(2)} ms/step, ${secondsPerLogPoint.toFixed(2)} s/log point (${logSeconds.map((x) => x.toFixed(2)).join(', ')} s timed) → ${extrapolatedSeconds.toFixed(0)} s`,
    );
    return {
      kind: 'anisotropy-batch',
      engine: 'sharpness-lab',
      shape: [batch.replicas, resolved.train.batchSize],
      gflops: null,
      batch: label,
      model: resolved.model.kind,
      loss: resolved.loss,
      replicas: batch.replicas,
      batchSize: resolved.train.batchSize,
      path,
      steps,
      logPoints,
      measuredSteps,
      measuredLogPoints: logSeconds.length,
      secondsPerStep,
      secondsPerLogPoint,
      extrapolatedSeconds,
    };
  } finally {
    prepared.dispose();
  }
}

const hours = (seconds: number) => `${(seconds / 3600).toFixed(2)} h`;

export const suite: BenchSuite = {
  async run(context) {
    // The full form, loaded and planned by the experiment code (no numbers of the preset here).
    const config = prepareExperiment(presetConfig(PRESET), { quick: false });
    const batches = planBatches(validateExperiment(config));
    const results: BatchExtrapolation[] = [];
    for (const batch of batches) results.push(await extrapolateBatch(context, config, batch));
    return results;
  },
  formatTable(all) {
    const rows = all as BatchExtrapolation[];
    const total = rows.reduce((sum, r) => sum + r.extrapolatedSeconds, 0);
    const table = rows.map((r) => [
      r.batch,
      r.path,
      String(r.replicas),
      String(r.batchSize),
      String(r.steps),
      String(r.logPoints),
      `${r.measuredSteps} / ${r.measuredLogPoints}`,
      (1000 * r.secondsPerStep).toFixed(2),
      r.secondsPerLogPoint.toFixed(2),
      r.extrapolatedSeconds.toFixed(0),
      hours(r.extrapolatedSeconds),
    ]);
    return [
      `${PRESET} (full form): wall time extrapolated per batch = steps × time/step + log points × time/log point`,
      `(time/step: chunks of steps timed for ≥ ${STEP_SECONDS} s after a warm-up step; time/log point: the second, warm one where the first took < ${WARM_LOG_POINT_BELOW} s, else the first, its compilation included)`,
      '',
      markdownTable(
        [
          'batch',
          'path',
          'replicas',
          'batch size',
          'steps',
          'log points',
          'timed: steps / log points',
          'ms/step',
          's/log point',
          'estimate s',
          'estimate h',
        ],
        table,
      ),
      '',
      `total: ${total.toFixed(0)} s = ${hours(total)} (start-up, pipeline compilation, preparation and report not included)`,
    ].join('\n');
  },
};
