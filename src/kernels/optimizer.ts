/**
 * Launch wrappers of shaders/optimizer.wgsl: one in-place update of a parameter tensor (all replicas)
 * from its gradient and the optimizer's state tensors, laid out exactly like the parameter.
 */
import { KernelError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { grid1d } from './dispatch.ts';

const WORKGROUP = 256;

/** Hyper-parameters of one update; η is the learning rate at this step (after the schedule). */
export interface UpdateSettings {
  learningRate: number;
  /** λ (0: none). */
  weightDecay: number;
  /** Decoupled decay θ ← θ − ηλθ (AdamW's form) instead of L2 (g ← g + λθ). */
  decoupled: boolean;
}

export interface MomentumSettings extends UpdateSettings {
  momentum: number;
  nesterov: boolean;
}

export interface AdamSettings extends UpdateSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Updates applied including this one (≥ 1): Adam's bias corrections 1 − β^t. */
  t: number;
}

function checkLayout(entry: string, param: Tensor, others: readonly Tensor[]): void {
  for (const t of others) {
    if (t.length !== param.length)
      throw new KernelError(
        `optimizer.${entry}`,
        `${t} does not match the parameter ${param} element for element`,
      );
  }
}

function launchUpdate(
  engine: Engine,
  entry: 'sgd' | 'momentum' | 'adam',
  param: Tensor,
  buffers: Record<string, Tensor>,
  settings: UpdateSettings,
  uniforms: Record<string, number>,
  constants: Record<string, number> = {},
): void {
  checkLayout(entry, param, Object.values(buffers));
  const total = param.length;
  const { workgroups, rowStride } = grid1d(total, WORKGROUP, engine.limits.maxComputeWorkgroupsPerDimension);
  engine.launch({
    kernel: `optimizer.${entry}`,
    shader: 'optimizer.wgsl',
    entry,
    constants: { WG: WORKGROUP, DECOUPLED: settings.decoupled ? 1 : 0, ...constants },
    buffers: {
      param: { tensor: param },
      ...Object.fromEntries(Object.entries(buffers).map(([name, tensor]) => [name, { tensor }])),
    },
    uniforms: {
      total,
      rowStride,
      learningRate: settings.learningRate,
      weightDecay: settings.weightDecay,
      momentum: 0,
      beta1: 0,
      beta2: 0,
      epsilon: 0,
      biasCorrection1: 1,
      biasCorrection2: 1,
      ...uniforms,
    },
    workgroups,
  });
}

/** θ ← θ − η g (with weight decay; plain SGD without decay is `accumulate(θ, g, 1, −η)`). */
export function sgdUpdate(engine: Engine, param: Tensor, grad: Tensor, settings: UpdateSettings): void {
  launchUpdate(engine, 'sgd', param, { grad }, settings, {});
}

/** b ← μ b + g; θ ← θ − η b (heavy ball) or θ − η (g + μ b) (Nesterov). `velocity` is b, updated in place. */
export function momentumUpdate(
  engine: Engine,
  param: Tensor,
  grad: Tensor,
  velocity: Tensor,
  settings: MomentumSettings,
): void {
  launchUpdate(
    engine,
    'momentum',
    param,
    { grad, first: velocity },
    settings,
    { momentum: settings.momentum },
    { NESTEROV: settings.nesterov ? 1 : 0 },
  );
}

/** Adam (AdamW with decoupled decay): moments `m`, `v` updated in place, bias-corrected by step t. */
export function adamUpdate(
  engine: Engine,
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  settings: AdamSettings,
): void {
  if (!(Number.isInteger(settings.t) && settings.t >= 1))
    throw new KernelError('optimizer.adam', `t must count the updates from 1, got ${settings.t}`);
  launchUpdate(engine, 'adam', param, { grad, first: m, second: v }, settings, {
    beta1: settings.beta1,
    beta2: settings.beta2,
    epsilon: settings.epsilon,
    biasCorrection1: 1 - settings.beta1 ** settings.t,
    biasCorrection2: 1 - settings.beta2 ** settings.t,
  });
}
