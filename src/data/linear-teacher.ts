/**
 * Linear teacher y = V x + ε with x ~ N(0, Σ_x), ε ~ N(0, Σ_ε), sampled on the GPU from
 * (seed, replica, step): every replica gets its own fresh minibatch each step (online SGD), and any
 * step can be regenerated exactly.
 */
import { InputError } from '../errors.ts';
import { matmul } from '../kernels/matmul.ts';
import { randomNormal } from '../kernels/rng.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { type Matrix, sqrtSym, toMl, toRows } from '../theory/linalg.ts';
import { checkCovariance, parseMatrix } from '../theory/validate.ts';

/** Random streams of the data pipeline (other users of the RNG take other stream numbers). */
export const STREAM_INPUTS = 1;
export const STREAM_LABEL_NOISE = 2;

export interface LinearTeacherSpec {
  /** m×d teacher. */
  V: Matrix;
  /** d×d, symmetric positive definite; identity when omitted. */
  sigmaX?: Matrix;
  /** m×m, symmetric positive definite. */
  sigmaEps: Matrix;
}

export class LinearTeacher {
  readonly inputDim: number;
  readonly outputDim: number;
  private readonly teacher: Tensor;
  private readonly sqrtSigmaX: Tensor;
  private readonly sqrtSigmaEps: Tensor;

  /** Validates the spec (errors name the field) before any GPU work. */
  constructor(
    private readonly engine: Engine,
    spec: LinearTeacherSpec,
  ) {
    const V = parseMatrix(spec.V, 'V');
    this.outputDim = V.length;
    this.inputDim = V[0].length;
    const identity = Array.from({ length: this.inputDim }, (_, i) =>
      Array.from({ length: this.inputDim }, (_, j) => (i === j ? 1 : 0)),
    );
    const sigmaX =
      spec.sigmaX === undefined
        ? identity
        : checkCovariance(parseMatrix(spec.sigmaX, 'sigmaX'), this.inputDim, 'sigmaX', 'Σ_x');
    const sigmaEps = checkCovariance(
      parseMatrix(spec.sigmaEps, 'sigmaEps'),
      this.outputDim,
      'sigmaEps',
      'Σ_ε',
    );
    // Symmetric square roots S with S Sᵀ = Σ colour the standard normals.
    const flat = (m: Matrix) => m.flat();
    this.teacher = engine.tensor(flat(V), [this.outputDim, this.inputDim], { label: 'teacher V' });
    this.sqrtSigmaX = engine.tensor(flat(toRows(sqrtSym(toMl(sigmaX)))), [this.inputDim, this.inputDim], {
      label: '√Σx',
    });
    this.sqrtSigmaEps = engine.tensor(
      flat(toRows(sqrtSym(toMl(sigmaEps)))),
      [this.outputDim, this.outputDim],
      { label: '√Σε' },
    );
  }

  /**
   * A minibatch for every replica at `step`: x [rows, d] and y [rows, m], batch `replicas`.
   * `replicaOffset` keeps a replica's stream when it runs in a smaller job (shards, checks).
   */
  sample(options: { seed: number; step: number; rows: number; replicas: number; replicaOffset?: number }): {
    x: Tensor;
    y: Tensor;
  } {
    const { seed, step, rows, replicas } = options;
    if (!Number.isInteger(rows) || rows < 1)
      throw new InputError('batchSize', `must be a positive integer, got ${rows}`);
    const position = { seed, counter: step, replicaOffset: options.replicaOffset ?? 0 };
    const z = randomNormal(
      this.engine,
      [rows, this.inputDim],
      { ...position, stream: STREAM_INPUTS },
      { batch: replicas },
    );
    const x = matmul(this.engine, z, this.sqrtSigmaX, { transposeB: true });
    const noise = randomNormal(
      this.engine,
      [rows, this.outputDim],
      { ...position, stream: STREAM_LABEL_NOISE },
      { batch: replicas },
    );
    const y = matmul(this.engine, noise, this.sqrtSigmaEps, { transposeB: true });
    matmul(this.engine, x, this.teacher, { transposeB: true, beta: 1, out: y });
    z.dispose();
    noise.dispose();
    return { x, y };
  }

  dispose(): void {
    for (const t of [this.teacher, this.sqrtSigmaX, this.sqrtSigmaEps]) t.dispose();
  }
}
