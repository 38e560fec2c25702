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
import {
  checkRows,
  type DataSource,
  type GaussianSource,
  type SampleRequest,
  type TeacherNoiseSpec,
  teacherStreams,
} from './source.ts';

/** Sequences (RNN, Transformer): Σ_x covers one time step's features; all T·d are drawn i.i.d. so. */
export interface TeacherStudentSpec extends TeacherNoiseSpec {
  teacher: ModelSpec;
  /** Initialisation of the teacher's weights (default Kaiming for MLPs, Xavier otherwise). */
  teacherInit?: InitScheme;
  /** Seed of the teacher's weights; one teacher is shared by every replica and seed. */
  teacherSeed: number;
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
    this.teacher = buildModel(spec.teacher, 'teacher');
    this.inputFeatures = this.teacher.inputFeatures;
    this.outputDim = this.teacher.outputDim;
    if (!Number.isInteger(spec.teacherSeed) || spec.teacherSeed < 0) {
      throw new InputError('teacherSeed', `must be a non-negative integer, got ${spec.teacherSeed}`);
    }
    const streams = teacherStreams(engine, spec, { inputs: this.inputFeatures, outputs: this.outputDim });
    this.inputs = streams.inputs;
    this.noise = streams.noise;
    const scheme =
      spec.teacherInit ?? (spec.teacher.kind === 'mlp' ? { kind: 'kaiming' } : { kind: 'xavier' });
    this.teacherParams = initParameters(engine, this.teacher, scheme, {
      replicas: 1,
      seed: spec.teacherSeed,
      replicaOffset: 0xfffff,
    });
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
