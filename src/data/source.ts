import { positiveInteger } from '../errors.ts';
import { gatherRows } from '../kernels/gather.ts';
import { matmul } from '../kernels/matmul.ts';
import { randomIntegers, randomNormal } from '../kernels/rng.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { type Matrix, sqrtSym, toMl, toRows } from '../theory/linalg.ts';
import { checkCovariance, parseMatrix } from '../theory/validate.ts';

/** Random streams of the data pipeline (initialisation uses 3, curvature probes their own). */
export const STREAM_INPUTS = 1;
export const STREAM_LABEL_NOISE = 2;
export const STREAM_MINIBATCH = 4;

export interface SampleRequest {
  seed: number;
  /** Training step: with the seed and replica it fixes the minibatch. */
  step: number;
  rows: number;
  replicas: number;
  /** Index of the first replica within the whole run (keeps each replica's stream in sub-jobs). */
  replicaOffset?: number;
}

/** Where minibatches come from: x [rows, inputFeatures], y [rows, outputDim], batch `replicas`. */
export interface DataSource {
  readonly inputFeatures: number;
  readonly outputDim: number;
  sample(request: SampleRequest): { x: Tensor; y: Tensor };
  dispose(): void;
}

export function checkRows(rows: number, field = 'batchSize'): void {
  positiveInteger(field, rows);
}

export function identity(n: number): Matrix {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

/**
 * One matrix, or one per replica collapsed to a single shared matrix when they are all equal (a
 * batch-1 operand is broadcast by the matmul, the cheaper case).
 */
export function perReplica(value: Matrix | readonly Matrix[]): Matrix[] {
  const list = isMatrixList(value) ? [...value] : [value as Matrix];
  if (list.length === 0) throw new Error('no matrices');
  const first = JSON.stringify(list[0]);
  return list.every((m) => JSON.stringify(m) === first) ? [list[0]] : list;
}

function isMatrixList(value: Matrix | readonly Matrix[]): value is readonly Matrix[] {
  return Array.isArray(value[0]?.[0]);
}

/** Validated symmetric square root S (S Sᵀ = Σ) of a covariance given as a matrix. */
export function covarianceRoot(raw: unknown, n: number, field: string, what: string): Matrix {
  return toRows(sqrtSym(toMl(checkCovariance(parseMatrix(raw, field), n, field, what))));
}

/**
 * Validated square roots of the label-noise covariance Σ_ε (m × m), one per replica or one for all.
 * Errors name the spec's own field, `sigmaEps`.
 */
export function labelNoiseRoots(sigmaEps: Matrix | readonly Matrix[], outputs: number): Matrix[] {
  return perReplica(sigmaEps).map((s) => covarianceRoot(s, outputs, 'sigmaEps', 'Σ_ε'));
}

/** The Gaussian part of a teacher's data spec (linear teacher, teacher–student). */
export interface TeacherNoiseSpec {
  /** Covariance of each input row (d×d, symmetric positive definite; identity when omitted). One per replica, or one for all. */
  sigmaX?: Matrix | readonly Matrix[];
  /** Label-noise covariance (m×m, symmetric positive definite). One per replica, or one for all. */
  sigmaEps: Matrix | readonly Matrix[];
}

/**
 * A teacher's random streams: inputs x ~ N(0, Σ_x) (identity when Σ_x is omitted; sequences: per
 * time step) and label noise ε ~ N(0, Σ_ε). Both covariances are checked before any buffer is made;
 * errors name the spec's own fields, `sigmaX` and `sigmaEps`.
 */
export function teacherStreams(
  engine: Engine,
  spec: TeacherNoiseSpec,
  shape: { inputs: number; outputs: number },
): { inputs: GaussianSource; noise: GaussianSource } {
  const rootX =
    spec.sigmaX === undefined
      ? identity(shape.inputs)
      : perReplica(spec.sigmaX).map((s) => covarianceRoot(s, shape.inputs, 'sigmaX', 'Σ_x'));
  const rootEps = labelNoiseRoots(spec.sigmaEps, shape.outputs);
  return {
    inputs: new GaussianSource(engine, rootX, STREAM_INPUTS, '√Σx'),
    noise: new GaussianSource(engine, rootEps, STREAM_LABEL_NOISE, '√Σε'),
  };
}

/**
 * Coloured Gaussian noise z·Sᵀ with S Sᵀ = Σ, drawn from (seed, stream, replica, step): the label
 * noise ε ~ N(0, Σ_ε) and correlated inputs x ~ N(0, Σ_x) both use it. Given one root per replica
 * (groups with different noise trained as one batch), replica r is coloured by its own S_r.
 */
export class GaussianSource {
  readonly dim: number;
  /** S (dim × dim, row-major), with S Sᵀ = Σ; batch 1 when shared, else one per replica. */
  readonly root: Tensor;

  constructor(
    private readonly engine: Engine,
    root: Matrix | readonly Matrix[],
    private readonly stream: number,
    label: string,
  ) {
    const roots = perReplica(root);
    this.dim = roots[0].length;
    this.root = engine.tensor(
      roots.flatMap((r) => r.flat()),
      [this.dim, this.dim],
      { label, batch: roots.length },
    );
  }

  /** Fresh samples [rows, dim] per replica; with `addTo`, accumulates into it instead. */
  draw(request: SampleRequest, addTo?: Tensor): Tensor {
    if (this.root.batch !== 1 && this.root.batch !== request.replicas) {
      throw new Error(`${this.root.batch} noise roots for ${request.replicas} replicas`);
    }
    const z = randomNormal(
      this.engine,
      [request.rows, this.dim],
      {
        seed: request.seed,
        stream: this.stream,
        counter: request.step,
        replicaOffset: request.replicaOffset,
      },
      { batch: request.replicas },
    );
    const out = matmul(this.engine, z, this.root, {
      transposeB: true,
      ...(addTo ? { out: addTo, beta: 1 } : {}),
    });
    z.dispose();
    return out;
  }

  dispose(): void {
    this.root.dispose();
  }
}

/**
 * Rows drawn with replacement from stored tables (all with `size` rows): one set of indices from
 * (seed, minibatch stream, replica, step) gathers the same rows of every table.
 */
export function drawRows(
  engine: Engine,
  tables: readonly Tensor[],
  size: number,
  request: SampleRequest,
): Tensor[] {
  const index = randomIntegers(
    engine,
    [request.rows],
    size,
    {
      seed: request.seed,
      stream: STREAM_MINIBATCH,
      counter: request.step,
      replicaOffset: request.replicaOffset,
    },
    { batch: request.replicas },
  );
  const rows = tables.map((table) => gatherRows(engine, table, index));
  index.dispose();
  return rows;
}
