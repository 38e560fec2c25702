/**
 * Runs an experiment: the seeds of consecutive groups that differ only in noise, Σ_x or init train
 * as one batch of replicas (see `planBatches`); at each log point the
 * loss, sharpness (Hessian trace), λ_max, gradient fluctuation and layer condition numbers are
 * measured on a fixed evaluation set, and linear-teacher deep linear groups get the theory values.
 * Output is tidy rows (experiment, group, seed, step, metric, value; seed = 'theory' for theory).
 */
import { Tape } from '../autodiff/tape.ts';
import { deepLinearCurvature } from '../curvature/deep-linear-exact.ts';
import { populationCurvature } from '../curvature/deep-linear-population.ts';
import { broadenedDensity, spectralDensity } from '../curvature/density.ts';
import { measureCurvature } from '../curvature/measure.ts';
import { HessianOperator, type LossClosure } from '../curvature/operator.ts';
import { ArrayDataset, type LabelledTables } from '../data/arrays.ts';
import { FixedDataset } from '../data/fixed.ts';
import { LinearTeacher } from '../data/linear-teacher.ts';
import { type DigitSet, MNIST_CLASSES, MNIST_PIXELS, NoisyMnist } from '../data/mnist.ts';
import { SoftmaxTargets } from '../data/soft-targets.ts';
import type { DataSource } from '../data/source.ts';
import { TeacherStudent } from '../data/teacher-student.ts';
import { InputError } from '../errors.ts';
import { initParameters } from '../models/init.ts';
import { lossFunction } from '../models/losses.ts';
import { batchedValues, type NamedTensor, replicaTensors } from '../models/weights.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { OptimizerState, PLAIN_SGD } from '../train/optimizer.ts';
import { isLogPoint, logPoints } from '../train/schedule.ts';
import { type DivergenceReport, isDivergedLoss, train } from '../train/trainer.ts';
import {
  type ExperimentConfig,
  layerConditionMetric,
  layerSharpnessMetrics,
  type ResolvedGroupConfig,
  topEigenvalueMetric,
  type ValidatedGroup,
  validateExperiment,
} from './config.ts';
import {
  DENSITY_GRID_POINTS,
  DENSITY_RUNS,
  type MeasurementRoute,
  type MetricDefinition,
  metricDefinitions,
  populationMoments,
} from './definitions.ts';
import { meanAndStandardError, type ResultRow } from './results.ts';
import { conditionNumber, theoryRows } from './theory-rows.ts';

export type { ResultRow };

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

/** Shard `index` of `count`: a contiguous range of the experiment's replicas (see `shardRange`). */
export interface ExperimentShard {
  index: number;
  count: number;
}

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
  divergences: ExperimentOutcome['divergences'];
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
  divergences: (DivergenceReport & { group: string })[];
  /** Each replica's final weights, named `group/seed/parameter` (diverged replicas left out). */
  weights: NamedTensor[];
}

// ---------------------------------------------------------------------------------------------------
// Replicas, batches and shards
//
// Replicas are numbered over the whole experiment, group-major: group g's seed s is replica
// offset(g) + s. Every random stream of a replica (initialisation, minibatches, label noise,
// evaluation set, curvature probes) is keyed by that number, so a replica trains the same whether it
// runs alone, in a shard, or batched with other groups.

/** A group's seeds [firstSeed, firstSeed + seeds) inside a batch. */
export interface BatchMember {
  group: ValidatedGroup;
  groupIndex: number;
  firstSeed: number;
  seeds: number;
}

/** Consecutive groups that differ only in label noise, input covariance or initialisation: one job. */
export interface ReplicaBatch {
  members: BatchMember[];
  /** Global number of the batch's first replica. */
  offset: number;
  replicas: number;
}

/** Global number of each group's seed 0 (and, last, the total replica count). */
export function replicaOffsets(groups: readonly { resolved: { seeds: number } }[]): number[] {
  const offsets = [0];
  for (const g of groups) offsets.push(offsets[offsets.length - 1] + g.resolved.seeds);
  return offsets;
}

/**
 * The replicas [start, end) of shard `index` of `count`: contiguous ranges of near-equal size, so a
 * shard trains as few batches as possible. Bad specs are input errors naming --shard.
 */
export function shardRange(
  config: ExperimentConfig,
  shard: ExperimentShard,
): { start: number; end: number; total: number } {
  const total = replicaOffsets(validateExperiment(config)).at(-1) ?? 0;
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1)
    throw new InputError('--shard', `the shard count must be a positive integer, got ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new InputError('--shard', `the shard index must be an integer in 0…${count - 1}, got ${index}`);
  if (count > total)
    throw new InputError(
      '--shard',
      `${count} shards for ${total} replicas (groups × seeds): use at most ${total} shards`,
    );
  return {
    start: Math.floor((index * total) / count),
    end: Math.floor(((index + 1) * total) / count),
    total,
  };
}

/** What must be equal for groups to share a batch: everything but noise, Σ_x and initialisation. */
function batchKey(group: ValidatedGroup): string {
  const { resolved } = group;
  const { noiseStd, noiseRotation, sigmaEps, sigmaX, ...data } = resolved.data as Record<string, unknown>;
  return JSON.stringify({
    model: resolved.model,
    loss: resolved.loss,
    data,
    train: resolved.train,
    measure: resolved.measure,
    seed: resolved.seed,
    // A fixed training set is drawn once for all replicas, so its noise must be the group's own.
    fixed: resolved.trainingSetSize === undefined ? null : [resolved.trainingSetSize, resolved.index],
    labelNoise: hasLabelNoise(group),
  });
}

/** The batches that train replicas [start, end) (default all), in config order. */
export function planBatches(
  groups: readonly ValidatedGroup[],
  range?: { start: number; end: number },
): ReplicaBatch[] {
  const offsets = replicaOffsets(groups);
  const start = range?.start ?? 0;
  const end = range?.end ?? offsets[groups.length];
  const batches: ReplicaBatch[] = [];
  let lastKey = '';
  groups.forEach((group, groupIndex) => {
    const first = Math.max(start, offsets[groupIndex]);
    const last = Math.min(end, offsets[groupIndex + 1]);
    if (first >= last) return;
    const member = { group, groupIndex, firstSeed: first - offsets[groupIndex], seeds: last - first };
    const key = batchKey(group);
    const open = batches.at(-1);
    if (open && key === lastKey) {
      open.members.push(member);
      open.replicas += member.seeds;
    } else {
      batches.push({ members: [member], offset: first, replicas: member.seeds });
    }
    lastKey = key;
  });
  return batches;
}

/** The log points of a group (updates applied, 0 = the initialisation, the last = the end), ascending. */
export function logSteps(resolved: Pick<ResolvedGroupConfig, 'train' | 'measure'>): number[] {
  return logPoints({ every: resolved.measure.every, steps: resolved.train.steps });
}

/**
 * Whether a checkpoint may name `step` (updates applied, the next to take) as its own: a log point
 * strictly inside the run (none at 0, rebuilt from the seeds, nor at the end, the run is done).
 */
export function isCheckpointStep(
  resolved: Pick<ResolvedGroupConfig, 'train' | 'measure'>,
  step: number,
): boolean {
  const { steps } = resolved.train;
  return (
    Number.isInteger(step) &&
    step > 0 &&
    step < steps &&
    isLogPoint(step, { every: resolved.measure.every, steps })
  );
}

/** Per-replica list of a member property, repeated over each member's seeds. */
function perSlot<T>(batch: ReplicaBatch, value: (member: BatchMember) => T): T[] {
  return batch.members.flatMap((m) => Array.from({ length: m.seeds }, () => value(m)));
}

/** Up to this many parameters the dense Hessian gives trace and λ_max exactly (n HVPs, batched). */
export const DENSE_MAX_PARAMETERS = 64;
/** Parameters up to this count get the exact trace (n HVPs); larger models Hutchinson's estimate. */
export const EXACT_TRACE_MAX_PARAMETERS = 256;
const DEFAULT_PROBES = 16;
const DEFAULT_LANCZOS_STEPS = 30;
/** k of the topEigenvalues metric when the config does not say. */
export const DEFAULT_TOP_EIGENVALUES = 3;

/** k of a group's topEigenvalues metric (its rows lambda1 … lambdak). */
export function topEigenvalueCount(measure: { topEigenvalues?: number }): number {
  return measure.topEigenvalues ?? DEFAULT_TOP_EIGENVALUES;
}
/** Seed offset of the evaluation set, so it never coincides with a training minibatch. */
const EVALUATION_SEED_OFFSET = 0x5eed;

/** The first `evaluationSamples` test digits (all when fewer) with one-hot targets of their labels. */
function heldOutDigits(
  engine: Engine,
  digits: DigitSet,
  resolved: { measure: { evaluationSamples: number } },
): { x: Tensor; y: Tensor; samples: number } {
  const samples = Math.min(resolved.measure.evaluationSamples, digits.labels.length);
  const oneHot = new Float32Array(samples * MNIST_CLASSES);
  for (let i = 0; i < samples; i++) oneHot[i * MNIST_CLASSES + digits.labels[i]] = 1;
  return {
    x: engine.tensor(digits.images.subarray(0, samples * MNIST_PIXELS), [samples, MNIST_PIXELS], {
      label: 'held-out digits',
    }),
    y: engine.tensor(oneHot, [samples, MNIST_CLASSES], { label: 'held-out labels' }),
    samples,
  };
}

/**
 * Accuracy (argmax of the prediction = argmax of the target) and the loss per held-out sample, in
 * float64 from the model's outputs, per replica: mean and standard error (binomial √(p(1−p)/n) for
 * accuracy, s/√n for the loss). `predictions` hold replicas × n × k; `targets` n × k (shared) or
 * replicas × n × k. Loss conventions as in models/losses.ts: MSE ½‖f − y‖², cross-entropy
 * logsumexp(z) − Σ t z.
 */
export function heldOutMetrics(
  predictions: ArrayLike<number>,
  targets: ArrayLike<number>,
  shape: { replicas: number; samples: number; outputs: number },
  loss: 'mse' | 'cross-entropy',
): { accuracy: number; accuracyStandardError: number; loss: number; lossStandardError: number }[] {
  const { replicas, samples: n, outputs: k } = shape;
  const targetStride = targets.length === n * k ? 0 : n * k;
  return Array.from({ length: replicas }, (_, r) => {
    let correct = 0;
    const losses: number[] = [];
    for (let i = 0; i < n; i++) {
      const f = r * n * k + i * k;
      const t = r * targetStride + i * k;
      let best = 0;
      let target = 0;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < k; j++) {
        if (predictions[f + j] > predictions[f + best]) best = j;
        if (targets[t + j] > targets[t + target]) target = j;
        max = Math.max(max, predictions[f + j]);
      }
      if (best === target) correct++;
      let value = 0;
      if (loss === 'mse')
        for (let j = 0; j < k; j++) value += 0.5 * (predictions[f + j] - targets[t + j]) ** 2;
      else {
        let sum = 0;
        for (let j = 0; j < k; j++) sum += Math.exp(predictions[f + j] - max);
        value = max + Math.log(sum);
        for (let j = 0; j < k; j++) value -= targets[t + j] * predictions[f + j];
      }
      losses.push(value);
    }
    const accuracy = correct / n;
    const { mean, standardError } = meanAndStandardError(losses);
    return {
      accuracy,
      accuracyStandardError: Math.sqrt((accuracy * (1 - accuracy)) / n),
      loss: mean,
      lossStandardError: standardError,
    };
  });
}

function buildSource(
  engine: Engine,
  batch: ReplicaBatch,
  hooks: ExperimentHooks,
  split: 'train' | 'test',
): DataSource {
  const { resolved } = batch.members[0].group;
  const data = resolved.data;
  const sigmaEps = perSlot(batch, (m) => m.group.sigmaEps);
  const sigmaX = perSlot(batch, (m) => m.group.sigmaX ?? []);
  const inputCovariance = sigmaX.some((s) => s.length === 0) ? undefined : sigmaX;
  switch (data.kind) {
    case 'linear-teacher':
      return new LinearTeacher(engine, { V: data.V, sigmaX: inputCovariance, sigmaEps });
    case 'teacher-student':
      return new TeacherStudent(engine, {
        teacher: data.teacher,
        teacherSeed: data.teacherSeed,
        sigmaX: inputCovariance,
        sigmaEps,
      });
    case 'mnist': {
      if (!hooks.mnist) throw new Error('this host provides no MNIST digits (hooks.mnist)');
      return new NoisyMnist(engine, hooks.mnist()[split], sigmaEps);
    }
    case 'file': {
      if (!hooks.dataFiles) throw new Error('this host reads no data files (hooks.dataFiles)');
      const tables = hooks.dataFiles(batch.members[0].groupIndex);
      // Label noise is all or nothing within a batch (see batchKey).
      return new ArrayDataset(engine, tables.x, tables.y, {
        sigmaEps: hasLabelNoise(batch.members[0].group) ? sigmaEps : undefined,
        xField: tables.xField,
        yField: tables.yField,
      });
    }
  }
}

/** File data may come without label noise (Σ_ε empty); every other kind has it. */
function hasLabelNoise(group: ValidatedGroup): boolean {
  return group.sigmaEps.length > 0;
}

/** The batch's data source; cross-entropy on regression data trains against softmax(noisy label). */
function buildData(
  engine: Engine,
  batch: ReplicaBatch,
  hooks: ExperimentHooks,
  split: 'train' | 'test',
): DataSource {
  const source = buildSource(engine, batch, hooks, split);
  const { resolved } = batch.members[0].group;
  // File data without noise is taken as given (cross-entropy targets: rows of probabilities).
  const regression =
    resolved.data.kind !== 'mnist' &&
    (resolved.data.kind !== 'file' || hasLabelNoise(batch.members[0].group));
  return resolved.loss === 'cross-entropy' && regression ? new SoftmaxTargets(engine, source) : source;
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

/** `group/seed` of each replica of the batch: the prefix of its tensors in weights.safetensors. */
function replicaNames(batch: ReplicaBatch): string[] {
  return batch.members.flatMap((m) =>
    Array.from({ length: m.seeds }, (_, s) => `${m.group.resolved.group}/${m.firstSeed + s}`),
  );
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
  const groups = validateExperiment(config);
  for (const batch of planBatches(groups, shard ? shardRange(config, shard) : undefined))
    initialWeightValues(batch, tensors, field);
}

/**
 * How a batch's curvature is measured: the population loss exactly (deep linear, MSE, linear teacher),
 * the evaluation set's moments in float64 (other deep linear MSE models up to the dense limit: beyond
 * it the n × n eigen-solve per replica costs more than the GPU's trace and Lanczos), or GPU HVPs.
 */
function measurementRoute(batch: ReplicaBatch): MeasurementRoute {
  const { resolved, model } = batch.members[0].group;
  const parameters = model.parameters.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
  const moments =
    resolved.model.kind === 'deep-linear' && resolved.loss === 'mse' && parameters <= DENSE_MAX_PARAMETERS;
  return {
    kind: populationMoments(batch.members) ? 'population' : moments ? 'sample-moments' : 'sample-gpu',
    parameters,
    denseMax: DENSE_MAX_PARAMETERS,
    exactTraceMax: EXACT_TRACE_MAX_PARAMETERS,
    probes: resolved.measure.hutchinsonProbes ?? DEFAULT_PROBES,
    lanczosSteps: Math.min(parameters, resolved.measure.lanczosIterations ?? DEFAULT_LANCZOS_STEPS),
  };
}

function batchDefinitions(batches: readonly ReplicaBatch[]): MetricDefinition[] {
  return batches.flatMap((batch) =>
    batch.members.flatMap((m) => metricDefinitions(m.group, measurementRoute(batch))),
  );
}

/** What each (group, metric) of a run (or of one shard) is, before it runs: pure CPU. */
export function experimentDefinitions(config: ExperimentConfig, shard?: ExperimentShard): MetricDefinition[] {
  return batchDefinitions(
    planBatches(validateExperiment(config), shard ? shardRange(config, shard) : undefined),
  );
}

function batchLabel(batch: ReplicaBatch): string {
  const names = batch.members.map((m) => m.group.resolved.group);
  return names.length === 1 ? names[0] : `${names[0]} … ${names[names.length - 1]}`;
}

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
  const resume = hooks.resume;
  if (
    resume &&
    (resume.version !== 2 ||
      resume.experiment !== config.name ||
      JSON.stringify(resume.shard ?? null) !== JSON.stringify(shard) ||
      !(resume.batchIndex < batches.length))
  ) {
    const where = resume.shard ? `, shard ${resume.shard.index}/${resume.shard.count}` : '';
    throw new InputError(
      '--resume',
      `the checkpoint belongs to another run (experiment '${resume.experiment}'${where}, batch ${resume.batchIndex}, format ${resume.version}); start afresh without --resume`,
    );
  }
  const rows: ResultRow[] = resume ? [...resume.rows] : [];
  const definitions = batchDefinitions(batches);
  const divergences: ExperimentOutcome['divergences'] = resume ? [...resume.divergences] : [];
  const finalWeights: NamedTensor[] = (resume?.weights ?? []).map((t) => ({
    ...t,
    values: Float32Array.from(t.values),
  }));
  const stepsOf = (batch: ReplicaBatch) => batch.members[0].group.resolved.train.steps;
  const total = batches.reduce((sum, b) => sum + stepsOf(b), 0);
  let done = resume
    ? batches.slice(0, resume.batchIndex).reduce((sum, b) => sum + stepsOf(b), 0) + resume.step
    : 0;
  for (const [batchIndex, batch] of batches.entries()) {
    if (resume && batchIndex < resume.batchIndex) continue;
    const startStep = resume && batchIndex === resume.batchIndex ? resume.step : 0;
    // Every member shares these (see batchKey); only noise, Σ_x and init differ.
    const { resolved, model } = batch.members[0].group;
    const replicas = batch.replicas;
    // Replica r of the batch is seed `seeds[r]` of group `names[r]`.
    const names = perSlot(batch, (m) => m.group.resolved.group);
    const seeds = batch.members.flatMap((m) => Array.from({ length: m.seeds }, (_, s) => m.firstSeed + s));
    // Replicas frozen as diverged: no rows from the log point where they diverged on (see `freeze`).
    // Resuming mid-batch, those the checkpoint recorded stay frozen.
    const diverged = new Set<number>();
    if (startStep > 0)
      names.forEach((name, r) => {
        if (divergences.some((d) => d.group === name && d.replica === seeds[r])) diverged.add(r);
      });
    const add = (r: number, step: number, metric: string, value: number, eigenvalue?: number) => {
      if (diverged.has(r)) return;
      rows.push({
        experiment: config.name,
        group: names[r],
        seed: seeds[r],
        step,
        metric,
        value,
        ...(eigenvalue !== undefined && { eigenvalue }),
      });
    };
    const source = buildData(engine, batch, hooks, 'train');
    const data = resolved.trainingSetSize
      ? FixedDataset.fromSource(engine, source, resolved.trainingSetSize, resolved.seed)
      : source;
    const evaluationSource =
      resolved.data.kind === 'mnist' ? buildData(engine, batch, hooks, 'test') : source;
    const evaluation = evaluationSource.sample({
      // Wraps within uint32, like every other stream key (any uint32 seed is valid).
      seed: (resolved.seed + EVALUATION_SEED_OFFSET) >>> 0,
      step: 0,
      rows: resolved.measure.evaluationSamples,
      replicas,
      replicaOffset: batch.offset,
    });
    // accuracy / heldOutLoss: MNIST's test digits in order with their clean labels, else the evaluation set.
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
    if (startStep > 0 && resume) {
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
    const optimizerState = new OptimizerState(engine, resolved.train.optimizer ?? PLAIN_SGD, params);
    // A checkpoint without the momentum/moment tensors cannot continue this optimizer exactly.
    if (startStep > 0 && resume && optimizerState.tensors.length > 0)
      optimizerState.write(resume.optimizerState ?? []);
    const lossOf = lossFunction(resolved.loss);
    const closure: LossClosure = (tape, vars, d) => lossOf(tape, model.forward(tape, vars, d.x), d.y);
    const operator = HessianOperator.create(engine, {
      params,
      loss: closure,
      evaluation: { data: { x: evaluation.x, y: evaluation.y } },
    });
    const metrics = new Set(resolved.measure.metrics);
    const modelSpec = resolved.model;
    const route = measurementRoute(batch);
    const population = route.kind === 'population' ? populationMoments(batch.members) : undefined;
    const widths =
      modelSpec.kind === 'deep-linear' ? [modelSpec.inputDim, ...modelSpec.hidden, modelSpec.outputDim] : [];
    let evaluationValues: { x: ArrayLike<number>; y: ArrayLike<number> } | undefined;
    const topCount = metrics.has('topEigenvalues') ? topEigenvalueCount(resolved.measure) : 0;
    /**
     * Marks replicas whose loss or weights left the finite range (or whose loss passed the divergence
     * bound) as diverged, records each once, and returns this log point's weights with every diverged
     * replica's zeroed, also on the GPU: curvature runs all replicas in lockstep, and a non-finite
     * weight would poison the shared eigen-solves. A frozen replica keeps training from zero (possibly
     * diverging again) but its values are never read.
     */
    const freeze = async (step: number, loss: Float32Array) => {
      const values = await Promise.all(params.map((p) => p.read()));
      for (let r = 0; r < replicas; r++) {
        if (diverged.has(r)) continue;
        const weightsFinite = params.every((p, i) =>
          values[i].subarray(r * p.size, (r + 1) * p.size).every((v) => Number.isFinite(v)),
        );
        if (!isDivergedLoss(loss[r]) && weightsFinite) continue;
        diverged.add(r);
        divergences.push({ group: names[r], replica: seeds[r], step, loss: loss[r] });
      }
      if (diverged.size === 0) return values;
      params.forEach((p, i) => {
        for (const r of diverged) values[i].fill(0, r * p.size, (r + 1) * p.size);
        engine.write(p, values[i]);
      });
      return values;
    };
    const measure = async (step: number, loss: Float32Array) => {
      // The closed form, layer condition numbers and the checkpoint all need this log point's
      // weights: read back once, diverged replicas zeroed.
      const frozen = await freeze(step, loss);
      const weights = async () => frozen;
      if (metrics.has('loss'))
        loss.forEach((v, r) => {
          add(r, step, 'loss', v);
        });
      const curvature = [...metrics].some(
        (m) => !['loss', 'layerCondition', 'accuracy', 'heldOutLoss'].includes(m),
      );
      // The metrics beyond T, λ_max and S (topEigenvalues, gradientNorm, layerSharpness) of replica r.
      const addMore = (
        r: number,
        more: { top?: number[]; gradientNorm?: number; layers?: { trace: number; lambdaMax: number }[] },
      ) => {
        if (metrics.has('topEigenvalues'))
          for (let k = 0; k < topCount; k++)
            add(r, step, topEigenvalueMetric(k), more.top?.[k] ?? Number.NaN);
        if (metrics.has('gradientNorm') && more.gradientNorm !== undefined)
          add(r, step, 'gradientNorm', more.gradientNorm);
        more.layers?.forEach((block, l) => {
          if (!metrics.has('layerSharpness')) return;
          const names = layerSharpnessMetrics(model.parameters[l].name);
          add(r, step, names.trace, block.trace);
          add(r, step, names.lambdaMax, block.lambdaMax);
        });
      };
      // Every eigenvalue of each replica's Hessian where a route computes them exactly (for `density`).
      let spectrum: number[][] | undefined;
      if (curvature && population) {
        // Deep linear + MSE on a linear teacher: the population loss's Hessian and S, exactly.
        const exact = populationCurvature({
          widths,
          weights: await weights(),
          replicas,
          ...population,
          top: Math.max(1, topCount),
        });
        spectrum = exact.eigenvalues;
        for (let r = 0; r < replicas; r++) {
          if (metrics.has('sharpness')) add(r, step, 'sharpness', exact.trace[r]);
          if (metrics.has('lambdaMax')) add(r, step, 'lambdaMax', exact.top[r][0]);
          if (metrics.has('fluctuation')) add(r, step, 'fluctuation', exact.fluctuation[r]);
          addMore(r, { top: exact.top[r], gradientNorm: exact.gradientNorm[r], layers: exact.layers[r] });
        }
      } else if (curvature && route.kind === 'sample-moments') {
        // Other deep linear MSE models: the exact float64 Hessian from the evaluation set's moments (n
        // small matrix chains per replica on the CPU), cheaper and more accurate than n f32 HVPs.
        evaluationValues ??= { x: await evaluation.x.read(), y: await evaluation.y.read() };
        const exact = deepLinearCurvature({
          widths,
          weights: await weights(),
          ...evaluationValues,
          samples: resolved.measure.evaluationSamples,
          replicas,
        });
        spectrum = exact.eigenvalues;
        for (let r = 0; r < replicas; r++) {
          if (metrics.has('sharpness')) add(r, step, 'sharpness', exact.trace[r]);
          if (metrics.has('lambdaMax')) add(r, step, 'lambdaMax', exact.eigenvalues[r].at(-1) ?? Number.NaN);
          if (metrics.has('fluctuation')) add(r, step, 'fluctuation', exact.fluctuation[r]);
          addMore(r, {
            top: exact.eigenvalues[r].slice(-topCount).reverse(),
            gradientNorm: exact.gradientNorm[r],
            layers: exact.layers[r],
          });
        }
      } else if (curvature) {
        // One round for the log point: dense Hessian (exact trace and λ_max) for small models, exact
        // or Hutchinson trace and Lanczos beyond; probe streams keyed by the global replica number.
        const measured = await measureCurvature(operator, {
          trace: metrics.has('sharpness'),
          lambdaMax: metrics.has('lambdaMax'),
          fluctuation: metrics.has('fluctuation'),
          top: metrics.has('topEigenvalues') ? topCount : 0,
          gradientNorm: metrics.has('gradientNorm'),
          denseMaxParameters: DENSE_MAX_PARAMETERS,
          exactTraceMaxParameters: EXACT_TRACE_MAX_PARAMETERS,
          probes: route.probes,
          lanczosSteps: route.lanczosSteps,
          seed: step,
          replicaOffset: batch.offset,
        });
        for (const [metric, values] of [
          ['sharpness', measured.trace],
          ['lambdaMax', measured.lambdaMax],
          ['fluctuation', measured.fluctuation],
          // The estimates' own sampling errors (Hutchinson's probes; the evaluation set's samples).
          ['sharpnessStandardError', measured.standardError?.trace],
          ['fluctuationStandardError', measured.standardError?.fluctuation],
        ] as const) {
          values?.forEach((v, r) => {
            add(r, step, metric, v);
          });
        }
        for (let r = 0; r < replicas; r++)
          addMore(r, { top: measured.top?.[r], gradientNorm: measured.gradientNorm?.[r] });
      }
      if (metrics.has('density') && step === resolved.train.steps) {
        // At the end of training only: the exact spectrum broadened, or SLQ on the evaluation set.
        const curves = spectrum
          ? spectrum.map((values) =>
              broadenedDensity(
                values,
                values.map(() => 1),
                { gridPoints: DENSITY_GRID_POINTS },
              ),
            )
          : await spectralDensity(operator, {
              runs: DENSITY_RUNS,
              steps: route.lanczosSteps,
              gridPoints: DENSITY_GRID_POINTS,
              seed: step,
              replicaOffset: batch.offset,
            }).then((result) => result.grid.map((grid, r) => ({ grid, density: result.density[r] })));
        curves.forEach(({ grid, density }, r) => {
          grid.forEach((eigenvalue, i) => {
            add(r, step, 'density', density[i], eigenvalue);
          });
        });
      }
      if (metrics.has('accuracy') || metrics.has('heldOutLoss')) {
        const tape = new Tape(engine);
        let predictions: Float32Array;
        try {
          const output = tape.keep(
            model.forward(
              tape,
              params.map((p) => tape.constant(p)),
              tape.constant(heldOut.x),
            ),
          );
          predictions = (await output.read()) as Float32Array;
          output.dispose();
        } finally {
          tape.dispose();
        }
        const targets = (await heldOut.y.read()) as Float32Array;
        const outputs = model.outputDim;
        heldOutMetrics(
          predictions,
          targets,
          { replicas, samples: heldOut.samples, outputs },
          resolved.loss,
        ).forEach((m, r) => {
          if (metrics.has('accuracy')) {
            add(r, step, 'accuracy', m.accuracy);
            add(r, step, 'accuracyStandardError', m.accuracyStandardError);
          }
          if (metrics.has('heldOutLoss')) {
            add(r, step, 'heldOutLoss', m.loss);
            add(r, step, 'heldOutLossStandardError', m.lossStandardError);
          }
        });
      }
      if (metrics.has('layerCondition')) {
        for (const [i, spec] of model.parameters.entries()) {
          if (spec.role !== 'weight') continue;
          const values = (await weights())[i];
          const size = spec.shape[0] * spec.shape[1];
          for (let r = 0; r < replicas; r++) {
            add(
              r,
              step,
              layerConditionMetric(spec.name),
              conditionNumber(
                Array.from({ length: spec.shape[0] }, (_, row) =>
                  Array.from(
                    values.subarray(r * size + row * spec.shape[1], r * size + (row + 1) * spec.shape[1]),
                  ),
                ),
              ),
            );
          }
        }
      }
      done += step - lastStep;
      lastStep = step;
      hooks.onProgress?.({
        group: batchLabel(batch),
        groupIndex: batchIndex,
        groups: batches.length,
        step,
        steps: resolved.train.steps,
        done,
        total,
      });
      // Not at 0 (the initial state is rebuilt from the seeds) nor at the end (the run is done).
      if (hooks.checkpoint && isCheckpointStep(resolved, step)) {
        const values = await weights();
        await hooks.checkpoint({
          version: 2,
          experiment: config.name,
          shard,
          batchIndex,
          step,
          params: values.map((v) => Array.from(v)),
          ...(optimizerState.tensors.length > 0 && { optimizerState: await optimizerState.read() }),
          rows: [...rows],
          divergences: [...divergences],
          weights: finalWeights.map((t) => ({ ...t, values: Array.from(t.values) })),
        });
      }
      if (hooks.logPoint) await hooks.logPoint({ batchIndex, step, rows, params: await weights() });
    };
    let lastStep = startStep;
    try {
      await train(engine, {
        model,
        params,
        data,
        loss: resolved.loss,
        learningRate: resolved.train.learningRate,
        optimizer: resolved.train.optimizer,
        schedule: resolved.train.schedule,
        optimizerState,
        totalSteps: resolved.train.steps,
        batchSize: resolved.train.batchSize,
        steps: resolved.train.steps - startStep,
        startStep,
        seed: resolved.seed,
        replicaOffset: batch.offset,
        switchToGdAt: resolved.train.switchToGdAt,
        gdBatchSize: resolved.train.gdBatchSize,
        logEvery: resolved.measure.every,
        onLog: measure,
      });
      // Divergences were recorded at their log points by `freeze` (the trainer's reports use the same
      // bound, see isDivergedLoss): nothing to add here. Frozen replicas have no final weights.
      const finals = await Promise.all(params.map((p) => p.read()));
      replicaTensors(model, finals, replicaNames(batch)).forEach((tensor, k) => {
        if (!diverged.has(Math.floor(k / params.length))) finalWeights.push(tensor);
      });
      // A flat dashed line across the run: the values SGD converges to.
      for (const m of batch.members) rows.push(...theoryRows(m.group, [0, resolved.train.steps]));
    } finally {
      operator.dispose();
      optimizerState.dispose();
      for (const t of [...params, evaluation.x, evaluation.y] as Tensor[]) t.dispose();
      if (heldOutMnist) for (const t of [heldOutMnist.x, heldOutMnist.y]) t.dispose();
      if (data !== source) data.dispose();
      if (evaluationSource !== source) evaluationSource.dispose();
      source.dispose();
    }
  }
  if (!shard) rows.push(...relativeSharpnessRows(config, rows));
  return { rows, divergences, weights: finalWeights, definitions };
}

/**
 * relativeSharpness = T(group) / T(reference group), seed by seed and step by step, for groups that
 * name a reference (the paper's Fig. 3: anisotropic over isotropic noise).
 */
export function relativeSharpnessRows(config: ExperimentConfig, rows: readonly ResultRow[]): ResultRow[] {
  const key = (group: string, seed: number | 'theory', step: number) => `${group}|${seed}|${step}`;
  const sharpness = new Map<string, number>();
  for (const row of rows)
    if (row.metric === 'sharpness') sharpness.set(key(row.group, row.seed, row.step), row.value);
  const out: ResultRow[] = [];
  for (const group of config.groups) {
    if (!group.reference) continue;
    for (const row of rows) {
      if (row.group !== group.name || row.metric !== 'sharpness') continue;
      const reference = sharpness.get(key(group.reference, row.seed, row.step));
      if (reference === undefined) continue;
      out.push({ ...row, metric: 'relativeSharpness', value: row.value / reference });
    }
  }
  return out;
}
