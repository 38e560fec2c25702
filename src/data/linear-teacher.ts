/**
 * Linear teacher y = V x + ε with x ~ N(0, Σ_x), ε ~ N(0, Σ_ε), sampled on the GPU from
 * (seed, replica, step): every replica gets its own fresh minibatch each step (online SGD), and any
 * step can be regenerated exactly.
 */
import { matmul } from '../kernels/matmul.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { Matrix } from '../theory/linalg.ts';
import { parseMatrix } from '../theory/validate.ts';
import {
  checkRows,
  type DataSource,
  type GaussianSource,
  type SampleRequest,
  STREAM_INPUTS,
  STREAM_LABEL_NOISE,
  type TeacherNoiseSpec,
  teacherStreams,
} from './source.ts';

export { STREAM_INPUTS, STREAM_LABEL_NOISE };

export interface LinearTeacherSpec extends TeacherNoiseSpec {
  /** m×d teacher. */
  V: Matrix;
}

export class LinearTeacher implements DataSource {
  readonly inputFeatures: number;
  readonly outputDim: number;
  /** V (m × d). */
  readonly teacher: Tensor;
  readonly inputs: GaussianSource;
  readonly noise: GaussianSource;

  /** Validates the spec (errors name the field) before any GPU work. */
  constructor(
    private readonly engine: Engine,
    spec: LinearTeacherSpec,
  ) {
    const V = parseMatrix(spec.V, 'V');
    this.outputDim = V.length;
    this.inputFeatures = V[0].length;
    const streams = teacherStreams(engine, spec, { inputs: this.inputFeatures, outputs: this.outputDim });
    this.inputs = streams.inputs;
    this.noise = streams.noise;
    this.teacher = engine.tensor(V.flat(), [this.outputDim, this.inputFeatures], { label: 'teacher V' });
  }

  /** A minibatch for every replica at `step`: x [rows, d] and y [rows, m], batch `replicas`. */
  sample(request: SampleRequest): { x: Tensor; y: Tensor } {
    checkRows(request.rows);
    const x = this.inputs.draw(request);
    const y = this.noise.draw(request);
    matmul(this.engine, x, this.teacher, { transposeB: true, beta: 1, out: y });
    return { x, y };
  }

  dispose(): void {
    this.teacher.dispose();
    this.inputs.dispose();
    this.noise.dispose();
  }
}
