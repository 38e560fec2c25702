/**
 * The deeper CPU-side checks that must pass before any GPU work: each group's model built and its data
 * checked against it (V, Σ_x, Σ_ε, the teacher network), and its largest buffers against a device's
 * limits. Errors name the path as written.
 */
import { InputError } from '../../errors.ts';
import { buildModel, type Model } from '../../models/model.ts';
import { checkCovariance, parseMatrix } from '../../theory/validate.ts';
import { overrideAttribution } from './merge.ts';
import { type Attribute, inputError, parsePath, plainPath } from './messages.ts';
import { applyQuick, parseExperimentConfig, resolveGroup } from './resolve.ts';
import type { ExperimentConfig, ResolvedGroupConfig } from './schema.ts';

export const MNIST_INPUT_FEATURES = 784;
export const MNIST_OUTPUT_CLASSES = 10;

/** A group's model and data, checked: the validated covariances and the built (CPU-side) model. */
export interface ValidatedGroup {
  resolved: ResolvedGroupConfig;
  model: Model;
  /** Σ_x of one input row (identity when not given), symmetrised; undefined for MNIST and file data. */
  sigmaX?: number[][];
  /** Σ_ε, symmetrised and positive definite; empty (0×0) for file data without label noise. */
  sigmaEps: number[][];
}

/**
 * Builds every group's model with `buildModel` and checks its data against it: V, Σ_x and Σ_ε shapes,
 * symmetry and positive definiteness (`checkCovariance`), the teacher network, noiseRotation
 * orthogonal, cross-entropy with at least two outputs. Errors name the path as written (inside
 * `groups[i].overrides` when the group set it). Pure CPU: call it before any GPU work.
 */
export function validateExperiment(config: ExperimentConfig): ValidatedGroup[] {
  return validateWith(config, plainPath);
}

/**
 * The buffer limits of a device. Without an adapter at hand, `ANY_DEVICE_LIMITS`: kernels index f32
 * elements with u32, so no device can hold a tensor of 2³² elements or more.
 */
export interface BufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export const ANY_DEVICE_LIMITS: BufferLimits = {
  maxStorageBufferBindingSize: 4 * (2 ** 32 - 1),
  maxBufferSize: 4 * (2 ** 32 - 1),
};

/** One tensor a group's run allocates, sized from its config, and the field that sets its size. */
export interface BufferNeed {
  field: string;
  /** How the size comes about, in words (e.g. `seeds 64 × evaluationSamples 10⁶ × 2 inputs`). */
  what: string;
  bytes: number;
}

/**
 * The largest tensors a group's run allocates (lower bounds: parameters, evaluation set, minibatches,
 * layer activations and attention scores, all replicas in one buffer). Pure CPU.
 */
export function bufferNeeds(group: ValidatedGroup, replicas = group.resolved.seeds): BufferNeed[] {
  const { resolved, model } = group;
  const widths = [model.inputFeatures, model.outputDim, ...model.parameters.map((p) => p.shape[0])];
  const widest = Math.max(...widths);
  const spec = resolved.model;
  // Attention scores per row (heads × T × T) dominate a Transformer's activations.
  const perRow =
    spec.kind === 'transformer' ? Math.max(widest, spec.heads * spec.sequenceLength ** 2) : widest;
  const needs: BufferNeed[] = [];
  const largestParameter = Math.max(...model.parameters.map((p) => p.shape.reduce((a, b) => a * b, 1)));
  needs.push({
    field: 'model',
    what: `${replicas} replicas × ${largestParameter} weights of the largest layer`,
    bytes: 4 * replicas * largestParameter,
  });
  const rows: [string, number | undefined][] = [
    ['measure.evaluationSamples', resolved.measure.evaluationSamples],
    ['train.batchSize', resolved.train.batchSize],
    ['train.gdBatchSize', resolved.train.gdBatchSize],
  ];
  for (const [field, count] of rows) {
    if (count === undefined) continue;
    needs.push({
      field,
      what: `${replicas} replicas × ${count} rows × ${perRow} values per row`,
      bytes: 4 * replicas * count * perRow,
    });
  }
  if (resolved.trainingSetSize !== undefined)
    needs.push({
      field: 'trainingSetSize',
      what: `${resolved.trainingSetSize} rows × ${model.inputFeatures} features`,
      bytes: 4 * resolved.trainingSetSize * model.inputFeatures,
    });
  return needs;
}

function gibibytes(bytes: number): string {
  return `${Number((bytes / 2 ** 30).toPrecision(3))} GiB`;
}

function checkBuffers(group: ValidatedGroup, limits: BufferLimits, replicas?: number): void {
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const which =
    limits.maxStorageBufferBindingSize <= limits.maxBufferSize
      ? 'maxStorageBufferBindingSize'
      : 'maxBufferSize';
  for (const need of bufferNeeds(group, replicas)) {
    if (need.bytes <= limit) continue;
    const device =
      limits === ANY_DEVICE_LIMITS ? 'any WebGPU device (2³² f32 elements)' : `this device's ${which}`;
    throw new InputError(
      need.field,
      `needs a ${gibibytes(need.bytes)} buffer (${need.what}), more than ${device} of ${gibibytes(limit)}; make it smaller, or use fewer seeds or more shards (--shard)`,
    );
  }
}

/**
 * Checks every group's largest buffers against a device's limits (after the adapter is known, before
 * any GPU work); errors name the field as written, like `validateExperiment`. `replicas[g]`: how many
 * replicas share group g's buffers (groups may train batched together, a shard trains fewer).
 */
export function checkDeviceLimits(config: ExperimentConfig, limits: BufferLimits, replicas?: number[]): void {
  validateWith(config, plainPath, limits, replicas);
}

function validateWith(
  config: ExperimentConfig,
  outer: Attribute,
  limits: BufferLimits = ANY_DEVICE_LIMITS,
  replicas?: number[],
): ValidatedGroup[] {
  return config.groups.map((group, index) => {
    const resolved = resolveGroup(config, index);
    const attribute = overrideAttribution(
      group.overrides,
      ['groups', index, 'overrides'],
      outer,
      `in group '${group.name}'`,
    );
    try {
      const validated = validateGroup(resolved);
      if (replicas?.[index] !== 0) checkBuffers(validated, limits, replicas?.[index]);
      return validated;
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      const message = error.message.startsWith(`${error.field}: `)
        ? error.message.slice(error.field.length + 2)
        : error.message;
      throw inputError(attribute(parsePath(error.field)), message);
    }
  });
}

function validateGroup(resolved: ResolvedGroupConfig): ValidatedGroup {
  const model = buildModel(resolved.model, 'model');
  const { data } = resolved;
  let inputs: number;
  let outputs: number;
  let source: string;
  if (data.kind === 'linear-teacher') {
    const V = parseMatrix(data.V, 'data.V');
    outputs = V.length;
    inputs = V[0].length;
    source = `the teacher V (${outputs}×${inputs})`;
  } else if (data.kind === 'teacher-student') {
    const teacher = buildModel(data.teacher, 'data.teacher');
    inputs = teacher.inputFeatures;
    outputs = teacher.outputDim;
    source = `the teacher network (${inputs} input features, ${outputs} outputs)`;
  } else if (data.kind === 'mnist') {
    inputs = MNIST_INPUT_FEATURES;
    outputs = MNIST_OUTPUT_CLASSES;
    source = `MNIST (${inputs} pixels, ${outputs} classes)`;
  } else {
    // The files' widths are checked against the model when the host reads them (before GPU work).
    inputs = model.inputFeatures;
    outputs = model.outputDim;
    source = `the data files (${outputs} target columns)`;
  }
  if (model.inputFeatures !== inputs) {
    const what =
      model.inputFeatures === resolved.model.inputDim
        ? `${model.inputFeatures}`
        : `${model.inputFeatures} (= sequenceLength × inputDim)`;
    throw new InputError(
      'model.inputDim',
      `the model reads ${what} features per row but ${source} gives ${inputs}`,
    );
  }
  if (model.outputDim !== outputs)
    throw new InputError(
      'model.outputDim',
      `the model gives ${model.outputDim} outputs but ${source} has ${outputs}`,
    );
  if (resolved.loss === 'cross-entropy' && outputs < 2)
    throw new InputError(
      'loss',
      'cross-entropy needs at least 2 outputs (a softmax over one class is constant)',
    );

  const { evaluationChunks, evaluationSamples } = resolved.measure;
  if (evaluationChunks !== undefined && evaluationChunks > evaluationSamples)
    throw new InputError(
      'measure.evaluationChunks',
      `is ${evaluationChunks}, more than the ${evaluationSamples} evaluation samples (measure.evaluationSamples) it splits`,
    );

  let sigmaX: number[][] | undefined;
  if ('sigmaX' in data && data.sigmaX !== undefined) {
    sigmaX = checkCovariance(
      parseMatrix(data.sigmaX, 'data.sigmaX'),
      inputs,
      'data.sigmaX',
      `(Σ_x of ${source})`,
    );
  } else if (data.kind === 'linear-teacher' || data.kind === 'teacher-student') {
    sigmaX = Array.from({ length: inputs }, (_, i) =>
      Array.from({ length: inputs }, (_, j) => (i === j ? 1 : 0)),
    );
  }

  let sigmaEps: number[][];
  if (data.kind === 'file' && data.sigmaEps === undefined && data.noiseStd === undefined) {
    sigmaEps = [];
  } else if (data.sigmaEps !== undefined) {
    sigmaEps = checkCovariance(
      parseMatrix(data.sigmaEps, 'data.sigmaEps'),
      outputs,
      'data.sigmaEps',
      `(Σ_ε of ${source})`,
    );
  } else {
    const std = data.noiseStd ?? [];
    if (std.length !== outputs)
      throw new InputError(
        'data.noiseStd',
        `must have ${outputs} entries (one per output of ${source}), got ${std.length}`,
      );
    if (data.noiseRotation !== undefined) {
      const R = parseMatrix(data.noiseRotation, 'data.noiseRotation');
      if (R.length !== outputs || R[0].length !== outputs)
        throw new InputError(
          'data.noiseRotation',
          `must be ${outputs}×${outputs}, got ${R.length}×${R[0].length}`,
        );
      checkOrthogonal(R, 'data.noiseRotation');
    }
    sigmaEps = checkCovariance(resolved.noiseCovariance, outputs, 'data.noiseStd', `(Σ_ε of ${source})`);
  }
  return { resolved, model, sigmaX, sigmaEps };
}

function checkOrthogonal(R: number[][], field: string): void {
  const n = R.length;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += R[k][i] * R[k][j];
      worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
    }
  }
  if (worst > 1e-6)
    throw new InputError(
      field,
      `must be orthogonal (RᵀR = I), but RᵀR differs from I by up to ${worst.toPrecision(3)}`,
    );
}

/**
 * Parse, run every CPU-side check on the full and the quick form (errors in the quick form point into
 * `quick` where it wrote the value), and return the form asked for: the one call a runner needs
 * before GPU work.
 */
export function prepareExperiment(raw: unknown, options: { quick?: boolean } = {}): ExperimentConfig {
  const parsed = parseExperimentConfig(raw);
  validateExperiment(parsed);
  const quick = applyQuick(parsed);
  if (parsed.quick !== undefined)
    validateWith(quick, overrideAttribution(parsed.quick, ['quick'], plainPath, 'with quick applied'));
  return options.quick ? quick : parsed;
}
