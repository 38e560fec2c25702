/**
 * Models with a known float64 Hessian for the curvature tests. Each case builds, for R replicas, a
 * HessianOperator (parameters, loss closure, evaluation data) and one dense reference Hessian per
 * replica. A new model spec plugs in as one more `modelCase` in MODEL_CASES: its float64 reference
 * comes from tests/helpers/cpu-models.ts by central differences, and every curvature test file runs
 * over MODEL_CASES.
 */
import { type EvaluationData, HessianOperator, type LossClosure } from '../../src/curvature/operator.ts';
import { fusedCurvature } from '../../src/kernels/fused-hvp.ts';
import { type LossKind, lossFunction } from '../../src/models/losses.ts';
import { buildModel, type Model, type ModelSpec } from '../../src/models/model.ts';
import type { Engine } from '../../src/tensor/engine.ts';
import { centralHessian, cpuLoss } from './cpu-models.ts';
import { f32Array, matrixWithSpectrum, seededRandom, toRows } from './curvature-reference.ts';

export interface CurvatureInstance {
  operator: HessianOperator;
  /** Float64 dense Hessian per replica (rows, flat parameter order). */
  reference(): Promise<number[][][]>;
  /** Float64 model (cases with data): replica r's flat parameters and the loss of one sample. */
  cpu?: {
    samples: number;
    theta(replica: number): Float64Array;
    sampleLoss(replica: number, sample: number, theta: Float64Array): number;
  };
  dispose(): void;
}

export interface CurvatureCase {
  name: string;
  build(engine: Engine, replicas: number, seed: number): CurvatureInstance;
}

/** L(θ) = ½ θᵀ A_r θ with A_r = Q diag(λ_r) Qᵀ (f32): H = A_r exactly, for any θ. */
export function quadraticCase(name: string, spectrum: (replica: number) => readonly number[]): CurvatureCase {
  return {
    name,
    build(engine, replicas, seed) {
      const n = spectrum(0).length;
      const matrices = Array.from({ length: replicas }, (_, r) =>
        matrixWithSpectrum(spectrum(r), seed + 97 * r),
      );
      const flat = new Float32Array(replicas * n * n);
      matrices.forEach((m, r) => {
        flat.set(m, r * n * n);
      });
      const A = engine.tensor(flat, [n, n], { batch: replicas, label: 'quadratic A' });
      const theta = engine.tensor(f32Array(seededRandom(seed), replicas * n, 1), [1, n], { batch: replicas });
      // A is evaluation data (not captured by the closure) so that operator copies repeat it.
      const loss: LossClosure = (tape, [p], data) => tape.scale(tape.dot(p, tape.matmul(p, data.A)), 0.5);
      const operator = HessianOperator.create(engine, { params: [theta], loss, evaluation: { data: { A } } });
      return {
        operator,
        reference: async () => matrices.map((m) => toRows(m, n)),
        dispose() {
          operator.dispose();
          A.dispose();
          theta.dispose();
        },
      };
    },
  };
}

const references = new Map<string, number[][][]>();

/** Central-difference references take seconds for the larger models: compute each once per process. */
function cached(key: string, compute: () => number[][][]): number[][][] {
  let value = references.get(key);
  if (!value) {
    value = compute();
    references.set(key, value);
  }
  return value;
}

function rowsOf(data: Float32Array, replica: number, rows: number, width: number): Float64Array[] {
  return Array.from({ length: rows }, (_, i) =>
    Float64Array.from(data.subarray((replica * rows + i) * width, (replica * rows + i + 1) * width)),
  );
}

/** Soft targets for cross-entropy: rows of positive weights summing to one. */
function softTargets(values: Float32Array, width: number): Float32Array {
  const y = Float32Array.from(values, (v) => Math.exp(2 * v));
  for (let r = 0; r < y.length / width; r++) {
    const row = y.subarray(r * width, (r + 1) * width);
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((v, j) => {
      row[j] = v / total;
    });
  }
  return y;
}

/** The loss closure of a model spec: loss(f(x), y), mean over the rows of the evaluation data. */
export function modelLoss(model: Model, kind: LossKind): LossClosure {
  const loss = lossFunction(kind);
  return (tape, params, { x, y }) => loss(tape, model.forward(tape, params, x), y);
}

/**
 * Any model spec of src/models on random data x [rows, features], y [rows, outputs] per replica
 * (soft targets for cross-entropy), parameters uniform in ±scale; reference by central differences
 * of the float64 CPU model in tests/helpers/cpu-models.ts.
 */
export function modelCase(
  name: string,
  spec: ModelSpec,
  kind: LossKind,
  rows: number,
  scale = 0.8,
  options: { fused?: boolean } = {},
): CurvatureCase {
  return {
    name,
    build(engine, replicas, seed) {
      const model = buildModel(spec);
      const random = seededRandom(seed);
      const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
      const din = model.inputFeatures;
      const dout = model.outputDim;
      const paramData = model.parameters.map((p) => f32Array(random, replicas * size(p.shape), scale));
      const xData = f32Array(random, replicas * rows * din, 1);
      const raw = f32Array(random, replicas * rows * dout, 1);
      const yData = kind === 'mse' ? raw : softTargets(raw, dout);
      const params = model.parameters.map((p, i) =>
        engine.tensor(paramData[i], p.shape, { batch: replicas }),
      );
      const data: EvaluationData = {
        x: engine.tensor(xData, [rows, din], { batch: replicas }),
        y: engine.tensor(yData, [rows, dout], { batch: replicas }),
      };
      const fused = options.fused ? fusedCurvature(spec, kind) : undefined;
      if (options.fused && !fused) throw new Error(`${name}: no fused curvature kernel for this model`);
      const operator = HessianOperator.create(engine, {
        params,
        loss: modelLoss(model, kind),
        evaluation: { data },
        fused,
      });
      const key = `${name}|${replicas}|${seed}`;
      const theta = (r: number) =>
        Float64Array.from(
          model.parameters.flatMap((p, i) =>
            Array.from(paramData[i].subarray(r * size(p.shape), (r + 1) * size(p.shape))),
          ),
        );
      return {
        operator,
        cpu: {
          samples: rows,
          theta,
          sampleLoss: (r, s, t) =>
            cpuLoss(spec, kind, t, [rowsOf(xData, r, rows, din)[s]], [rowsOf(yData, r, rows, dout)[s]]),
        },
        reference: async () =>
          cached(key, () =>
            Array.from({ length: replicas }, (_, r) => {
              const xs = rowsOf(xData, r, rows, din);
              const ys = rowsOf(yData, r, rows, dout);
              return centralHessian((t) => cpuLoss(spec, kind, t, xs, ys), theta(r)).map((row) =>
                Array.from(row),
              );
            }),
          ),
        dispose() {
          operator.dispose();
          for (const t of [...params, ...Object.values(data)]) t.dispose();
        },
      };
    },
  };
}

/** Every model of src/models, small enough for a dense float64 reference (n ≤ ~120 parameters). */
export const MODEL_CASES: CurvatureCase[] = [
  modelCase(
    'deep linear 3-4-3-2, MSE',
    { kind: 'deep-linear', inputDim: 3, hidden: [4, 3], outputDim: 2 },
    'mse',
    12,
  ),
  modelCase(
    'MLP tanh 3-6-4-2, MSE',
    { kind: 'mlp', inputDim: 3, hidden: [6, 4], outputDim: 2, activation: 'tanh' },
    'mse',
    12,
  ),
  modelCase(
    'MLP relu 3-8-3, cross-entropy',
    { kind: 'mlp', inputDim: 3, hidden: [8], outputDim: 3, activation: 'relu' },
    'cross-entropy',
    12,
  ),
  modelCase(
    'RNN tanh T=3, MSE',
    { kind: 'rnn', inputDim: 2, hidden: 4, outputDim: 2, sequenceLength: 3 },
    'mse',
    8,
  ),
  modelCase(
    'Transformer d=2, 2 heads, T=3, MSE',
    {
      kind: 'transformer',
      inputDim: 2,
      modelDim: 2,
      heads: 2,
      mlpHidden: 3,
      outputDim: 2,
      sequenceLength: 3,
    },
    'mse',
    6,
  ),
];

/**
 * Small fully connected models whose H·v runs in the fused kernel (src/kernels/fused-hvp.ts), against
 * the same float64 references: deep linear and MLP, both losses, identity, ReLU and tanh.
 */
export const FUSED_MODEL_CASES: CurvatureCase[] = [
  modelCase(
    'fused H·v: deep linear 3-4-3-2, MSE',
    { kind: 'deep-linear', inputDim: 3, hidden: [4, 3], outputDim: 2 },
    'mse',
    12,
    0.8,
    { fused: true },
  ),
  modelCase(
    'fused H·v: deep linear 3-3-3-3, cross-entropy',
    { kind: 'deep-linear', inputDim: 3, hidden: [3, 3], outputDim: 3 },
    'cross-entropy',
    12,
    0.8,
    { fused: true },
  ),
  modelCase(
    'fused H·v: MLP tanh 3-4-4-2, MSE',
    { kind: 'mlp', inputDim: 3, hidden: [4, 4], outputDim: 2, activation: 'tanh' },
    'mse',
    12,
    0.8,
    { fused: true },
  ),
  modelCase(
    'fused H·v: MLP relu 2-4-3, cross-entropy',
    { kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 3, activation: 'relu' },
    'cross-entropy',
    12,
    0.8,
    { fused: true },
  ),
];

/**
 * Small RNNs whose Hessian diagonal (the exact trace) comes from the fused kernel: both losses, an odd
 * shape and the anisotropy sweep's 8-4-8, T = 4 (92 parameters).
 */
export const FUSED_RNN_CASES: CurvatureCase[] = [
  modelCase(
    'fused diagonal: RNN 3-4-2, T=3, MSE',
    { kind: 'rnn', inputDim: 3, hidden: 4, outputDim: 2, sequenceLength: 3 },
    'mse',
    8,
    0.8,
    { fused: true },
  ),
  modelCase(
    'fused diagonal: RNN 2-3-5, T=4, cross-entropy',
    { kind: 'rnn', inputDim: 2, hidden: 3, outputDim: 5, sequenceLength: 4 },
    'cross-entropy',
    8,
    0.8,
    { fused: true },
  ),
  modelCase(
    'fused diagonal: RNN 8-4-8, T=4, MSE',
    { kind: 'rnn', inputDim: 8, hidden: 4, outputDim: 8, sequenceLength: 4 },
    'mse',
    6,
    0.5,
    { fused: true },
  ),
];

/** Spectra for the quadratic cases (n values each). */
export const SPECTRA = {
  /** Well separated top five above a bulk in [0, 1]. */
  separated: (n: number, replica = 0): number[] => [
    ...[10, 7, 5, 3.5, 2.5].map((v) => v * (1 + 0.1 * replica)),
    ...Array.from({ length: n - 5 }, (_, i) => (i / (n - 5)) * (1 + 0.1 * replica)),
  ],
  /** A top cluster of five eigenvalues 1e-3 apart (relative), then a bulk in [0, 5]. */
  clustered: (n: number): number[] => [
    ...[10, 9.99, 9.98, 9.97, 9.96],
    ...Array.from({ length: n - 5 }, (_, i) => 5 * (1 - i / (n - 5))),
  ],
  /** Indefinite: top five positive, a negative tail down to −8, zero in the middle. */
  indefinite: (n: number): number[] => [
    ...[6, 5.5, 5, 4.6, 4.2],
    ...[-8, -7.5, -7, -6.6, -6.2],
    ...Array.from({ length: n - 10 }, (_, i) => -3 + (6 * i) / (n - 10)),
  ],
};
