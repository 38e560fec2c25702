/**
 * Teacher–student data: a fixed random teacher network (the same family as the student, usually
 * wider) labels Gaussian inputs, and label noise ε ~ N(0, Σ_ε) is added: y = teacher(x) + ε.
 * Sequence tasks are the same with an RNN or Transformer teacher and inputs of T·d features.
 */
import { Tape } from '../autodiff/tape.ts';
import { InputError } from '../errors.ts';
import { type InitScheme, initParameters } from '../models/init.ts';
import { buildModel, type Model, type ModelSpec } from '../models/model.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { Matrix } from '../theory/linalg.ts';
import {
  checkRows,
  covarianceRoot,
  type DataSource,
  GaussianSource,
  identity,
  perReplica,
  type SampleRequest,
  STREAM_INPUTS,
  STREAM_LABEL_NOISE,
} from './source.ts';

export interface TeacherStudentSpec {
  teacher: ModelSpec;
  /** Initialisation of the teacher's weights (default Kaiming for MLPs, Xavier otherwise). */
  teacherInit?: InitScheme;
  /** Seed of the teacher's weights; one teacher is shared by every replica and seed. */
  teacherSeed: number;
  /** Covariance of each input feature vector (d×d; identity when omitted). Sequences: per step. */
  sigmaX?: Matrix | readonly Matrix[];
  /** One per replica, or one for all. */
  sigmaEps: Matrix | readonly Matrix[];
}

export class TeacherStudent implements DataSource {
  readonly inputFeatures: number;
  readonly outputDim: number;
  readonly teacher: Model;
  /** The teacher's weights (batch 1, shared by every replica). */
  readonly teacherParams: Tensor[];
  readonly inputs: GaussianSource;
  readonly noise: GaussianSource;

  constructor(
    private readonly engine: Engine,
    spec: TeacherStudentSpec,
  ) {
    this.teacher = buildModel(spec.teacher, 'data.teacher');
    this.inputFeatures = this.teacher.inputFeatures;
    this.outputDim = this.teacher.outputDim;
    if (!Number.isInteger(spec.teacherSeed) || spec.teacherSeed < 0) {
      throw new InputError('data.teacherSeed', `must be a non-negative integer, got ${spec.teacherSeed}`);
    }
    // Sequences draw all T·d features i.i.d. with Σ_x per time step; here Σ_x covers one row.
    const rootX =
      spec.sigmaX === undefined
        ? identity(this.inputFeatures)
        : perReplica(spec.sigmaX).map((s) => covarianceRoot(s, this.inputFeatures, 'data.sigmaX', 'Σ_x'));
    const rootEps = perReplica(spec.sigmaEps).map((s) =>
      covarianceRoot(s, this.outputDim, 'data.sigmaEps', 'Σ_ε'),
    );
    const scheme =
      spec.teacherInit ?? (spec.teacher.kind === 'mlp' ? { kind: 'kaiming' } : { kind: 'xavier' });
    this.teacherParams = initParameters(engine, this.teacher, scheme, {
      replicas: 1,
      seed: spec.teacherSeed,
      replicaOffset: 0xfffff,
    });
    this.inputs = new GaussianSource(engine, rootX, STREAM_INPUTS, '√Σx');
    this.noise = new GaussianSource(engine, rootEps, STREAM_LABEL_NOISE, '√Σε');
  }

  /** Noise-free teacher outputs for given inputs (batch of x). */
  label(x: Tensor): Tensor {
    const tape = new Tape(this.engine);
    const out = this.teacher.forward(
      tape,
      this.teacherParams.map((p) => tape.constant(p)),
      tape.constant(x),
    );
    const y = tape.keep(out);
    tape.dispose();
    return y;
  }

  sample(request: SampleRequest): { x: Tensor; y: Tensor } {
    checkRows(request.rows);
    const x = this.inputs.draw(request);
    const y = this.label(x);
    this.noise.draw(request, y);
    return { x, y };
  }

  dispose(): void {
    for (const p of this.teacherParams) p.dispose();
    this.inputs.dispose();
    this.noise.dispose();
  }
}
