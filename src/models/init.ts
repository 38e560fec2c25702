/**
 * Parameter initialisation on the GPU from (seed, replica, parameter index), so a replica's initial
 * weights do not depend on how many replicas share its job.
 */
import { InputError } from '../errors.ts';
import { fill } from '../kernels/elementwise.ts';
import { randomNormal } from '../kernels/rng.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { ModelDefinition, ParameterSpec } from './model.ts';

/** Random stream reserved for initialisation. */
export const STREAM_INIT = 3;

export type InitScheme =
  /** N(0, 2 / fan_in) weights (He et al.), zero biases. */
  | { kind: 'kaiming' }
  /** N(0, 2 / (fan_in + fan_out)) weights (Glorot and Bengio), zero biases. */
  | { kind: 'xavier' }
  /** N(0, s²) for every weight, zero biases: the init-scale experiment sweeps s. */
  | { kind: 'normal'; scale: number };

/** The standard deviation `scheme` draws `parameter` with (0 for biases). */
export function initStd(scheme: InitScheme, parameter: ParameterSpec): number {
  if (parameter.role === 'bias') return 0;
  switch (scheme.kind) {
    case 'kaiming':
      return Math.sqrt(2 / parameter.fanIn);
    case 'xavier':
      return Math.sqrt(2 / (parameter.fanIn + parameter.fanOut));
    case 'normal':
      return scheme.scale;
  }
}

/** Fresh parameters for `replicas` networks (batch R each), replica r drawing stream (seed, r + replicaOffset). */
export function initParameters(
  engine: Engine,
  model: Pick<ModelDefinition, 'parameters'>,
  scheme: InitScheme,
  options: { replicas: number; seed: number; replicaOffset?: number },
): Tensor[] {
  if (scheme.kind === 'normal' && !(scheme.scale >= 0 && Number.isFinite(scheme.scale))) {
    throw new InputError('init.scale', `must be a non-negative number, got ${scheme.scale}`);
  }
  return model.parameters.map((parameter, index) => {
    const std = initStd(scheme, parameter);
    const t = engine.empty(parameter.shape, { batch: options.replicas, label: parameter.name });
    if (std === 0) return fill(engine, t, 0);
    return randomNormal(
      engine,
      parameter.shape,
      { seed: options.seed, stream: STREAM_INIT, counter: index, replicaOffset: options.replicaOffset },
      { std, out: t, batch: options.replicas },
    );
  });
}
