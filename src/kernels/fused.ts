/**
 * Launches of the fused training shaders: online SGD with many steps per dispatch, one invocation
 * per replica, fresh data from the counter RNG inside the kernel. Deep linear networks on a linear
 * teacher (shaders/fused_deep_linear_2x2.wgsl for input and output width 2 and hidden widths ≤ 2, the
 * paper's setting; fused_deep_linear_narrow.wgsl for widths ≤ 4; both depth ≤ 10;
 * fused_deep_linear.wgsl up to width 8, depth 6) and one-hidden-layer MLPs (widths ≤ 4) on an MLP
 * teacher (fused_mlp_narrow.wgsl). Which models and data take this path is src/train/fused.ts's call.
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
 * The network a fused kernel trains, with its teacher: a deep linear student on a linear teacher
 * (its weight matrix), or a one-hidden-layer MLP student on a one-hidden-layer MLP teacher (its
 * parameters, packed for the kernel). `widths` run from input to output.
 */
export type FusedNetwork =
  | { kind: 'deep-linear'; widths: readonly number[]; teacher: Tensor }
  | {
      kind: 'mlp';
      widths: readonly number[];
      teacherHidden: number;
      studentTanh: boolean;
      teacherTanh: boolean;
      teacherParams: readonly Tensor[];
    };

/** Every width ≤ 4 and depth ≤ 10: the mat4x4 kernels. */
export function isNarrow(widths: readonly number[]): boolean {
  return widths.length - 1 <= NARROW_MAX_DEPTH && widths.every((w) => w <= NARROW_MAX_WIDTH);
}

/** The kernel that trains a network: the 2×2 one when every width is at most 2 and the ends are 2. */
function fusedKernel(network: FusedNetwork): string {
  if (network.kind === 'mlp') return 'fused_mlp_narrow';
  if (!isNarrow(network.widths)) return 'fused_deep_linear';
  const { widths } = network;
  const twoByTwo = widths[0] === 2 && widths[widths.length - 1] === 2 && widths.every((w) => w <= 2);
  return twoByTwo ? 'fused_deep_linear_2x2' : 'fused_deep_linear_narrow';
}

/** Pipeline constants: narrow kernels compile per shape (constant trip counts); the generic one reads the widths. */
function kernelConstants(kernel: string, network: FusedNetwork, workgroup: number): Record<string, number> {
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
    };
  if (kernel === 'fused_deep_linear_2x2') return { WG: workgroup, DEPTH: depth };
  if (kernel === 'fused_deep_linear_narrow')
    return { WG: workgroup, DEPTH: depth, IN: widths[0], OUT: widths[depth] };
  return { WG: workgroup };
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
  const replicas = params[0].batch;
  // One invocation per replica runs a long serial loop: on CPU adapters small workgroups spread
  // replicas over cores (SwiftShader runs a workgroup on one thread); GPUs want full warps.
  const workgroup = isSwiftShader(engine.context) ? 4 : 64;
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
      uniforms: {
        replicas,
        depth,
        batchSize: run.batchSize,
        steps: Math.min(FUSED_STEPS_PER_DISPATCH, run.steps - done),
        stepLo: step % 2 ** 32,
        stepHi: Math.floor(step / 2 ** 32),
        seed: run.seed,
        replicaOffset: run.replicaOffset ?? 0,
        learningRate: run.learningRate,
        rootXStride: rootX.batch > 1 ? rootX.size : 0,
        rootEpsStride: rootEps.batch > 1 ? rootEps.size : 0,
        widths0: padded.slice(0, 4),
        widths1: padded.slice(4, 8),
        widths2: padded.slice(8, 12),
      },
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
