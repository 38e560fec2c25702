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
/** Steps per dispatch: long enough to amortise a launch, short enough for GPU watchdogs. */
export const FUSED_STEPS_PER_DISPATCH = 256;

/** Widths h_0 = d, …, h_D = m when the fused kernel can train this model on this data, else undefined. */
export function fusedWidths(model: Model, data: DataSource): number[] | undefined {
  if (model.spec.kind !== 'deep-linear' || !(data instanceof LinearTeacher)) return undefined;
  const widths = [model.spec.inputDim, ...model.spec.hidden, model.spec.outputDim];
  if (widths.length - 1 > FUSED_MAX_DEPTH || widths.some((w) => w > FUSED_MAX_WIDTH)) return undefined;
  return widths;
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
  const padded = [...widths, 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8);
  for (let done = 0; done < run.steps; done += FUSED_STEPS_PER_DISPATCH) {
    const step = run.startStep + done;
    engine.launch({
      kernel: 'fused_deep_linear',
      shader: 'fused_deep_linear.wgsl',
      constants: { WG: workgroup },
      buffers: {
        weights: { tensor: packed },
        rootX: { tensor: data.inputs.root },
        rootEps: { tensor: data.noise.root },
        teacher: { tensor: data.teacher },
        lastLoss: { tensor: loss },
      },
      uniforms: {
        replicas,
        depth: widths.length - 1,
        batchSize: run.batchSize,
        steps: Math.min(FUSED_STEPS_PER_DISPATCH, run.steps - done),
        stepLo: step % 2 ** 32,
        stepHi: Math.floor(step / 2 ** 32),
        seed: run.seed,
        replicaOffset: run.replicaOffset ?? 0,
        learningRate: run.learningRate,
        rootXStride: data.inputs.root.batch > 1 ? data.inputs.root.size : 0,
        rootEpsStride: data.noise.root.batch > 1 ? data.noise.root.size : 0,
        widthsLo: padded.slice(0, 4),
        widthsHi: padded.slice(4, 8),
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
