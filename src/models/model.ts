/**
 * Models as data: a spec names the architecture, `buildModel` turns it into a parameter list and a
 * forward function over taped values. Every model maps x [rows, inputFeatures] to [rows, outputDim]
 * per replica; sequence models read a row as T time steps of `inputDim` features, time-major.
 */
import type { Tape, Var } from '../autodiff/tape.ts';
import { InputError, positiveInteger } from '../errors.ts';
import { gatherRows } from '../kernels/gather.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { dense, multiHeadAttention, recurrentCell, residual } from './blocks.ts';

export type ModelSpec =
  | { kind: 'deep-linear'; inputDim: number; hidden: number[]; outputDim: number }
  | { kind: 'mlp'; inputDim: number; hidden: number[]; outputDim: number; activation: 'relu' | 'tanh' }
  | { kind: 'rnn'; inputDim: number; hidden: number; outputDim: number; sequenceLength: number }
  | {
      kind: 'transformer';
      inputDim: number;
      modelDim: number;
      heads: number;
      mlpHidden: number;
      outputDim: number;
      sequenceLength: number;
    };

/** Layer widths of a deep linear net or MLP: input, each hidden layer, output (W_i is widths[i] × widths[i−1]). */
export function layerWidths(spec: {
  inputDim: number;
  hidden: readonly number[];
  outputDim: number;
}): number[] {
  return [spec.inputDim, ...spec.hidden, spec.outputDim];
}

export interface ParameterSpec {
  name: string;
  shape: number[];
  /** Inputs feeding one output unit (Kaiming/Xavier scale); 0 for biases. */
  fanIn: number;
  fanOut: number;
  role: 'weight' | 'bias' | 'embedding';
}

/**
 * A model of your own: its parameters (names, shapes, init fan-in/out) and a forward pass over the
 * tape with them in that order, x [rows, features] → [rows, outputs] per replica.
 */
export interface ModelDefinition {
  parameters: ParameterSpec[];
  forward(tape: Tape, params: readonly Var[], x: Var): Var;
}

/** A built-in model (`buildModel`): a definition plus the spec it came from. */
export interface Model extends ModelDefinition {
  spec: ModelSpec;
  inputFeatures: number;
  outputDim: number;
  /** Forward pass: x [rows, inputFeatures] (a constant) → [rows, outputDim]. */
  forward(tape: Tape, params: readonly Var[], x: Var): Var;
}

/** A weight matrix [out, in] (fan-in `in`, fan-out `out`), for a model's parameter list. */
export const weight = (name: string, out: number, inp: number): ParameterSpec => ({
  name,
  shape: [out, inp],
  fanIn: inp,
  fanOut: out,
  role: 'weight',
});
/** A bias vector [n] (initialised to zero by every scheme). */
export const bias = (name: string, n: number): ParameterSpec => ({
  name,
  shape: [n],
  fanIn: 0,
  fanOut: n,
  role: 'bias',
});

/** Validates a spec (errors name the field, prefixed by `path`) and builds the model. */
/** The models `buildModel` made, as made (a copy with another forward pass is not among them). */
const builtModels = new WeakSet<object>();

/**
 * Whether `model` is a built-in model exactly as `buildModel` returned it, so that its spec describes
 * its forward pass (the fused kernels rely on that).
 */
export function isBuiltModel(model: ModelDefinition): model is Model {
  return builtModels.has(model);
}

export function buildModel(spec: ModelSpec, path = 'model'): Model {
  const model = buildModelOf(spec, path);
  builtModels.add(model);
  return model;
}

function buildModelOf(spec: ModelSpec, path: string): Model {
  const inputDim = positiveInteger(`${path}.inputDim`, spec.inputDim);
  const outputDim = positiveInteger(`${path}.outputDim`, spec.outputDim);
  switch (spec.kind) {
    case 'deep-linear': {
      if (!Array.isArray(spec.hidden)) throw new InputError(`${path}.hidden`, 'must be an array of widths');
      const hidden = spec.hidden.map((h, i) => positiveInteger(`${path}.hidden[${i}]`, h));
      const widths = layerWidths({ inputDim, hidden, outputDim });
      const parameters = widths.slice(1).map((out, i) => weight(`W${i + 1}`, out, widths[i]));
      return {
        spec,
        parameters,
        inputFeatures: inputDim,
        outputDim,
        forward: (tape, params, x) => params.reduce((h, w) => tape.matmul(h, w, { transposeB: true }), x),
      };
    }
    case 'mlp': {
      if (!Array.isArray(spec.hidden)) throw new InputError(`${path}.hidden`, 'must be an array of widths');
      if (spec.activation !== 'relu' && spec.activation !== 'tanh') {
        throw new InputError(
          `${path}.activation`,
          `must be 'relu' or 'tanh', got ${JSON.stringify(spec.activation)}`,
        );
      }
      const hidden = spec.hidden.map((h, i) => positiveInteger(`${path}.hidden[${i}]`, h));
      const widths = layerWidths({ inputDim, hidden, outputDim });
      const parameters = widths
        .slice(1)
        .flatMap((out, i) => [weight(`W${i + 1}`, out, widths[i]), bias(`b${i + 1}`, out)]);
      const layers = widths.length - 1;
      return {
        spec,
        parameters,
        inputFeatures: inputDim,
        outputDim,
        forward: (tape, params, x) => {
          let h = x;
          for (let i = 0; i < layers; i++)
            h = dense(tape, h, params[2 * i], params[2 * i + 1], i === layers - 1 ? 'none' : spec.activation);
          return h;
        },
      };
    }
    case 'rnn': {
      const hidden = positiveInteger(`${path}.hidden`, spec.hidden);
      const T = positiveInteger(`${path}.sequenceLength`, spec.sequenceLength);
      const parameters = [
        weight('Wx', hidden, inputDim),
        weight('Wh', hidden, hidden),
        bias('b', hidden),
        weight('Wo', outputDim, hidden),
        bias('bo', outputDim),
      ];
      return {
        spec,
        parameters,
        inputFeatures: T * inputDim,
        outputDim,
        forward: (tape, [Wx, Wh, b, Wo, bo], x) => {
          // Elman: h_t = tanh(Wx x_t + Wh h_{t−1} + b), h_0 = 0; the output reads the last state.
          let h: Var | undefined;
          for (let t = 0; t < T; t++)
            h = recurrentCell(tape, h, timeStep(tape, x, t, T, inputDim), Wx, Wh, b);
          return dense(tape, h as Var, Wo, bo);
        },
      };
    }
    case 'transformer': {
      const D = positiveInteger(`${path}.modelDim`, spec.modelDim);
      const H = positiveInteger(`${path}.heads`, spec.heads);
      const hiddenMlp = positiveInteger(`${path}.mlpHidden`, spec.mlpHidden);
      const T = positiveInteger(`${path}.sequenceLength`, spec.sequenceLength);
      if (D % H !== 0) throw new InputError(`${path}.heads`, `must divide modelDim ${D}, got ${H}`);
      const dh = D / H;
      const parameters: ParameterSpec[] = [
        weight('Win', D, inputDim),
        bias('bin', D),
        { name: 'pos', shape: [T, D], fanIn: D, fanOut: D, role: 'embedding' },
      ];
      for (let h = 0; h < H; h++)
        parameters.push(
          weight(`Wq${h}`, dh, D),
          weight(`Wk${h}`, dh, D),
          weight(`Wv${h}`, dh, D),
          weight(`Wo${h}`, D, dh),
        );
      parameters.push(
        weight('W1', hiddenMlp, D),
        bias('b1', hiddenMlp),
        weight('W2', D, hiddenMlp),
        bias('b2', D),
        weight('Wout', outputDim, D),
        bias('bout', outputDim),
      );
      return {
        spec,
        parameters,
        inputFeatures: T * inputDim,
        outputDim,
        forward: (tape, params, x) => transformerForward(tape, params, x, { T, D, H, dh, inputDim }),
      };
    }
    default:
      throw new InputError(
        `${path}.kind`,
        `unknown model '${(spec as { kind: unknown }).kind}' (deep-linear, mlp, rnn, transformer)`,
      );
  }
}

const timeIndexCache = new WeakMap<Engine, Map<string, Tensor>>();

/** x_t [rows, d] out of x [rows, T·d]: rows b·T + t of x seen as [rows·T, d] (data only: no gradient). */
function timeStep(tape: Tape, x: Var, t: number, T: number, d: number): Var {
  if (x.requiresGrad)
    throw new InputError('model.input', 'sequence models take data inputs (no gradient with respect to x)');
  const rows = x.shape[0];
  const engine = tape.engine;
  let cache = timeIndexCache.get(engine);
  if (!cache) {
    cache = new Map();
    timeIndexCache.set(engine, cache);
  }
  const key = `${rows}:${T}:${t}`;
  let index = cache.get(key);
  if (!index || index.isDisposed) {
    index = engine.tensor(
      Array.from({ length: rows }, (_, b) => b * T + t),
      [rows],
      { dtype: 'u32', label: `time step ${t}/${T}` },
    );
    cache.set(key, index);
  }
  const steps = engine.view(x.value, [rows * T, d], x.batch);
  return tape.constant(tape.adopt(gatherRows(engine, steps, index)));
}

function transformerForward(
  tape: Tape,
  params: readonly Var[],
  x: Var,
  dims: { T: number; D: number; H: number; dh: number; inputDim: number },
): Var {
  const { T, D, H, inputDim } = dims;
  const rows = x.shape[0];
  const [Win, bin, pos] = params;
  const replicas = Math.max(x.batch, Win.batch);
  // Tokens: [rows·T, inputDim] → embedding + positions (broadcast over the rows).
  const tokens = tape.rebatch(x, [rows * T, inputDim], x.batch);
  let e = dense(tape, tokens, Win, bin);
  e = tape.reshape(tape.add(tape.reshape(e, [rows, T, D]), pos), [rows * T, D]);
  // Multi-head self-attention per sequence.
  const heads = Array.from({ length: H }, (_, h) => {
    const [Wq, Wk, Wv, Wo] = params.slice(3 + 4 * h, 7 + 4 * h);
    return { Wq, Wk, Wv, Wo };
  });
  const attention = multiHeadAttention(tape, e, heads, T);
  const base = 3 + 4 * H;
  const [W1, b1, W2, b2, Wout, bout] = params.slice(base, base + 6);
  const h1 = residual(tape, e, attention);
  const h2 = residual(tape, h1, dense(tape, dense(tape, h1, W1, b1, 'relu'), W2, b2));
  // Read out the mean token of each sequence.
  const pooled = tape.rebatch(tape.sum(tape.rebatch(h2, [T, D], replicas * rows), 0), [rows, D], replicas);
  return dense(tape, tape.scale(pooled, 1 / T), Wout, bout);
}
