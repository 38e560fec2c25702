/**
 * Fused curvature kernels for small models. Hessian-vector products for small fully connected
 * networks (shaders/fused_hvp_narrow.wgsl):
 * deep linear networks and MLPs with every width ≤ 4 and at most 4 layers, under MSE or soft
 * cross-entropy. One invocation per replica (or probe copy) runs forward-over-reverse over all
 * evaluation rows, where the autodiff tape launches a kernel per operation over
 * [replicas · copies, rows, width] tensors: the log points of the anisotropy sweep's MLP and deep
 * linear cross-entropy batches (dense Hessians of 27 and 36 parameters) are that case. And the
 * Hessian's diagonal of small Elman RNNs (shaders/fused_hessian_diagonal_rnn.wgsl: hidden ≤ 4,
 * inputs and outputs ≤ 8), by second-order forward differentiation per (replica, parameter): the
 * exact trace of the anisotropy sweep's RNN (92 parameters) without 92 H·v on the tape.
 */
import { isSwiftShader } from '../gpu/context.ts';
import type { LossKind } from '../models/losses.ts';
import { layerWidths, type ModelSpec } from '../models/model.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

export const FUSED_HVP_MAX_WIDTH = 4;
export const FUSED_HVP_MAX_LAYERS = 4;
const NO_BIAS = 0xffffffff;
const ACTIVATIONS = { identity: 0, relu: 1, tanh: 2 } as const;

/** A network the fused H·v kernel handles: widths from input to output, whether layers have biases. */
export interface FusedHvpNetwork {
  kind: 'narrow';
  widths: readonly number[];
  biases: boolean;
  activation: keyof typeof ACTIVATIONS;
  crossEntropy: boolean;
}

/** An RNN whose Hessian diagonal the fused kernel computes. */
export interface FusedRnnDiagonal {
  kind: 'rnn';
  inputDim: number;
  hidden: number;
  outputDim: number;
  sequenceLength: number;
  crossEntropy: boolean;
}

export type FusedCurvature = FusedHvpNetwork | FusedRnnDiagonal;

/** Limits of the RNN diagonal kernel: the state one vec4, inputs and outputs a pair. */
export const FUSED_DIAGONAL_RNN_MAX = { hidden: 4, width: 8 } as const;

/**
 * What the fused curvature kernels do for a built-in model under a built-in loss (H·v for small deep
 * linear nets and MLPs, the Hessian's diagonal for small RNNs), or undefined when they do not cover
 * it (wider or deeper models, Transformers, a model of the user's own).
 */
export function fusedCurvature(spec: ModelSpec | undefined, loss: LossKind): FusedCurvature | undefined {
  if (spec?.kind === 'rnn') {
    const { inputDim, hidden, outputDim, sequenceLength } = spec;
    const max = FUSED_DIAGONAL_RNN_MAX;
    if (hidden > max.hidden || inputDim > max.width || outputDim > max.width) return undefined;
    return {
      kind: 'rnn',
      inputDim,
      hidden,
      outputDim,
      sequenceLength,
      crossEntropy: loss === 'cross-entropy',
    };
  }
  if (!spec || (spec.kind !== 'deep-linear' && spec.kind !== 'mlp')) return undefined;
  const widths = layerWidths(spec);
  if (widths.length - 1 > FUSED_HVP_MAX_LAYERS || widths.some((w) => w > FUSED_HVP_MAX_WIDTH))
    return undefined;
  return {
    kind: 'narrow',
    widths,
    biases: spec.kind === 'mlp',
    activation: spec.kind === 'mlp' ? spec.activation : 'identity',
    crossEntropy: loss === 'cross-entropy',
  };
}

/** Offsets of each layer's weight matrix and bias in the flat parameter vector (the model's order). */
function layerOffsets(network: FusedHvpNetwork): { weights: number[]; biases: number[] } {
  const weights: number[] = [];
  const biases: number[] = [];
  let offset = 0;
  for (let l = 0; l + 1 < network.widths.length; l++) {
    weights.push(offset);
    offset += network.widths[l] * network.widths[l + 1];
    if (network.biases) {
      biases.push(offset);
      offset += network.widths[l + 1];
    } else biases.push(NO_BIAS);
  }
  return { weights, biases };
}

/** Parameters per replica of the network. */
export function fusedCurvatureSize(network: FusedCurvature): number {
  if (network.kind === 'rnn') {
    const { inputDim: d, hidden: h, outputDim: m } = network;
    return h * d + h * h + h + m * h + m;
  }
  const { widths, biases } = network;
  let n = 0;
  for (let l = 0; l + 1 < widths.length; l++) n += widths[l] * widths[l + 1] + (biases ? widths[l + 1] : 0);
  return n;
}

function padded(values: readonly number[], length: number, fill: number): number[] {
  return [...values, ...new Array(length).fill(fill)].slice(0, length);
}

/**
 * H·v of the mean loss over the rows of (x, y) for every replica: `theta`, `v` and `out` are flat
 * parameter vectors ([n], batch B); x is [rows, d] and y [rows, m], batch B or 1 (shared).
 */
export function fusedHvp(
  engine: Engine,
  network: FusedHvpNetwork,
  tensors: { theta: Tensor; v: Tensor; x: Tensor; y: Tensor; out: Tensor },
): void {
  const { theta, v, x, y, out } = tensors;
  const B = out.batch;
  const rows = x.shape[0];
  const { weights, biases } = layerOffsets(network);
  const widths = padded(network.widths, 5, 0);
  const workgroup = isSwiftShader(engine.context) ? 4 : 64;
  engine.launch({
    kernel: 'curvature.fusedHvp',
    shader: 'fused_hvp_narrow.wgsl',
    // Layer count, widths, activation and loss are compiled in (see the shader's header).
    constants: {
      WG: workgroup,
      LAYERS: network.widths.length - 1,
      ACTIVATION: ACTIVATIONS[network.activation],
      CROSS_ENTROPY: network.crossEntropy ? 1 : 0,
      W0: widths[0],
      W1: widths[1],
      W2: widths[2],
      W3: widths[3],
      W4: widths[4],
    },
    buffers: {
      theta: { tensor: theta },
      direction: { tensor: v },
      inputs: { tensor: x },
      targets: { tensor: y },
      product: { tensor: out },
    },
    uniforms: {
      replicas: B,
      rows,
      size: fusedCurvatureSize(network),
      inputStride: x.batch === 1 ? 0 : x.size,
      targetStride: y.batch === 1 ? 0 : y.size,
      weightAt: padded(weights, 4, 0),
      biasAt: padded(biases, 4, NO_BIAS),
    },
    workgroups: [Math.ceil(B / workgroup)],
  });
}

/**
 * The Hessian's diagonal of the mean loss over the rows of (x, y) for every replica: `theta` and `out`
 * are flat parameter vectors ([n], batch B); x is [rows, T·d] and y [rows, m], batch B or 1 (shared).
 */
export function fusedRnnDiagonal(
  engine: Engine,
  network: FusedRnnDiagonal,
  tensors: { theta: Tensor; x: Tensor; y: Tensor; out: Tensor },
): void {
  const { theta, x, y, out } = tensors;
  const n = fusedCurvatureSize(network);
  const invocations = out.batch * n;
  const workgroup = isSwiftShader(engine.context) ? 4 : 64;
  const groups = Math.ceil(invocations / workgroup);
  engine.launch({
    kernel: 'curvature.fusedDiagonal',
    shader: 'fused_hessian_diagonal_rnn.wgsl',
    constants: {
      WG: workgroup,
      IN: network.inputDim,
      HIDDEN: network.hidden,
      OUT: network.outputDim,
      SEQUENCE: network.sequenceLength,
      CROSS_ENTROPY: network.crossEntropy ? 1 : 0,
    },
    buffers: {
      theta: { tensor: theta },
      inputs: { tensor: x },
      targets: { tensor: y },
      diagonal: { tensor: out },
    },
    uniforms: {
      invocations,
      rows: x.shape[0],
      size: n,
      inputStride: x.batch === 1 ? 0 : x.size,
      targetStride: y.batch === 1 ? 0 : y.size,
    },
    // Rows of 65,535 workgroups: the shader flattens (x, y) back into one index.
    workgroups: [Math.min(groups, 65535), Math.ceil(groups / 65535)],
  });
}
