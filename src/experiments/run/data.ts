/** A batch's data: the training source, and the held-out digits of MNIST groups. */
import { ArrayDataset } from '../../data/arrays.ts';
import { LinearTeacher } from '../../data/linear-teacher.ts';
import { type DigitSet, MNIST_CLASSES, MNIST_PIXELS, NoisyMnist } from '../../data/mnist.ts';
import { SoftmaxTargets } from '../../data/soft-targets.ts';
import type { DataSource } from '../../data/source.ts';
import { TeacherStudent } from '../../data/teacher-student.ts';
import type { Engine, Tensor } from '../../tensor/engine.ts';
import type { ExperimentHooks } from './hooks.ts';
import { hasLabelNoise, perSlot, type ReplicaBatch } from './plan.ts';

function buildSource(
  engine: Engine,
  batch: ReplicaBatch,
  hooks: ExperimentHooks,
  split: 'train' | 'test',
): DataSource {
  const { resolved } = batch.members[0].group;
  const data = resolved.data;
  const sigmaEps = perSlot(batch, (m) => m.group.sigmaEps);
  const sigmaX = perSlot(batch, (m) => m.group.sigmaX ?? []);
  const inputCovariance = sigmaX.some((s) => s.length === 0) ? undefined : sigmaX;
  switch (data.kind) {
    case 'linear-teacher':
      return new LinearTeacher(engine, { V: data.V, sigmaX: inputCovariance, sigmaEps });
    case 'teacher-student':
      return new TeacherStudent(engine, {
        teacher: data.teacher,
        teacherSeed: data.teacherSeed,
        sigmaX: inputCovariance,
        sigmaEps,
      });
    case 'mnist': {
      if (!hooks.mnist) throw new Error('this host provides no MNIST digits (hooks.mnist)');
      return new NoisyMnist(engine, hooks.mnist()[split], sigmaEps);
    }
    case 'file': {
      if (!hooks.dataFiles) throw new Error('this host reads no data files (hooks.dataFiles)');
      const tables = hooks.dataFiles(batch.members[0].groupIndex);
      // Label noise is all or nothing within a batch (see batchKey).
      return new ArrayDataset(engine, tables.x, tables.y, {
        sigmaEps: hasLabelNoise(batch.members[0].group) ? sigmaEps : undefined,
        xField: tables.xField,
        yField: tables.yField,
      });
    }
  }
}

/** The batch's data source; cross-entropy on regression data trains against softmax(noisy label). */
export function buildData(
  engine: Engine,
  batch: ReplicaBatch,
  hooks: ExperimentHooks,
  split: 'train' | 'test',
): DataSource {
  const source = buildSource(engine, batch, hooks, split);
  const { resolved } = batch.members[0].group;
  // File data without noise is taken as given (cross-entropy targets: rows of probabilities).
  const regression =
    resolved.data.kind !== 'mnist' &&
    (resolved.data.kind !== 'file' || hasLabelNoise(batch.members[0].group));
  return resolved.loss === 'cross-entropy' && regression ? new SoftmaxTargets(engine, source) : source;
}

/** The first `evaluationSamples` test digits (all when fewer) with one-hot targets of their labels. */
export function heldOutDigits(
  engine: Engine,
  digits: DigitSet,
  resolved: { measure: { evaluationSamples: number } },
): { x: Tensor; y: Tensor; samples: number } {
  const samples = Math.min(resolved.measure.evaluationSamples, digits.labels.length);
  const oneHot = new Float32Array(samples * MNIST_CLASSES);
  for (let i = 0; i < samples; i++) oneHot[i * MNIST_CLASSES + digits.labels[i]] = 1;
  return {
    x: engine.tensor(digits.images.subarray(0, samples * MNIST_PIXELS), [samples, MNIST_PIXELS], {
      label: 'held-out digits',
    }),
    y: engine.tensor(oneHot, [samples, MNIST_CLASSES], { label: 'held-out labels' }),
    samples,
  };
}
