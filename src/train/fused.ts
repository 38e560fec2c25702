/**
 * The fused small-model path: which models and data the fused SGD kernels (src/kernels/fused.ts)
 * can train, and training them there. Deep linear networks on a linear teacher, one-hidden-layer MLPs
 * on an MLP teacher, Elman RNNs on an RNN teacher and one-block Transformers on a Transformer teacher,
 * under MSE or cross-entropy against softmax targets; same random streams, loss and update as the
 * general path; results agree up to float summation order.
 */
import { LinearTeacher } from '../data/linear-teacher.ts';
import { SoftmaxTargets } from '../data/soft-targets.ts';
import type { DataSource } from '../data/source.ts';
import { TeacherStudent } from '../data/teacher-student.ts';
import { InputError } from '../errors.ts';
import {
  FUSED_MAX_DEPTH,
  FUSED_MAX_WIDTH,
  type FusedNetwork,
  type FusedRun,
  fusedSgdSteps,
  fusedStepsPerDispatch,
  isNarrow,
  NARROW_MAX_DEPTH,
  NARROW_MAX_WIDTH,
  RNN_AUTO_MAX_WORK,
  RNN_MAX,
  rnnStepWork,
  TEACHER_WORKGROUP_BYTES,
  TRANSFORMER_AUTO_MAX_WORK,
  TRANSFORMER_AUTO_MIN_REPLICAS,
  TRANSFORMER_MAX,
  teacherCapacity,
  transformerStepWork,
} from '../kernels/fused.ts';
import type { LossKind } from '../models/losses.ts';
import { layerWidths, type Model, type ModelSpec } from '../models/model.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

export const FUSED_REQUIREMENTS =
  `a deep linear model (widths ≤ ${NARROW_MAX_WIDTH} and depth ≤ ${NARROW_MAX_DEPTH}, or widths ≤ ${FUSED_MAX_WIDTH} and depth ≤ ${FUSED_MAX_DEPTH}) ` +
  `on linear-teacher data, or a one-hidden-layer MLP (widths ≤ ${NARROW_MAX_WIDTH}) on one-hidden-layer MLP teacher–student data ` +
  `whose teacher fits ${TEACHER_WORKGROUP_BYTES / 1024} KiB of workgroup memory (up to ${teacherCapacity(2, 2)} hidden units for 2 inputs and 2 outputs), ` +
  `or an RNN (hidden ≤ ${RNN_MAX.hidden}, inputs and outputs ≤ ${RNN_MAX.width}, sequence length ≤ ${RNN_MAX.sequence} with ` +
  `sequence length × inputs ≤ ${RNN_MAX.features}) on RNN teacher–student data (teacher hidden ≤ ${RNN_MAX.teacherHidden}), ` +
  `or a Transformer (inputs, outputs, model width and MLP ≤ ${TRANSFORMER_MAX.width}, sequence length ≤ ${TRANSFORMER_MAX.sequence}) ` +
  `on teacher–student data of a Transformer of the same shape (its MLP ≤ ${TRANSFORMER_MAX.teacherHidden}); ` +
  `each with MSE loss or cross-entropy against softmax targets (the teacher's noisy labels through a softmax)`;

/**
 * The network a fused kernel would train for this model on this data under this loss, or undefined
 * when none can.
 */
function fusedNetwork(model: Model, data: DataSource, loss: LossKind): FusedNetwork | undefined {
  // A model of the user's own (no built-in spec) always trains on the general path.
  const spec = model.spec as Model['spec'] | undefined;
  if (!spec) return undefined;
  if (spec.kind === 'rnn' || spec.kind === 'transformer') return sequenceNetworkOf(spec, data, loss);
  if (spec.kind === 'mlp') return mlpNetwork(spec, data, loss);
  const source = regressionDataOf(data, loss);
  if (spec.kind === 'deep-linear' && source instanceof LinearTeacher) {
    const widths = layerWidths(spec);
    if (!isNarrow(widths) && (widths.length - 1 > FUSED_MAX_DEPTH || widths.some((w) => w > FUSED_MAX_WIDTH)))
      return undefined;
    return { kind: 'deep-linear', widths, teacher: source.teacher, crossEntropy: loss === 'cross-entropy' };
  }
  return undefined;
}

/**
 * The regression data whose streams a kernel draws: the data itself under MSE, the data inside
 * SoftmaxTargets under cross-entropy (the kernels softmax the noisy labels themselves). Anything
 * else (cross-entropy against raw labels, MSE against softmax targets) is the general path's.
 */
function regressionDataOf(data: DataSource, loss: LossKind): DataSource | undefined {
  if (loss === 'mse') return data instanceof SoftmaxTargets ? undefined : data;
  return data instanceof SoftmaxTargets ? data.inner : undefined;
}

/** Teacher–student data under this loss (see regressionDataOf). */
function teacherStudentOf(data: DataSource, loss: LossKind): TeacherStudent | undefined {
  const source = regressionDataOf(data, loss);
  return source instanceof TeacherStudent ? source : undefined;
}

/** A one-hidden-layer MLP (widths ≤ 4) on one-hidden-layer MLP teacher–student data, MSE or cross-entropy. */
function mlpNetwork(
  spec: Extract<Model['spec'], { kind: 'mlp' }>,
  data: DataSource,
  loss: LossKind,
): FusedNetwork | undefined {
  const source = teacherStudentOf(data, loss);
  if (!source) return undefined;
  const teacher = source.teacher.spec;
  const widths = layerWidths(spec);
  if (spec.hidden.length !== 1 || !widths.every((w) => w <= NARROW_MAX_WIDTH)) return undefined;
  if (teacher.kind !== 'mlp' || teacher.hidden.length !== 1) return undefined;
  if (teacher.hidden[0] > teacherCapacity(spec.inputDim, spec.outputDim)) return undefined;
  return {
    kind: 'mlp',
    widths,
    teacherHidden: teacher.hidden[0],
    studentTanh: spec.activation === 'tanh',
    teacherTanh: teacher.activation === 'tanh',
    crossEntropy: loss === 'cross-entropy',
    teacherParams: source.teacherParams,
  };
}

/**
 * An RNN or Transformer student on teacher–student data (MSE against the noisy labels, or
 * cross-entropy against their softmax: the experiments' SoftmaxTargets around the data).
 */
function sequenceNetworkOf(spec: Model['spec'], data: DataSource, loss: LossKind): FusedNetwork | undefined {
  const source = teacherStudentOf(data, loss);
  return source && sequenceNetwork(spec, source.teacher.spec, loss, source.teacherParams);
}

/**
 * The fused network for an RNN student on an RNN teacher, or a Transformer student on a Transformer
 * teacher that differs at most in its MLP width, within the kernels' limits; undefined otherwise.
 * Reads only the specs (the progress bar's prior calls it on a config's, without teacher tensors).
 */
export function sequenceNetwork(
  spec: ModelSpec,
  teacher: ModelSpec,
  loss: LossKind,
  teacherParams: readonly Tensor[] = [],
): FusedNetwork | undefined {
  const crossEntropy = loss === 'cross-entropy';
  if (spec.kind === 'rnn') {
    if (teacher.kind !== 'rnn' || teacher.sequenceLength !== spec.sequenceLength) return undefined;
    const { inputDim, hidden, outputDim, sequenceLength } = spec;
    if (hidden > RNN_MAX.hidden || inputDim > RNN_MAX.width || outputDim > RNN_MAX.width) return undefined;
    if (sequenceLength > RNN_MAX.sequence || sequenceLength * inputDim > RNN_MAX.features) return undefined;
    if (teacher.hidden > RNN_MAX.teacherHidden) return undefined;
    return {
      kind: 'rnn',
      widths: [inputDim, hidden, outputDim],
      sequenceLength,
      teacherHidden: teacher.hidden,
      crossEntropy,
      teacherParams,
    };
  }
  if (spec.kind !== 'transformer' || teacher.kind !== 'transformer') return undefined;
  const { inputDim, modelDim, heads, mlpHidden, outputDim, sequenceLength } = spec;
  const sameShape =
    teacher.inputDim === inputDim &&
    teacher.modelDim === modelDim &&
    teacher.heads === heads &&
    teacher.outputDim === outputDim &&
    teacher.sequenceLength === sequenceLength;
  if (!sameShape) return undefined;
  if ([inputDim, modelDim, mlpHidden, outputDim].some((w) => w > TRANSFORMER_MAX.width)) return undefined;
  if (sequenceLength > TRANSFORMER_MAX.sequence || teacher.mlpHidden > TRANSFORMER_MAX.teacherHidden)
    return undefined;
  return {
    kind: 'transformer',
    shape: { inputDim, modelDim, heads, mlpHidden, outputDim },
    sequenceLength,
    teacherMlpHidden: teacher.mlpHidden,
    crossEntropy,
    teacherParams,
  };
}

/** Whether the fused path can train this model on this data under this loss. */
export function canFuse(model: Model, data: DataSource, loss: LossKind): boolean {
  return fusedNetwork(model, data, loss) !== undefined;
}

/**
 * Whether 'auto' takes the fused path: it can, and the kernel is expected to beat the general path
 * (an RNN whose step at this batch size is short; a Transformer whose step is short or whose
 * replicas are many: see RNN_AUTO_MAX_WORK and TRANSFORMER_AUTO_MAX_WORK). `path: 'fused'` still
 * runs a longer one.
 */
export function prefersFused(
  model: Model,
  data: DataSource,
  loss: LossKind,
  batchSize: number,
  replicas = 1,
): boolean {
  const network = fusedNetwork(model, data, loss);
  return network !== undefined && prefersNetwork(network, batchSize, replicas);
}

/**
 * 'auto''s rule for a network a fused kernel can train: always, except an RNN whose step is long and
 * a Transformer whose step is long with fewer than TRANSFORMER_AUTO_MIN_REPLICAS replicas. Only the
 * network's shape is read (the progress bar's prior calls it on shapes from a config).
 */
export function prefersNetwork(network: FusedNetwork, batchSize: number, replicas: number): boolean {
  if (network.kind === 'rnn') return rnnStepWork(network, batchSize) <= RNN_AUTO_MAX_WORK;
  if (network.kind === 'transformer')
    return (
      replicas >= TRANSFORMER_AUTO_MIN_REPLICAS ||
      transformerStepWork(network, batchSize) <= TRANSFORMER_AUTO_MAX_WORK
    );
  return true;
}

/** SGD steps one fused dispatch runs for this model, data and loss at this batch size (undefined: no fused kernel). */
export function fusedDispatchSteps(
  model: Model,
  data: DataSource,
  loss: LossKind,
  batchSize: number,
): number | undefined {
  const network = fusedNetwork(model, data, loss);
  return network && fusedStepsPerDispatch(network, batchSize);
}

/**
 * Runs `steps` SGD steps on `params` (the model's tensors, batch R, updated in place) and returns
 * each replica's minibatch loss at the last step ([1] per replica).
 */
export function fusedSgd(
  engine: Engine,
  model: Model,
  data: DataSource,
  loss: LossKind,
  params: readonly Tensor[],
  run: FusedRun,
): Tensor {
  const network = fusedNetwork(model, data, loss);
  if (!network) throw new InputError('train.path', `'fused' needs ${FUSED_REQUIREMENTS}`);
  const source = data instanceof SoftmaxTargets ? data.inner : data;
  const { inputs, noise } = source as LinearTeacher | TeacherStudent;
  return fusedSgdSteps(engine, network, params, { rootX: inputs.root, rootEps: noise.root }, run);
}
