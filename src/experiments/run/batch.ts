/**
 * Prepares one batch for training: its data, evaluation set and held-out set, its parameters (the
 * groups' initialisations, given initial weights, or a checkpoint's), optimizer state and Hessian
 * operator; `dispose` frees them all.
 */
import { HessianOperator, type LossClosure } from '../../curvature/operator.ts';
import { EvaluationChunks } from '../../curvature/sample-estimates.ts';
import { FixedDataset } from '../../data/fixed.ts';
import type { DataSource } from '../../data/source.ts';
import { fusedCurvature } from '../../kernels/fused-hvp.ts';
import { initParameters } from '../../models/init.ts';
import { lossFunction } from '../../models/losses.ts';
import { batchedValues, type NamedTensor } from '../../models/weights.ts';
import type { Engine, Tensor } from '../../tensor/engine.ts';
import { OptimizerState, PLAIN_SGD } from '../../train/optimizer.ts';
import type { ExperimentConfig, ValidatedGroup } from '../config.ts';
import { buildData, heldOutDigits } from './data.ts';
import type { Checkpoint, ExperimentHooks } from './hooks.ts';
import { type ExperimentShard, planRun, type ReplicaBatch, replicaNames } from './plan.ts';
import { restoreOptimizerState, restoreParameters } from './resume.ts';
import { evaluationChunkSamples, measurementRoute } from './route.ts';

/** Seed offset of the evaluation set, so it never coincides with a training minibatch. */
const EVALUATION_SEED_OFFSET = 0x5eed;

/** A batch ready to train and measure. Every member shares model, loss, data kind, train and measure. */
export interface PreparedBatch {
  batch: ReplicaBatch;
  resolved: ValidatedGroup['resolved'];
  model: ValidatedGroup['model'];
  /** The training data (a fixed training set when the config asks for one). */
  data: DataSource;
  /** The evaluation set drawn once: curvature and, unless MNIST, accuracy / held-out loss use it. */
  evaluation: { x: Tensor; y: Tensor };
  /** accuracy / heldOutLoss: MNIST's test digits in order with their clean labels, else the evaluation set. */
  heldOut: { x: Tensor; y: Tensor; samples: number };
  params: Tensor[];
  optimizerState: OptimizerState;
  operator: HessianOperator;
  /** GPU route: the evaluation set drawn as chunks, for the sample estimates and their s.e. */
  chunks?: EvaluationChunks;
  dispose(): void;
}

/**
 * `restore`: the checkpoint this batch continues from (mid-batch resume), whose parameters and
 * optimizer state replace the initial ones.
 */
export function prepareBatch(
  engine: Engine,
  batch: ReplicaBatch,
  hooks: ExperimentHooks,
  restore?: Checkpoint,
): PreparedBatch {
  const { resolved, model } = batch.members[0].group;
  const source = buildData(engine, batch, hooks, 'train');
  const data = resolved.trainingSetSize
    ? FixedDataset.fromSource(engine, source, resolved.trainingSetSize, resolved.seed)
    : source;
  const evaluationSource = resolved.data.kind === 'mnist' ? buildData(engine, batch, hooks, 'test') : source;
  // Wraps within uint32, like every other stream key (any uint32 seed is valid).
  const evaluationSeed = (resolved.seed + EVALUATION_SEED_OFFSET) >>> 0;
  const evaluation = evaluationSource.sample({
    seed: evaluationSeed,
    step: 0,
    rows: resolved.measure.evaluationSamples,
    replicas: batch.replicas,
    replicaOffset: batch.offset,
  });
  const heldOutMnist =
    resolved.data.kind === 'mnist' && hooks.mnist
      ? heldOutDigits(engine, hooks.mnist().test, resolved)
      : undefined;
  const heldOut = heldOutMnist ?? {
    x: evaluation.x,
    y: evaluation.y,
    samples: resolved.measure.evaluationSamples,
  };
  const params = initBatch(engine, batch);
  if (hooks.initialWeights)
    initialWeightValues(batch, hooks.initialWeights.tensors, hooks.initialWeights.field).forEach(
      (values, i) => {
        engine.write(params[i], values);
      },
    );
  if (restore) restoreParameters(engine, restore, params);
  const optimizerState = new OptimizerState(engine, resolved.train.optimizer ?? PLAIN_SGD, params);
  if (restore) restoreOptimizerState(restore, optimizerState);
  const lossOf = lossFunction(resolved.loss);
  const closure: LossClosure = (tape, vars, d) => lossOf(tape, model.forward(tape, vars, d.x), d.y);
  // Small deep linear nets and MLPs: the same loss's H·v in one fused kernel per product.
  const fused = fusedCurvature(model.spec, resolved.loss);
  const operator = HessianOperator.create(engine, {
    params,
    loss: closure,
    evaluation: { data: { x: evaluation.x, y: evaluation.y } },
    fused,
  });
  const chunks =
    measurementRoute(batch).kind === 'sample-gpu'
      ? EvaluationChunks.create(engine, {
          params,
          loss: closure,
          source: evaluationSource,
          samples: resolved.measure.evaluationSamples,
          chunkSamples: evaluationChunkSamples(batch.members[0].group, batch.replicas),
          seed: evaluationSeed,
          replicaOffset: batch.offset,
          fused,
        })
      : undefined;
  return {
    batch,
    resolved,
    model,
    data,
    evaluation,
    heldOut,
    params,
    optimizerState,
    operator,
    chunks,
    dispose() {
      operator.dispose();
      chunks?.dispose();
      optimizerState.dispose();
      for (const t of [...params, evaluation.x, evaluation.y] as Tensor[]) t.dispose();
      if (heldOutMnist) for (const t of [heldOutMnist.x, heldOutMnist.y]) t.dispose();
      if (data !== source) data.dispose();
      if (evaluationSource !== source) evaluationSource.dispose();
      source.dispose();
    },
  };
}

/** Each member's initial weights (its own scheme, keyed by global replica) laid end to end. */
function initBatch(engine: Engine, batch: ReplicaBatch): Tensor[] {
  const { model } = batch.members[0].group;
  let offset = batch.offset;
  const parts = batch.members.map((m) => {
    const params = initParameters(engine, model, m.group.resolved.init, {
      replicas: m.seeds,
      seed: m.group.resolved.seed,
      replicaOffset: offset,
    });
    offset += m.seeds;
    return params;
  });
  if (parts.length === 1) return parts[0];
  const joined = model.parameters.map((spec, i) =>
    engine.concatReplicas(
      parts.map((part) => part[i]),
      { label: spec.name },
    ),
  );
  // Submit the copies before the parts' buffers go back to the pool (a queue write would overtake them).
  engine.flush();
  for (const part of parts) for (const t of part) t.dispose();
  return joined;
}

/** The batch's initial parameters (replica-major per parameter) from `group/seed/parameter` tensors. */
function initialWeightValues(
  batch: ReplicaBatch,
  tensors: readonly NamedTensor[],
  field: string,
): Float32Array[] {
  return batchedValues(batch.members[0].group.model, tensors, replicaNames(batch), field);
}

/**
 * Checks that `tensors` hold every replica's initial weights (of the shard, if any) with the model's
 * shapes: an InputError naming `field` (the file) and the missing or misshapen tensor. CPU only.
 */
export function checkInitialWeights(
  config: ExperimentConfig,
  tensors: readonly NamedTensor[],
  field: string,
  shard?: ExperimentShard,
): void {
  for (const batch of planRun(config, shard)) initialWeightValues(batch, tensors, field);
}
