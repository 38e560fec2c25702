/**
 * The fused small-model path: online SGD of a deep linear network on a linear teacher, many steps
 * per dispatch, one invocation per replica (shaders/fused_deep_linear.wgsl). Same random streams,
 * loss and update as the general path; results agree up to float summation order.
 */
import { LinearTeacher } from '../data/linear-teacher.ts';
import type { DataSource } from '../data/source.ts';
import { InputError } from '../errors.ts';
import { isSwiftShader } from '../gpu/context.ts';
import type { Model } from '../models/model.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

export const FUSED_MAX_WIDTH = 8;
export const FUSED_MAX_DEPTH = 6;
/** Networks this narrow (every width ≤ 4) use the mat4x4 kernel, which also goes deeper. */
export const NARROW_MAX_WIDTH = 4;
export const NARROW_MAX_DEPTH = 10;
/** Steps per dispatch: long enough to amortise a launch, short enough for GPU watchdogs. */
export const FUSED_STEPS_PER_DISPATCH = 256;

/** Widths h_0 = d, …, h_D = m when the fused kernel can train this model on this data, else undefined. */
export function fusedWidths(model: Model, data: DataSource): number[] | undefined {
  if (model.spec.kind !== 'deep-linear' || !(data instanceof LinearTeacher)) return undefined;
  const widths = [model.spec.inputDim, ...model.spec.hidden, model.spec.outputDim];
  const depth = widths.length - 1;
  if (isNarrow(widths)) return widths;
  if (depth > FUSED_MAX_DEPTH || widths.some((w) => w > FUSED_MAX_WIDTH)) return undefined;
  return widths;
}

function isNarrow(widths: readonly number[]): boolean {
  return widths.length - 1 <= NARROW_MAX_DEPTH && widths.every((w) => w <= NARROW_MAX_WIDTH);
}

export interface FusedRun {
  learningRate: number;
  batchSize: number;
  steps: number;
  seed: number;
  startStep: number;
  replicaOffset?: number;
}

/**
 * Runs `steps` SGD steps on `params` (the model's layer tensors, batch R, updated in place) and
 * returns each replica's minibatch loss at the last step ([1] per replica).
 */
export function fusedDeepLinearSgd(
  engine: Engine,
  model: Model,
  data: DataSource,
  params: readonly Tensor[],
  run: FusedRun,
): Tensor {
  const widths = fusedWidths(model, data);
  if (!widths || !(data instanceof LinearTeacher)) {
    throw new InputError(
      'train.fused',
      `needs a deep linear model (depth ≤ ${FUSED_MAX_DEPTH}, widths ≤ ${FUSED_MAX_WIDTH}) on linear-teacher data`,
    );
  }
  const replicas = params[0].batch;
  // One invocation per replica runs a long serial loop: on CPU adapters small workgroups spread
  // replicas over cores (SwiftShader runs a workgroup on one thread); GPUs want full warps.
  const workgroup = isSwiftShader(engine.context) ? 4 : 64;
  const total = params.reduce((sum, p) => sum + p.length, 0);
  const packed = engine.empty([total], { label: 'fused weights' });
  const loss = engine.empty([1], { batch: replicas, label: 'fused loss' });
  // Layer tensors laid end to end are exactly the kernel's layer-major packing.
  const copies = (toPacked: boolean) => {
    let offset = 0;
    for (const p of params) {
      const encoder = engine.scheduler.copyEncoder();
      if (toPacked) encoder.copyBufferToBuffer(p.buffer, 0, packed.buffer, offset, p.byteLength);
      else encoder.copyBufferToBuffer(packed.buffer, offset, p.buffer, 0, p.byteLength);
      offset += p.byteLength;
    }
  };
  copies(true);
  const narrow = isNarrow(widths);
  const padded = [...widths, ...new Array(12).fill(0)].slice(0, 12);
  const rootStrides = {
    rootXStride: data.inputs.root.batch > 1 ? data.inputs.root.size : 0,
    rootEpsStride: data.noise.root.batch > 1 ? data.noise.root.size : 0,
  };
  const depth = widths.length - 1;
  const buffers = {
    weights: { tensor: packed },
    rootX: { tensor: data.inputs.root },
    rootEps: { tensor: data.noise.root },
    teacher: { tensor: data.teacher },
    lastLoss: { tensor: loss },
  };
  for (let done = 0; done < run.steps; done += FUSED_STEPS_PER_DISPATCH) {
    const step = run.startStep + done;
    engine.launch({
      kernel: narrow ? 'fused_deep_linear_narrow' : 'fused_deep_linear',
      shader: narrow ? 'fused_deep_linear_narrow.wgsl' : 'fused_deep_linear.wgsl',
      // The narrow kernel compiles per shape (constant trip counts); the generic one reads widths.
      constants: narrow
        ? { WG: workgroup, DEPTH: depth, IN: widths[0], OUT: widths[depth] }
        : { WG: workgroup },
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
        ...rootStrides,
        widths0: padded.slice(0, 4),
        widths1: padded.slice(4, 8),
        widths2: padded.slice(8, 12),
      },
      workgroups: [Math.ceil(replicas / workgroup)],
    });
    engine.flush();
  }
  copies(false);
  // Submit the copy-back before `packed` returns to the pool: a queue write would overtake it.
  engine.flush();
  packed.dispose();
  return loss;
}
