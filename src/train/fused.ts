/**
 * The fused small-model path: online SGD with many steps per dispatch, one invocation per replica,
 * fresh data from the counter RNG inside the kernel. Deep linear networks on a linear teacher
 * (shaders/fused_deep_linear_2x2.wgsl for input and output width 2 and hidden widths ≤ 2, the
 * paper's setting; fused_deep_linear_narrow.wgsl for widths ≤ 4; both depth ≤ 10;
 * fused_deep_linear.wgsl up to width 8, depth 6) and one-hidden-layer MLPs (widths ≤ 4) on an MLP
 * teacher (fused_mlp_narrow.wgsl). Same random streams, loss and update as the general path; results
 * agree up to float summation order.
 */
import { LinearTeacher } from '../data/linear-teacher.ts';
import type { DataSource } from '../data/source.ts';
import { TeacherStudent } from '../data/teacher-student.ts';
import { InputError } from '../errors.ts';
import { isSwiftShader } from '../gpu/context.ts';
import { layerWidths, type Model } from '../models/model.ts';
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

export const FUSED_REQUIREMENTS =
  `a deep linear model (widths ≤ ${NARROW_MAX_WIDTH} and depth ≤ ${NARROW_MAX_DEPTH}, or widths ≤ ${FUSED_MAX_WIDTH} and depth ≤ ${FUSED_MAX_DEPTH}) ` +
  `on linear-teacher data, or a one-hidden-layer MLP (widths ≤ ${NARROW_MAX_WIDTH}) on one-hidden-layer MLP teacher–student data ` +
  `whose teacher fits ${TEACHER_WORKGROUP_BYTES / 1024} KiB of workgroup memory (up to ${teacherCapacity(2, 2)} hidden units for 2 inputs and 2 outputs), with MSE loss`;

/** The widest teacher hidden layer the MLP kernel holds in workgroup memory: (1 + d + m) vec4s per four units. */
export function teacherCapacity(inputs: number, outputs: number): number {
  return 4 * Math.floor(TEACHER_WORKGROUP_BYTES / (16 * (1 + inputs + outputs)));
}

type FusedPlan =
  | { kind: 'deep-linear'; widths: number[]; narrow: boolean; data: LinearTeacher }
  | {
      kind: 'mlp';
      widths: number[];
      teacherHidden: number;
      studentTanh: boolean;
      teacherTanh: boolean;
      data: TeacherStudent;
    };

function isNarrow(widths: readonly number[]): boolean {
  return widths.length - 1 <= NARROW_MAX_DEPTH && widths.every((w) => w <= NARROW_MAX_WIDTH);
}

/** How the fused path would train this model on this data, or undefined when it cannot. */
function fusedPlan(model: Model, data: DataSource): FusedPlan | undefined {
  // A model of the user's own (no built-in spec) always trains on the general path.
  const spec = model.spec as Model['spec'] | undefined;
  if (!spec) return undefined;
  if (spec.kind === 'deep-linear' && data instanceof LinearTeacher) {
    const widths = layerWidths(spec);
    if (isNarrow(widths)) return { kind: 'deep-linear', widths, narrow: true, data };
    if (widths.length - 1 > FUSED_MAX_DEPTH || widths.some((w) => w > FUSED_MAX_WIDTH)) return undefined;
    return { kind: 'deep-linear', widths, narrow: false, data };
  }
  if (spec.kind === 'mlp' && data instanceof TeacherStudent) {
    const teacher = data.teacher.spec;
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
      data,
    };
  }
  return undefined;
}

/** The kernel that runs a plan: the 2×2 one when every width is at most 2 and the ends are 2. */
function fusedKernel(plan: FusedPlan): string {
  if (plan.kind === 'mlp') return 'fused_mlp_narrow';
  if (!plan.narrow) return 'fused_deep_linear';
  const { widths } = plan;
  const twoByTwo = widths[0] === 2 && widths[widths.length - 1] === 2 && widths.every((w) => w <= 2);
  return twoByTwo ? 'fused_deep_linear_2x2' : 'fused_deep_linear_narrow';
}

/** Pipeline constants: narrow kernels compile per shape (constant trip counts); the generic one reads the widths. */
function kernelConstants(kernel: string, plan: FusedPlan, workgroup: number): Record<string, number> {
  const { widths } = plan;
  const depth = widths.length - 1;
  if (plan.kind === 'mlp')
    return {
      WG: workgroup,
      IN: widths[0],
      HIDDEN: widths[1],
      OUT: widths[2],
      TEACHER_HIDDEN: plan.teacherHidden,
      STUDENT_TANH: plan.studentTanh ? 1 : 0,
      TEACHER_TANH: plan.teacherTanh ? 1 : 0,
    };
  if (kernel === 'fused_deep_linear_2x2') return { WG: workgroup, DEPTH: depth };
  if (kernel === 'fused_deep_linear_narrow')
    return { WG: workgroup, DEPTH: depth, IN: widths[0], OUT: widths[depth] };
  return { WG: workgroup };
}

/** Whether the fused path can train this model on this data (MSE loss is the caller's check). */
export function canFuse(model: Model, data: DataSource): boolean {
  return fusedPlan(model, data) !== undefined;
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
      const encoder = engine.scheduler.copyEncoder();
      if (toPacked) encoder.copyBufferToBuffer(t.buffer, 0, buffer.buffer, offset, t.byteLength);
      else encoder.copyBufferToBuffer(buffer.buffer, offset, t.buffer, 0, t.byteLength);
      offset += t.byteLength;
    }
  };
  copy(true);
  return { tensor: buffer, copyBack: () => copy(false) };
}

/**
 * Runs `steps` SGD steps on `params` (the model's tensors, batch R, updated in place) and returns
 * each replica's minibatch loss at the last step ([1] per replica).
 */
export function fusedSgd(
  engine: Engine,
  model: Model,
  data: DataSource,
  params: readonly Tensor[],
  run: FusedRun,
): Tensor {
  const plan = fusedPlan(model, data);
  if (!plan) throw new InputError('train.path', `'fused' needs ${FUSED_REQUIREMENTS}`);
  const replicas = params[0].batch;
  // One invocation per replica runs a long serial loop: on CPU adapters small workgroups spread
  // replicas over cores (SwiftShader runs a workgroup on one thread); GPUs want full warps.
  const workgroup = isSwiftShader(engine.context) ? 4 : 64;
  const weights = packed(engine, params, 'fused weights');
  const teacher = plan.kind === 'mlp' ? packed(engine, plan.data.teacherParams, 'fused teacher') : undefined;
  const loss = engine.empty([1], { batch: replicas, label: 'fused loss' });
  const { widths } = plan;
  const depth = widths.length - 1;
  const padded = [...widths, ...new Array(12).fill(0)].slice(0, 12);
  if (plan.kind === 'mlp') padded.splice(0, 4, widths[0], widths[1], widths[2], plan.teacherHidden);
  const { inputs, noise } = plan.data;
  const kernel = fusedKernel(plan);
  const constants = kernelConstants(kernel, plan, workgroup);
  const buffers = {
    weights: { tensor: weights.tensor },
    rootX: { tensor: inputs.root },
    rootEps: { tensor: noise.root },
    teacher: { tensor: teacher ? teacher.tensor : (plan.data as LinearTeacher).teacher },
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
        rootXStride: inputs.root.batch > 1 ? inputs.root.size : 0,
        rootEpsStride: noise.root.batch > 1 ? noise.root.size : 0,
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
