/**
 * Runs an experiment: every group trains its seeds as one batch of replicas; at each log point the
 * loss, sharpness (Hessian trace), λ_max, gradient fluctuation and layer condition numbers are
 * measured on a fixed evaluation set, and linear-teacher deep linear groups get the theory values.
 * Output is tidy rows (experiment, group, seed, step, metric, value; seed = 'theory' for theory).
 */
import {
  denseHessianEigenvalues,
  exactTrace,
  gradientFluctuation,
  HessianOperator,
  hessianTrace,
  type LossClosure,
  topEigenvalues,
} from '../curvature/index.ts';
import { FixedDataset } from '../data/fixed.ts';
import { LinearTeacher } from '../data/linear-teacher.ts';
import { type DigitSet, NoisyMnist } from '../data/mnist.ts';
import { SoftmaxTargets } from '../data/soft-targets.ts';
import type { DataSource } from '../data/source.ts';
import { TeacherStudent } from '../data/teacher-student.ts';
import { InputError } from '../errors.ts';
import { initParameters } from '../models/init.ts';
import { lossFunction } from '../models/losses.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import { type DivergenceReport, train } from '../train/trainer.ts';
import {
  type ExperimentConfig,
  layerConditionMetric,
  type ValidatedGroup,
  validateExperiment,
} from './config.ts';
import type { ResultRow } from './results.ts';
import { conditionNumber, theoryRows } from './theory-rows.ts';

export type { ResultRow };

export interface ExperimentProgress {
  group: string;
  groupIndex: number;
  groups: number;
  /** Steps done in this group and in the whole experiment. */
  step: number;
  steps: number;
  done: number;
  total: number;
}

/**
 * Everything needed to continue a run from a log point: the counter-based RNG makes the continuation
 * identical to an uninterrupted run (same minibatches, noise and probes at every later step).
 */
export interface Checkpoint {
  version: 1;
  experiment: string;
  /** Group being trained, and the next step it will take. */
  groupIndex: number;
  step: number;
  /** Its parameters, one array per parameter tensor (all replicas, replica-major). */
  params: number[][];
  /** Rows and divergences of everything done so far (earlier groups included). */
  rows: ResultRow[];
  divergences: ExperimentOutcome['divergences'];
}

export interface ExperimentHooks {
  /** The digits for MNIST groups (the host loads them; src/ reads no files). */
  mnist?: () => { train: DigitSet; test: DigitSet };
  onProgress?: (progress: ExperimentProgress) => void;
  /** Called at every log point (after its measurements) with a resumable state. */
  checkpoint?: (state: Checkpoint) => void | Promise<void>;
  /** Continue from this state instead of starting afresh. */
  resume?: Checkpoint;
}

export interface ExperimentOutcome {
  rows: ResultRow[];
  divergences: (DivergenceReport & { group: string })[];
}

/** Up to this many parameters the dense Hessian gives trace and λ_max exactly (n HVPs, batched). */
export const DENSE_MAX_PARAMETERS = 64;
/** Parameters up to this count get the exact trace (n HVPs); larger models Hutchinson's estimate. */
export const EXACT_TRACE_MAX_PARAMETERS = 256;
const DEFAULT_PROBES = 16;
const DEFAULT_LANCZOS_STEPS = 30;
/** Loss above this (or NaN/Inf) marks a replica diverged (the trainer's default bound). */
const DIVERGENCE_BOUND = 1e6;
/** Seed offset of the evaluation set, so it never coincides with a training minibatch. */
const EVALUATION_SEED_OFFSET = 0x5eed;

function buildSource(
  engine: Engine,
  group: ValidatedGroup,
  hooks: ExperimentHooks,
  split: 'train' | 'test',
): DataSource {
  const { resolved, sigmaX, sigmaEps } = group;
  const data = resolved.data;
  switch (data.kind) {
    case 'linear-teacher':
      return new LinearTeacher(engine, { V: data.V, sigmaX, sigmaEps });
    case 'teacher-student':
      return new TeacherStudent(engine, {
        teacher: data.teacher,
        teacherSeed: data.teacherSeed,
        sigmaX,
        sigmaEps,
      });
    case 'mnist': {
      if (!hooks.mnist) throw new Error('this host provides no MNIST digits (hooks.mnist)');
      return new NoisyMnist(engine, hooks.mnist()[split], sigmaEps);
    }
  }
}

/** The group's data source; cross-entropy on regression data trains against softmax(noisy label). */
function buildData(
  engine: Engine,
  group: ValidatedGroup,
  hooks: ExperimentHooks,
  split: 'train' | 'test',
): DataSource {
  const source = buildSource(engine, group, hooks, split);
  const regression = group.resolved.data.kind !== 'mnist';
  return group.resolved.loss === 'cross-entropy' && regression ? new SoftmaxTargets(engine, source) : source;
}

/** Runs every group of a validated config; `rows` are ready for results.csv. */
export async function runExperiment(
  engine: Engine,
  config: ExperimentConfig,
  hooks: ExperimentHooks = {},
): Promise<ExperimentOutcome> {
  const groups = validateExperiment(config);
  const resume = hooks.resume;
  if (
    resume &&
    (resume.version !== 1 || resume.experiment !== config.name || resume.groupIndex >= groups.length)
  ) {
    throw new InputError(
      '--resume',
      `the checkpoint belongs to another run (experiment '${resume.experiment}', group ${resume.groupIndex})`,
    );
  }
  const rows: ResultRow[] = resume ? [...resume.rows] : [];
  const divergences: ExperimentOutcome['divergences'] = resume ? [...resume.divergences] : [];
  const total = groups.reduce((sum, g) => sum + g.resolved.train.steps, 0);
  let done = resume
    ? groups.slice(0, resume.groupIndex).reduce((sum, g) => sum + g.resolved.train.steps, 0) + resume.step
    : 0;
  for (const [groupIndex, group] of groups.entries()) {
    if (resume && groupIndex < resume.groupIndex) continue;
    const startStep = resume && groupIndex === resume.groupIndex ? resume.step : 0;
    const { resolved, model } = group;
    const name = resolved.group;
    // Replicas whose loss blew up: their later measurements are NaN (see `quarantine`).
    const diverged = new Set<number>();
    const add = (seed: number | 'theory', step: number, metric: string, value: number) => {
      const lost = typeof seed === 'number' && diverged.has(seed) && metric !== 'loss';
      rows.push({
        experiment: config.name,
        group: name,
        seed,
        step,
        metric,
        value: lost ? Number.NaN : value,
      });
    };
    const replicas = resolved.seeds;
    const source = buildData(engine, group, hooks, 'train');
    const data = resolved.trainingSetSize
      ? FixedDataset.fromSource(engine, source, resolved.trainingSetSize, resolved.seed)
      : source;
    const evaluationSource =
      resolved.data.kind === 'mnist' ? buildData(engine, group, hooks, 'test') : source;
    const evaluation = evaluationSource.sample({
      seed: resolved.seed + EVALUATION_SEED_OFFSET,
      step: 0,
      rows: resolved.measure.evaluationSamples,
      replicas,
    });
    const params = initParameters(engine, model, resolved.init, { replicas, seed: resolved.seed });
    if (startStep > 0 && resume) {
      if (
        resume.params.length !== params.length ||
        resume.params.some((values, i) => values.length !== params[i].length)
      ) {
        throw new InputError('--resume', 'the checkpoint parameters do not match the model of this group');
      }
      resume.params.forEach((values, i) => {
        engine.write(params[i], values);
      });
    }
    const lossOf = lossFunction(resolved.loss);
    const closure: LossClosure = (tape, vars, d) => lossOf(tape, model.forward(tape, vars, d.x), d.y);
    const operator = HessianOperator.create(engine, {
      params,
      loss: closure,
      evaluation: { data: { x: evaluation.x, y: evaluation.y } },
    });
    const metrics = new Set(resolved.measure.metrics);
    /**
     * Curvature runs all replicas in lockstep; a diverged replica's non-finite weights would poison
     * the shared eigen-solves, so its weights are zeroed (it is already reported and its rows are NaN).
     */
    const quarantine = async (loss: Float32Array) => {
      const fresh: number[] = [];
      loss.forEach((v, r) => {
        if ((!Number.isFinite(v) || Math.abs(v) > DIVERGENCE_BOUND) && !diverged.has(r)) fresh.push(r);
      });
      if (fresh.length === 0) return;
      for (const r of fresh) diverged.add(r);
      for (const p of params) {
        const values = (await p.read()) as Float32Array;
        for (const r of diverged) values.fill(0, r * p.size, (r + 1) * p.size);
        engine.write(p, values);
      }
    };
    const measure = async (step: number, loss: Float32Array) => {
      await quarantine(loss);
      if (metrics.has('loss'))
        loss.forEach((v, r) => {
          add(r, step, 'loss', v);
        });
      const curvature = metrics.has('sharpness') || metrics.has('lambdaMax');
      if (curvature && operator.size <= DENSE_MAX_PARAMETERS) {
        // Small models: the whole Hessian from one round of batched HVPs gives the exact trace and
        // λ_max (float64 eigenvalues) at once.
        const eigenvalues = await denseHessianEigenvalues(operator);
        eigenvalues.forEach((values, r) => {
          if (metrics.has('sharpness'))
            add(
              r,
              step,
              'sharpness',
              values.reduce((a, b) => a + b, 0),
            );
          if (metrics.has('lambdaMax')) add(r, step, 'lambdaMax', values[values.length - 1]);
        });
      } else {
        if (metrics.has('sharpness')) {
          if (operator.size <= EXACT_TRACE_MAX_PARAMETERS) {
            (await exactTrace(operator)).trace.forEach((v, r) => {
              add(r, step, 'sharpness', v);
            });
          } else {
            const result = await hessianTrace(operator, {
              probes: resolved.measure.hutchinsonProbes ?? DEFAULT_PROBES,
              seed: step,
            });
            result.estimate.forEach((v, r) => {
              add(r, step, 'sharpness', v);
            });
          }
        }
        if (metrics.has('lambdaMax')) {
          const steps = Math.min(operator.size, resolved.measure.lanczosIterations ?? DEFAULT_LANCZOS_STEPS);
          const result = await topEigenvalues(operator, 1, { maxSteps: steps, seed: step });
          result.values.forEach((v, r) => {
            add(r, step, 'lambdaMax', v[0]);
          });
        }
      }
      if (metrics.has('fluctuation')) {
        (await gradientFluctuation(operator)).fluctuation.forEach((v, r) => {
          add(r, step, 'fluctuation', v);
        });
      }
      if (metrics.has('layerCondition')) {
        for (const [i, spec] of model.parameters.entries()) {
          if (spec.role !== 'weight') continue;
          const values = await params[i].read();
          const size = spec.shape[0] * spec.shape[1];
          for (let r = 0; r < replicas; r++) {
            add(
              r,
              step,
              layerConditionMetric(spec.name),
              conditionNumber(
                Array.from({ length: spec.shape[0] }, (_, row) =>
                  Array.from(
                    values.subarray(r * size + row * spec.shape[1], r * size + (row + 1) * spec.shape[1]),
                  ),
                ),
              ),
            );
          }
        }
      }
      done += step - lastStep;
      lastStep = step;
      hooks.onProgress?.({
        group: name,
        groupIndex,
        groups: groups.length,
        step: step + 1,
        steps: resolved.train.steps,
        done,
        total,
      });
      if (hooks.checkpoint && step + 1 < resolved.train.steps) {
        const values = await Promise.all(params.map((p) => p.read()));
        await hooks.checkpoint({
          version: 1,
          experiment: config.name,
          groupIndex,
          step: step + 1,
          params: values.map((v) => Array.from(v)),
          rows: [...rows],
          divergences: [...divergences],
        });
      }
    };
    let lastStep = startStep - 1;
    try {
      const reports = await train(engine, {
        model,
        params,
        data,
        loss: resolved.loss,
        learningRate: resolved.train.learningRate,
        batchSize: resolved.train.batchSize,
        steps: resolved.train.steps - startStep,
        startStep,
        seed: resolved.seed,
        switchToGdAt: resolved.train.switchToGdAt,
        gdBatchSize: resolved.train.gdBatchSize,
        logEvery: resolved.measure.every,
        onLog: measure,
      });
      divergences.push(...reports.map((d) => ({ ...d, group: name })));
      // A flat dashed line across the run: the values SGD converges to.
      rows.push(...theoryRows(group, [0, resolved.train.steps - 1]));
    } finally {
      operator.dispose();
      for (const t of [...params, evaluation.x, evaluation.y] as Tensor[]) t.dispose();
      if (data !== source) data.dispose();
      if (evaluationSource !== source) evaluationSource.dispose();
      source.dispose();
    }
  }
  rows.push(...relativeSharpnessRows(config, rows));
  return { rows, divergences };
}

/**
 * relativeSharpness = T(group) / T(reference group), seed by seed and step by step, for groups that
 * name a reference (the paper's Fig. 3: anisotropic over isotropic noise).
 */
export function relativeSharpnessRows(config: ExperimentConfig, rows: readonly ResultRow[]): ResultRow[] {
  const key = (group: string, seed: number | 'theory', step: number) => `${group}|${seed}|${step}`;
  const sharpness = new Map<string, number>();
  for (const row of rows)
    if (row.metric === 'sharpness') sharpness.set(key(row.group, row.seed, row.step), row.value);
  const out: ResultRow[] = [];
  for (const group of config.groups) {
    if (!group.reference) continue;
    for (const row of rows) {
      if (row.group !== group.name || row.metric !== 'sharpness') continue;
      const reference = sharpness.get(key(group.reference, row.seed, row.step));
      if (reference === undefined) continue;
      out.push({ ...row, metric: 'relativeSharpness', value: row.value / reference });
    }
  }
  return out;
}
