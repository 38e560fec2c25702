/** The model/data set-ups the training and HVP benchmarks share (the paper's presets at bench size). */

import { LinearTeacher } from '../src/data/linear-teacher.ts';
import { type DigitSet, NoisyMnist } from '../src/data/mnist.ts';
import type { DataSource } from '../src/data/source.ts';
import { TeacherStudent } from '../src/data/teacher-student.ts';
import type { LossKind } from '../src/models/losses.ts';
import { buildModel, type Model, type ModelSpec } from '../src/models/model.ts';
import type { Engine } from '../src/tensor/engine.ts';
import type { BenchContext } from './suite.ts';

export interface BenchSetup {
  name: string;
  model: Model;
  loss: LossKind;
  batchSize: number;
  data: (engine: Engine) => DataSource;
  /** The model that labels fresh data every step (its forward counts in a step's flops), if any. */
  teacher?: ModelSpec;
}

const diag = (values: number[]) => values.map((v, i) => values.map((_, j) => (i === j ? v : 0)));

/** The deep linear preset's teacher: V = I₂, √Σ_ε = diag(10, 0.1) (anisotropic, as sharpening-linear). */
export const LINEAR_TEACHER = { V: diag([1, 1]), noiseStd: [10, 0.1] };

const sequenceTeacher = (student: ModelSpec, teacher: ModelSpec) => ({ student, teacher });

/** The MNIST digits the host handed in (read when a set-up's data is made, not before). */
function digits(host: Pick<BenchContext, 'mnistDigits'>): DigitSet {
  if (!host.mnistDigits) throw new Error('the MNIST set-up needs the digits, and this host gave none');
  return host.mnistDigits().train;
}

/** The set-ups, with `host` giving the MNIST digits (the bench command in Node reads them). */
export function benchSetups(host: Pick<BenchContext, 'mnistDigits'>): BenchSetup[] {
  const rnn = sequenceTeacher(
    { kind: 'rnn', inputDim: 8, hidden: 4, outputDim: 8, sequenceLength: 4 },
    { kind: 'rnn', inputDim: 8, hidden: 100, outputDim: 8, sequenceLength: 4 },
  );
  const transformer = sequenceTeacher(
    {
      kind: 'transformer',
      inputDim: 8,
      modelDim: 8,
      heads: 2,
      mlpHidden: 4,
      outputDim: 8,
      sequenceLength: 4,
    },
    {
      kind: 'transformer',
      inputDim: 8,
      modelDim: 8,
      heads: 2,
      mlpHidden: 100,
      outputDim: 8,
      sequenceLength: 4,
    },
  );
  const mlpTeacher: ModelSpec = { kind: 'mlp', inputDim: 2, hidden: [100], outputDim: 2, activation: 'relu' };
  const noise8 = diag([16, 0.0016, 16, 0.0016, 16, 0.0016, 16, 0.0016]);
  return [
    {
      name: 'deep linear D=3, d=2',
      model: buildModel({ kind: 'deep-linear', inputDim: 2, hidden: [2, 2], outputDim: 2 }),
      loss: 'mse',
      batchSize: 10,
      // y = V x + ε: one 2 × 2 product per sample.
      teacher: { kind: 'deep-linear', inputDim: 2, hidden: [], outputDim: 2 },
      data: (engine) =>
        new LinearTeacher(engine, {
          V: LINEAR_TEACHER.V,
          sigmaEps: diag(LINEAR_TEACHER.noiseStd.map((s) => s * s)),
        }),
    },
    {
      name: 'teacher-student MLP 2-4-2',
      model: buildModel({ kind: 'mlp', inputDim: 2, hidden: [4], outputDim: 2, activation: 'relu' }),
      loss: 'mse',
      batchSize: 100,
      teacher: mlpTeacher,
      data: (engine) =>
        new TeacherStudent(engine, {
          teacher: mlpTeacher,
          teacherSeed: 1,
          sigmaEps: diag([9, 0.0009]),
        }),
    },
    {
      name: 'MNIST MLP 784-128-10',
      model: buildModel({ kind: 'mlp', inputDim: 784, hidden: [128], outputDim: 10, activation: 'relu' }),
      loss: 'cross-entropy',
      batchSize: 128,
      data: (engine) => new NoisyMnist(engine, digits(host), diag([100, 100, 100, 100, 100, 1, 1, 1, 1, 1])),
    },
    {
      name: 'RNN 8-4-8, T=4',
      model: buildModel(rnn.student),
      loss: 'mse',
      batchSize: 300,
      teacher: rnn.teacher,
      data: (engine) =>
        new TeacherStudent(engine, { teacher: rnn.teacher, teacherSeed: 1, sigmaEps: noise8 }),
    },
    {
      name: 'Transformer d=8, 2 heads, T=4',
      model: buildModel(transformer.student),
      loss: 'mse',
      batchSize: 300,
      teacher: transformer.teacher,
      data: (engine) =>
        new TeacherStudent(engine, { teacher: transformer.teacher, teacherSeed: 1, sigmaEps: noise8 }),
    },
  ];
}
