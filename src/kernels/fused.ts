/**
 * Launches of the fused training shaders: online SGD with many steps per dispatch, one invocation
 * per replica, fresh data from the counter RNG inside the kernel. Deep linear networks on a linear
 * teacher (shaders/fused_deep_linear_2x2.wgsl for input and output width 2 and hidden widths ≤ 2, the
 * paper's setting, MSE only; fused_deep_linear_narrow.wgsl for widths ≤ 4; both depth ≤ 10;
 * fused_deep_linear.wgsl up to width 8, depth 6), one-hidden-layer MLPs (widths ≤ 4) on an MLP
 * teacher (fused_mlp_narrow.wgsl), Elman RNNs (hidden ≤ 4) on an RNN teacher (fused_rnn.wgsl) and
 * one-block Transformers (widths ≤ 8) on a Transformer teacher (fused_transformer.wgsl), each under
 * MSE or soft cross-entropy (against softmax targets). Which models and data take this
 * path is src/train/fused.ts's call.
 */
import { isSwiftShader } from '../gpu/context.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

export const FUSED_MAX_WIDTH = 8;
export const FUSED_MAX_DEPTH = 6;
/** Networks this narrow (every width ≤ 4) use the mat4x4 kernels; deep linear ones may go deeper. */
export const NARROW_MAX_WIDTH = 4;
export const NARROW_MAX_DEPTH = 10;
/** Steps per dispatch: long enough to amortise a launch, short enough for GPU watchdogs. */
export const FUSED_STEPS_PER_DISPATCH = 256;

/** Workgroup memory the MLP kernel may use for its teacher: the limit every WebGPU device has. */
export const TEACHER_WORKGROUP_BYTES = 16384;

/** The widest teacher hidden layer the MLP kernel holds in workgroup memory: (1 + d + m) vec4s per four units. */
export function teacherCapacity(inputs: number, outputs: number): number {
  return 4 * Math.floor(TEACHER_WORKGROUP_BYTES / (16 * (1 + inputs + outputs)));
}

/**
 * Limits of the Transformer kernel (shaders/fused_transformer.wgsl's TRANSFORMER_MAX_* constants):
 * inputs, outputs, model width and the student's MLP each a pair of vec4 (heads dividing the model
 * width), T tokens kept for the backward pass, the teacher's MLP read from storage memory.
 */
export const TRANSFORMER_MAX = { width: 8, sequence: 8, teacherHidden: 128 } as const;

/**
 * Limits of the RNN kernel (shaders/fused_rnn.wgsl's RNN_MAX_* constants): input and output widths
 * as a pair of vec4, the student's state one vec4, T states kept for backpropagation through time,
 * a sample's T·d inputs and the teacher's state in private arrays.
 */
export const RNN_MAX = { width: 8, hidden: 4, sequence: 16, features: 64, teacherHidden: 128 } as const;

/** Multiply–adds per invocation a dispatch may hold (≈ 10–50 ms on a GPU thread or a SwiftShader lane). */
const SEQUENCE_DISPATCH_WORK = 2 ** 24;

/**
 * Multiply–adds per replica and step above which 'auto' leaves an RNN to the general path: one
 * invocation runs a replica's whole step serially, which loses to the general path's matmuls once
 * the teacher is large. On SwiftShader (bench train, 2 cores) a 100-unit teacher at batch 300
 * (≈ 1.3·10⁷ a step) ran 0.3× the general path at 1 replica and 0.8× at 8, while the quick
 * anisotropy sweep's 4-unit teacher at batch 10 (≈ 10⁴) ran several times faster.
 */
export const RNN_AUTO_MAX_WORK = 2 ** 20;

/**
 * Multiply–adds per replica and step above which 'auto' leaves a Transformer of fewer than
 * TRANSFORMER_AUTO_MIN_REPLICAS replicas to the general path. The general path's step grows with the
 * replicas, the kernel's only once they outnumber the lanes it runs on: on SwiftShader (bench train,
 * 2 cores) the full anisotropy sweep's Transformer (teacher MLP 100, batch 300: ≈ 3.3·10⁶ a step) ran
 * 0.6× the general path at 1 replica and 3.2–5.6× at 8; the quick form's (teacher MLP 16, batch 10:
 * ≈ 7.5·10⁴) ran several times faster at any count.
 */
export const TRANSFORMER_AUTO_MAX_WORK = 2 ** 20;
export const TRANSFORMER_AUTO_MIN_REPLICAS = 8;

/**
 * The network a fused kernel trains, with its teacher: a deep linear student on a linear teacher
 * (its weight matrix), or a one-hidden-layer MLP student on a one-hidden-layer MLP teacher (its
 * parameters, packed for the kernel). `widths` run from input to output.
 */
export type FusedNetwork =
  | {
      kind: 'deep-linear';
      widths: readonly number[];
      teacher: Tensor;
      /** Cross-entropy against softmax(V x + ε) instead of MSE. */
      crossEntropy: boolean;
    }
  | {
      kind: 'mlp';
      widths: readonly number[];
      teacherHidden: number;
      studentTanh: boolean;
      teacherTanh: boolean;
      /** Cross-entropy against softmax(teacher + noise) instead of MSE. */
      crossEntropy: boolean;
      teacherParams: readonly Tensor[];
    }
  | {
      kind: 'rnn';
      /** Input d, hidden h, output m of the student. */
      widths: readonly [number, number, number];
      sequenceLength: number;
      teacherHidden: number;
      crossEntropy: boolean;
      teacherParams: readonly Tensor[];
    }
  | {
      kind: 'transformer';
      /** Input width d (per token), model width D, heads, the student's MLP width, outputs m. */
      shape: { inputDim: number; modelDim: number; heads: number; mlpHidden: number; outputDim: number };
      sequenceLength: number;
      /** The teacher's MLP width (its other dimensions are the student's). */
      teacherMlpHidden: number;
      crossEntropy: boolean;
      teacherParams: readonly Tensor[];
    };

/** The fused networks with a kernel of their own (fused_rnn.wgsl, fused_transformer.wgsl). */
type SequenceNetwork = Extract<FusedNetwork, { kind: 'rnn' | 'transformer' }>;

/** Every width ≤ 4 and depth ≤ 10: the mat4x4 kernels. */
export function isNarrow(widths: readonly number[]): boolean {
  return widths.length - 1 <= NARROW_MAX_DEPTH && widths.every((w) => w <= NARROW_MAX_WIDTH);
}

/**
 * The kernel that trains a network: the 2×2 one when every width is at most 2, the ends are 2 and the
 * loss is MSE (it sums the minibatch as moments, which only a quadratic loss allows).
 */
function fusedKernel(network: Exclude<FusedNetwork, SequenceNetwork>): string {
  if (network.kind === 'mlp') return 'fused_mlp_narrow';
  if (!isNarrow(network.widths)) return 'fused_deep_linear';
  const { widths } = network;
  const twoByTwo =
    !network.crossEntropy &&
    widths[0] === 2 &&
    widths[widths.length - 1] === 2 &&
    widths.every((w) => w <= 2);
  return twoByTwo ? 'fused_deep_linear_2x2' : 'fused_deep_linear_narrow';
}

/** Pipeline constants: narrow kernels compile per shape (constant trip counts); the generic one reads the widths. */
function kernelConstants(
  kernel: string,
  network: Exclude<FusedNetwork, SequenceNetwork>,
  workgroup: number,
): Record<string, number> {
  const { widths } = network;
  const depth = widths.length - 1;
  if (network.kind === 'mlp')
    return {
      WG: workgroup,
      IN: widths[0],
      HIDDEN: widths[1],
      OUT: widths[2],
      TEACHER_HIDDEN: network.teacherHidden,
      STUDENT_TANH: network.studentTanh ? 1 : 0,
      TEACHER_TANH: network.teacherTanh ? 1 : 0,
      CROSS_ENTROPY: network.crossEntropy ? 1 : 0,
    };
  if (kernel === 'fused_deep_linear_2x2') return { WG: workgroup, DEPTH: depth };
  const CROSS_ENTROPY = network.crossEntropy ? 1 : 0;
  if (kernel === 'fused_deep_linear_narrow')
    return { WG: workgroup, DEPTH: depth, IN: widths[0], OUT: widths[depth], CROSS_ENTROPY };
  return { WG: workgroup, CROSS_ENTROPY };
}

export interface FusedRun {
  learningRate: number;
  batchSize: number;
  steps: number;
  seed: number;
  startStep: number;
  replicaOffset?: number;
}

/** Copies tensors end to end into a fresh buffer (and back): the kernels' packing of parameters. */
function packed(engine: Engine, tensors: readonly Tensor[], label: string) {
  const total = tensors.reduce((sum, t) => sum + t.length, 0);
  const buffer = engine.empty([total], { label });
  const copy = (toPacked: boolean) => {
    let offset = 0;
    for (const t of tensors) {
      if (toPacked) engine.copyBytes(t, 0, buffer, offset, t.byteLength);
      else engine.copyBytes(buffer, offset, t, 0, t.byteLength);
      offset += t.byteLength;
    }
  };
  copy(true);
  return { tensor: buffer, copyBack: () => copy(false) };
}

/** One invocation per replica runs a long serial loop: on CPU adapters small workgroups spread
 * replicas over cores (SwiftShader runs a workgroup on one thread); GPUs want full warps. */
function fusedWorkgroup(engine: Engine): number {
  return isSwiftShader(engine.context) ? 4 : 64;
}

/**
 * The uniforms every fused kernel reads (fused_common.wgsl's params) for one dispatch of `steps` steps
 * from update `step`; `widths` is the kernel's twelve layout numbers (zero-padded).
 */
function dispatchUniforms(
  run: FusedRun,
  { rootX, rootEps }: { rootX: Tensor; rootEps: Tensor },
  replicas: number,
  depth: number,
  dispatch: { step: number; steps: number; widths: readonly number[] },
) {
  const { step, widths } = dispatch;
  return {
    replicas,
    depth,
    batchSize: run.batchSize,
    steps: dispatch.steps,
    stepLo: step % 2 ** 32,
    stepHi: Math.floor(step / 2 ** 32),
    seed: run.seed,
    replicaOffset: run.replicaOffset ?? 0,
    learningRate: run.learningRate,
    rootXStride: rootX.batch > 1 ? rootX.size : 0,
    rootEpsStride: rootEps.batch > 1 ? rootEps.size : 0,
    widths0: widths.slice(0, 4),
    widths1: widths.slice(4, 8),
    widths2: widths.slice(8, 12),
  };
}

/**
 * Runs `steps` SGD steps of `network` on `params` (its tensors, batch R, updated in place) with data
 * drawn from the counter-RNG roots `rootX` (inputs) and `rootEps` (label noise), and returns each
 * replica's minibatch loss at the last step ([1] per replica).
 */
export function fusedSgdSteps(
  engine: Engine,
  network: FusedNetwork,
  params: readonly Tensor[],
  roots: { rootX: Tensor; rootEps: Tensor },
  run: FusedRun,
): Tensor {
  if (network.kind === 'rnn') return fusedRnnSteps(engine, network, params, roots, run);
  if (network.kind === 'transformer') return fusedTransformerSteps(engine, network, params, roots, run);
  const replicas = params[0].batch;
  const workgroup = fusedWorkgroup(engine);
  const weights = packed(engine, params, 'fused weights');
  const teacher = network.kind === 'mlp' ? packed(engine, network.teacherParams, 'fused teacher') : undefined;
  const loss = engine.empty([1], { batch: replicas, label: 'fused loss' });
  const { widths } = network;
  const depth = widths.length - 1;
  const padded = [...widths, ...new Array(12).fill(0)].slice(0, 12);
  if (network.kind === 'mlp') padded.splice(0, 4, widths[0], widths[1], widths[2], network.teacherHidden);
  const { rootX, rootEps } = roots;
  const kernel = fusedKernel(network);
  const constants = kernelConstants(kernel, network, workgroup);
  const buffers = {
    weights: { tensor: weights.tensor },
    rootX: { tensor: rootX },
    rootEps: { tensor: rootEps },
    teacher: { tensor: network.kind === 'mlp' ? (teacher?.tensor as Tensor) : network.teacher },
    lastLoss: { tensor: loss },
  };
  for (let done = 0; done < run.steps; done += FUSED_STEPS_PER_DISPATCH) {
    const step = run.startStep + done;
    engine.launch({
      kernel,
      shader: `${kernel}.wgsl`,
      constants,
      buffers,
      uniforms: dispatchUniforms(run, roots, replicas, depth, {
        step,
        steps: Math.min(FUSED_STEPS_PER_DISPATCH, run.steps - done),
        widths: padded,
      }),
      workgroups: [Math.ceil(replicas / workgroup)],
    });
    engine.flush();
  }
  weights.copyBack();
  // Submit the copy-back before the packed buffers return to the pool: a queue write would overtake it.
  engine.flush();
  weights.tensor.dispose();
  teacher?.tensor.dispose();
  return loss;
}

/** Multiply–adds of one RNN step per replica: the teacher's and the student's forward, backward ≈ 2× forward. */
export function rnnStepWork(network: Extract<FusedNetwork, { kind: 'rnn' }>, batchSize: number): number {
  const [d, , m] = network.widths;
  const H = 4 * Math.ceil(network.teacherHidden / 4);
  const T = network.sequenceLength;
  const teacher = T * H * (d + H) + m * H;
  // The student padded to vec4 pairs: 4 units, 8 inputs, 8 outputs.
  const student = T * 4 * (8 + 4) + 8 * 4;
  return batchSize * (teacher + 3 * student);
}

/**
 * Multiply–adds of one Transformer step per replica: the teacher's and the student's forward (widths
 * padded to the kernel's vec4 pairs; the teacher's MLP to groups of four), backward ≈ 2× forward.
 */
export function transformerStepWork(
  network: Extract<FusedNetwork, { kind: 'transformer' }>,
  batchSize: number,
): number {
  const pad = (n: number) => (n > 4 ? 8 : 4);
  const { inputDim, modelDim, mlpHidden, outputDim } = network.shape;
  const [d, D, M, m] = [pad(inputDim), pad(modelDim), pad(mlpHidden), pad(outputDim)];
  const T = network.sequenceLength;
  const teacherMlp = 4 * Math.ceil(network.teacherMlpHidden / 4);
  // Embedding, q, k, v and the output projection per token; scores and mixing per pair of tokens.
  const attention = T * (D * d + 4 * D * D) + 2 * T * T * D;
  const student = attention + T * M * D + M * D + m * D;
  const teacher = attention + T * teacherMlp * modelDim + teacherMlp * D + m * D;
  return batchSize * (teacher + 3 * student);
}

/** Multiply–adds of one step per replica of a network with a kernel of its own. */
function sequenceStepWork(network: SequenceNetwork, batchSize: number): number {
  return network.kind === 'rnn' ? rnnStepWork(network, batchSize) : transformerStepWork(network, batchSize);
}

/**
 * SGD steps one dispatch runs: FUSED_STEPS_PER_DISPATCH, fewer for an RNN or Transformer whose steps
 * are long (a 100-unit teacher at batch 300 costs ~10⁶–10⁷ multiply–adds a step: a few steps per
 * dispatch, for GPU watchdogs and so the host keeps its pace).
 */
export function fusedStepsPerDispatch(network: FusedNetwork, batchSize: number): number {
  if (network.kind !== 'rnn' && network.kind !== 'transformer') return FUSED_STEPS_PER_DISPATCH;
  const fits = Math.floor(SEQUENCE_DISPATCH_WORK / sequenceStepWork(network, batchSize));
  return Math.max(1, Math.min(FUSED_STEPS_PER_DISPATCH, fits));
}

/**
 * A sequence kernel's call (shaders/fused_rnn.wgsl, fused_transformer.wgsl): the student and teacher
 * packed, the teacher rewritten once by the kernel's `pack_teacher` entry into `packedVectors` vec4s,
 * then the training dispatches with `widths` as the layout uniforms, and the weights copied back.
 */
function sequenceKernelSteps(
  engine: Engine,
  network: SequenceNetwork,
  params: readonly Tensor[],
  roots: { rootX: Tensor; rootEps: Tensor },
  run: FusedRun,
  kernel: {
    name: string;
    constants: Record<string, number>;
    packedVectors: number;
    widths: readonly number[];
  },
): Tensor {
  const replicas = params[0].batch;
  const { name, constants, packedVectors, widths } = kernel;
  const shader = `${name}.wgsl`;
  const weights = packed(engine, params, 'fused weights');
  const teacher = packed(engine, network.teacherParams, 'fused teacher');
  const packedTeacher = engine.empty([4 * packedVectors], { label: 'fused teacher, four units to a vec4' });
  const loss = engine.empty([1], { batch: replicas, label: 'fused loss' });
  const { rootX, rootEps } = roots;
  engine.launch({
    kernel: name,
    shader,
    entry: 'pack_teacher',
    constants,
    buffers: { teacher: { tensor: teacher.tensor }, packedTeacher: { tensor: packedTeacher } },
    workgroups: [Math.ceil(packedVectors / 64)],
  });
  const perDispatch = fusedStepsPerDispatch(network, run.batchSize);
  for (let done = 0; done < run.steps; done += perDispatch) {
    engine.launch({
      kernel: name,
      shader,
      constants,
      buffers: {
        weights: { tensor: weights.tensor },
        rootX: { tensor: rootX },
        rootEps: { tensor: rootEps },
        teacher: { tensor: teacher.tensor },
        packedTeacher: { tensor: packedTeacher },
        lastLoss: { tensor: loss },
      },
      uniforms: dispatchUniforms(run, roots, replicas, 2, {
        step: run.startStep + done,
        steps: Math.min(perDispatch, run.steps - done),
        widths,
      }),
      workgroups: [Math.ceil(replicas / constants.WG)],
    });
    engine.flush();
  }
  weights.copyBack();
  // Submit the copy-back before the packed buffers return to the pool: a queue write would overtake it.
  engine.flush();
  weights.tensor.dispose();
  teacher.tensor.dispose();
  packedTeacher.dispose();
  return loss;
}

/** The RNN kernel (shaders/fused_rnn.wgsl). */
function fusedRnnSteps(
  engine: Engine,
  network: Extract<FusedNetwork, { kind: 'rnn' }>,
  params: readonly Tensor[],
  roots: { rootX: Tensor; rootEps: Tensor },
  run: FusedRun,
): Tensor {
  const [d, h, m] = network.widths;
  const groups = Math.ceil(network.teacherHidden / 4);
  return sequenceKernelSteps(engine, network, params, roots, run, {
    name: 'fused_rnn',
    constants: {
      WG: fusedWorkgroup(engine),
      IN: d,
      HIDDEN: h,
      OUT: m,
      SEQUENCE: network.sequenceLength,
      TEACHER_HIDDEN: network.teacherHidden,
      CROSS_ENTROPY: network.crossEntropy ? 1 : 0,
    },
    // Per group of four teacher units: bias, d columns of Wx, 4G columns of Wh, m rows of Wo; then bo.
    packedVectors: (1 + d + 4 * groups + m) * groups + 2,
    widths: [d, h, m, network.teacherHidden, network.sequenceLength, 0, 0, 0, 0, 0, 0, 0],
  });
}

/** The Transformer kernel (shaders/fused_transformer.wgsl): the teacher's MLP is what pack_teacher packs. */
function fusedTransformerSteps(
  engine: Engine,
  network: Extract<FusedNetwork, { kind: 'transformer' }>,
  params: readonly Tensor[],
  roots: { rootX: Tensor; rootEps: Tensor },
  run: FusedRun,
): Tensor {
  const { inputDim, modelDim, heads, mlpHidden, outputDim } = network.shape;
  const { teacherMlpHidden, sequenceLength } = network;
  return sequenceKernelSteps(engine, network, params, roots, run, {
    name: 'fused_transformer',
    constants: {
      WG: fusedWorkgroup(engine),
      IN: inputDim,
      OUT: outputDim,
      MODEL: modelDim,
      HEADS: heads,
      MLP: mlpHidden,
      SEQUENCE: sequenceLength,
      TEACHER_MLP: teacherMlpHidden,
    },
    // Per group of four MLP units: b1, D columns of W1, four columns of W2 as pairs.
    packedVectors: Math.ceil(teacherMlpHidden / 4) * (1 + modelDim + 8),
    // widths1.w: the loss (a uniform, so MSE and cross-entropy share one compiled pipeline).
    widths: [
      inputDim,
      modelDim,
      outputDim,
      teacherMlpHidden,
      sequenceLength,
      heads,
      mlpHidden,
      network.crossEntropy ? 1 : 0,
      0,
      0,
      0,
      0,
    ],
  });
}
