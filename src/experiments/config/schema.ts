/**
 * The zod schema of an experiment config and the types it infers. Conventions: loss ℓ = ½‖f(x) − y‖²
 * (MSE) or softmax cross-entropy against soft targets, mean over the batch; `data.noiseStd` is √Σ_ε's
 * diagonal (the paper's √Σ_ε = diag(…)), so Σ_ε = R diag(noiseStd²) Rᵀ with R = `noiseRotation`
 * (identity when omitted).
 */
import { z } from 'zod';
import type { InitScheme } from '../../models/init.ts';
import type { LossKind } from '../../models/losses.ts';
import type { ModelSpec } from '../../models/model.ts';
import { optimizerSchema, scheduleSchema } from '../../train/optimizer.ts';
import { METRICS } from './metrics.ts';

const finite = () => z.number().finite('must be a finite number');
/** The largest finite float32: values the GPU computes with must stay below it. */
export const FLOAT32_MAX = 3.4028234663852886e38;
/** A number the GPU reads as float32: finite there too. */
const finite32 = () =>
  finite().refine((x) => Math.abs(x) <= FLOAT32_MAX, 'must be finite in float32 (|x| ≤ 3.4e38)');
const positive = () => finite32().positive('must be positive');
const positiveInt = () => z.number().int('must be an integer').min(1, 'must be a positive integer');
const nonNegativeInt = () => z.number().int('must be an integer').min(0, 'must be a non-negative integer');

/**
 * Limits on sizes as written, checked before any derivation or GPU work (device buffer limits come
 * later, with the adapter): random streams are keyed by uint32 seeds; replicas share one dispatch
 * dimension (at most 65535 workgroups); a layer of 16384² float32 weights is already 1 GiB; 64 hidden
 * layers are far beyond any experiment here. Row counts (batch, evaluation set) are bounded by the
 * device's buffer limits (`checkDeviceLimits`), which name the field too.
 */
export const LIMITS = {
  seed: 2 ** 32 - 1,
  seeds: 65535,
  width: 16384,
  hiddenLayers: 64,
  steps: 2 ** 32 - 1,
  iterations: 4096,
} as const;
const uint32 = () => nonNegativeInt().max(LIMITS.seed, `must be a uint32 (at most ${LIMITS.seed})`);
const width = () => positiveInt().max(LIMITS.width, `must be at most ${LIMITS.width}`);
const hiddenWidths = () =>
  z.array(width()).max(LIMITS.hiddenLayers, `at most ${LIMITS.hiddenLayers} hidden layers`);

/** Names become file and directory names: letters, digits, '.', '_' and '-'. */
const safeName = () =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(80, 'must be at most 80 characters')
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain only letters, digits, ".", "_" and "-"');
const matrix = () =>
  z.array(z.array(finite32()).min(1, 'a row needs at least one entry')).min(1, 'needs a row');

const modelSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('deep-linear'),
    inputDim: width(),
    hidden: hiddenWidths(),
    outputDim: width(),
  }),
  z.strictObject({
    kind: z.literal('mlp'),
    inputDim: width(),
    hidden: hiddenWidths(),
    outputDim: width(),
    activation: z.enum(['relu', 'tanh']),
  }),
  z.strictObject({
    kind: z.literal('rnn'),
    inputDim: width(),
    hidden: width(),
    outputDim: width(),
    sequenceLength: width(),
  }),
  z.strictObject({
    kind: z.literal('transformer'),
    inputDim: width(),
    modelDim: width(),
    heads: width(),
    mlpHidden: width(),
    outputDim: width(),
    sequenceLength: width(),
  }),
]);

// The schema describes exactly the engine's ModelSpec union (checked both ways by the compiler).
type SchemaModel = z.infer<typeof modelSchema>;
const modelIsSpec: ModelSpec = {} as SchemaModel;
const specIsModel: SchemaModel = {} as ModelSpec;
void modelIsSpec;
void specIsModel;

/** Σ_ε as a matrix, or √ of its diagonal (optionally rotated); exactly one form (checked below). */
const noiseFields = {
  sigmaEps: matrix().optional(),
  noiseStd: z
    .array(
      positive().refine(
        (x) => x * x <= FLOAT32_MAX,
        'its square (a variance) must be finite in float32 (at most 1.8e19)',
      ),
    )
    .min(1, 'needs at least one entry')
    .optional(),
  noiseRotation: matrix().optional(),
};

const column = () => z.union([z.string().min(1, 'must not be empty'), nonNegativeInt()]);

/**
 * The user's own data: `x` and `y` .npy files, or one CSV file with its target (and input) columns,
 * paths relative to the config file; label noise (sigmaEps or noiseStd) is optional and added on top.
 */
const fileDataSchema = z
  .strictObject({
    kind: z.literal('file'),
    x: z.string().min(1, 'must name a .npy file').optional(),
    y: z.string().min(1, 'must name a .npy file').optional(),
    csv: z.string().min(1, 'must name a CSV file').optional(),
    xColumns: z.array(column()).min(1, 'needs at least one column').optional(),
    yColumns: z.array(column()).min(1, 'needs at least one column').optional(),
    header: z.boolean().optional(),
    ...noiseFields,
  })
  .superRefine((data, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (data.csv === undefined) {
      if (data.x === undefined) issue('x', 'missing: the inputs as a .npy file (or csv with yColumns)');
      else if (data.y === undefined) issue('y', 'missing: the targets as a .npy file');
      for (const key of ['xColumns', 'yColumns', 'header'] as const)
        if (data[key] !== undefined) issue(key, 'only meaningful with csv');
    } else {
      if (data.x !== undefined || data.y !== undefined)
        issue(data.x !== undefined ? 'x' : 'y', 'give either csv or x and y .npy files, not both');
      else if (data.yColumns === undefined) issue('yColumns', 'missing: the target columns of the CSV file');
    }
  });

/** `data` of kind 'file'. */
export type FileDataConfig = z.infer<typeof fileDataSchema>;

const dataSchema = z
  .discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('linear-teacher'),
      V: matrix(),
      sigmaX: matrix().optional(),
      ...noiseFields,
    }),
    z.strictObject({
      kind: z.literal('teacher-student'),
      teacher: modelSchema,
      teacherSeed: uint32(),
      sigmaX: matrix().optional(),
      ...noiseFields,
    }),
    z.strictObject({ kind: z.literal('mnist'), ...noiseFields }),
    fileDataSchema,
  ])
  .superRefine((data, ctx) => {
    if (data.sigmaEps !== undefined && data.noiseStd !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['noiseStd'],
        message: 'give the label noise either as sigmaEps or as noiseStd, not both',
      });
    } else if (data.sigmaEps === undefined && data.noiseStd === undefined && data.kind !== 'file') {
      ctx.addIssue({
        code: 'custom',
        path: ['sigmaEps'],
        message: 'missing: the label-noise covariance Σ_ε (sigmaEps), or noiseStd with √Σ_ε = diag(noiseStd)',
      });
    }
    if (data.noiseRotation !== undefined && data.noiseStd === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['noiseRotation'],
        message: 'only meaningful with noiseStd (Σ_ε = R diag(noiseStd²) Rᵀ)',
      });
    }
  });

const initSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('kaiming') }),
  z.strictObject({ kind: z.literal('xavier') }),
  z.strictObject({ kind: z.literal('normal'), scale: finite32().min(0, 'must be non-negative') }),
]);

const trainSchema = z.strictObject({
  learningRate: positive(),
  batchSize: positiveInt(),
  steps: positiveInt().max(LIMITS.steps, `must be at most ${LIMITS.steps}`),
  switchToGdAt: nonNegativeInt().optional(),
  gdBatchSize: positiveInt().optional(),
  /** Default plain SGD (the paper's runs); momentum and Adam train on the general path. */
  optimizer: optimizerSchema.optional(),
  /** Learning-rate schedule; default constant. */
  schedule: scheduleSchema.optional(),
});

const measureSchema = z.strictObject({
  every: positiveInt(),
  evaluationSamples: positiveInt(),
  /**
   * Where no closed form exists (teacher–student, MNIST, RNN, Transformer): the evaluation set is
   * measured in this many chunks, one at a time, and the standard errors of Tr H, λ_max and the top
   * eigenvalues are batch means over them (default 8; more when one chunk would not fit in memory).
   */
  evaluationChunks: positiveInt()
    .min(2, 'must be at least 2 (a standard error needs two chunks)')
    .max(LIMITS.iterations, `must be at most ${LIMITS.iterations}`)
    .optional(),
  metrics: z.array(z.enum(METRICS)).min(1, 'needs at least one metric'),
  hutchinsonProbes: positiveInt().max(LIMITS.iterations, `must be at most ${LIMITS.iterations}`).optional(),
  lanczosIterations: positiveInt().max(LIMITS.iterations, `must be at most ${LIMITS.iterations}`).optional(),
  /** k of the `topEigenvalues` metric (rows lambda1 … lambdak; default 3). */
  topEigenvalues: positiveInt().max(LIMITS.iterations, `must be at most ${LIMITS.iterations}`).optional(),
  lateWindow: finite()
    .gt(0, 'must be a fraction in (0, 1]')
    .max(1, 'must be a fraction in (0, 1]')
    .default(0.2),
});

/** Everything one training job needs: the base of a config, and each group once resolved. */
export const jobShape = {
  name: safeName(),
  description: z.string(),
  figure: z.string().optional(),
  model: modelSchema,
  loss: z.enum(['mse', 'cross-entropy']),
  data: dataSchema,
  trainingSetSize: positiveInt().optional(),
  init: initSchema,
  train: trainSchema,
  measure: measureSchema,
  seeds: positiveInt().max(LIMITS.seeds, `must be at most ${LIMITS.seeds} replicas per group`),
  seed: uint32(),
};

export const jobSchema = z.strictObject(jobShape).superRefine((job, ctx) => {
  const { train, measure } = job;
  if (train.switchToGdAt !== undefined && train.switchToGdAt > train.steps) {
    ctx.addIssue({
      code: 'custom',
      path: ['train', 'switchToGdAt'],
      message: `must be at most train.steps (${train.steps}), got ${train.switchToGdAt}`,
    });
  }
  if (train.gdBatchSize !== undefined && train.switchToGdAt === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['train', 'gdBatchSize'],
      message: 'only meaningful with train.switchToGdAt',
    });
  }
  if (job.trainingSetSize !== undefined && train.batchSize > job.trainingSetSize) {
    ctx.addIssue({
      code: 'custom',
      path: ['train', 'batchSize'],
      message: `${train.batchSize} is larger than the training set (trainingSetSize ${job.trainingSetSize})`,
    });
  }
  if (measure.every > train.steps) {
    ctx.addIssue({
      code: 'custom',
      path: ['measure', 'every'],
      message: `must be at most train.steps (${train.steps}), got ${measure.every}`,
    });
  }
  const seen = new Set<string>();
  measure.metrics.forEach((metric, i) => {
    if (seen.has(metric))
      ctx.addIssue({
        code: 'custom',
        path: ['measure', 'metrics', i],
        message: `'${metric}' is listed twice`,
      });
    seen.add(metric);
    // The nearest minimum is found on the population loss, which only a deep linear network on a
    // linear teacher with MSE has in closed form.
    if (
      metric === 'lambdaMaxAtMinimum' &&
      !(job.model.kind === 'deep-linear' && job.data.kind === 'linear-teacher' && job.loss === 'mse')
    )
      ctx.addIssue({
        code: 'custom',
        path: ['measure', 'metrics', i],
        message: `'lambdaMaxAtMinimum' needs the population loss: a deep-linear model on linear-teacher data with loss 'mse', got ${job.model.kind} on ${job.data.kind} with '${job.loss}'`,
      });
    if (metric === 'accuracy' && job.loss !== 'cross-entropy')
      ctx.addIssue({
        code: 'custom',
        path: ['measure', 'metrics', i],
        message: `'accuracy' needs a classification loss (loss: 'cross-entropy'), got '${job.loss}'`,
      });
  });
});

const overridesSchema = z.record(z.string(), z.unknown());

const groupSchema = z.strictObject({
  name: safeName(),
  overrides: overridesSchema.default({}),
  /** x-axis value of the group in final-vs-group panels (init scale, κ, depth, …). */
  value: finite().optional(),
  /** Line this group belongs to in final-vs-group panels (e.g. 'MSE'); default: one line per metric. */
  series: z.string().min(1, 'must not be empty').optional(),
  /** Group whose late-window values divide this group's in `relative` panels (e.g. the isotropic one). */
  reference: z.string().optional(),
});

const panelSchema = z.strictObject({
  name: safeName(),
  /** `density`: the Hessian's spectral density at the end of training (metric `density` only). */
  kind: z.enum(['timeseries', 'final-vs-group', 'density']),
  /** Row metrics; `layerCondition` also matches every `layerCondition.<layer>`. */
  metrics: z.array(z.string().min(1, 'must not be empty')).min(1, 'needs at least one metric'),
  title: z.string(),
  yScale: z.enum(['linear', 'log']).optional(),
  xScale: z.enum(['linear', 'log']).optional(),
  /** Axis titles (default: 'training step' or 'group value', and the metric's label). */
  x: z.string().optional(),
  y: z.string().optional(),
  /** Groups shown: names, or patterns with '*' (default: all). */
  groups: z.array(z.string().min(1, 'must not be empty')).min(1, 'needs at least one group').optional(),
  /** final-vs-group only: divide each group's values, seed by seed, by those of its `reference` group. */
  relative: z.boolean().optional(),
});

export const experimentSchema = z.strictObject({
  ...jobShape,
  groups: z.array(groupSchema).min(1, 'needs at least one group'),
  panels: z.array(panelSchema),
  quick: overridesSchema.optional(),
});

export type ModelConfig = ModelSpec;
export type DataConfig = z.infer<typeof dataSchema>;
export type TrainConfig = z.infer<typeof trainSchema>;
export type MeasureConfig = z.infer<typeof measureSchema>;
export type GroupSpec = z.infer<typeof groupSchema>;
export type PanelSpec = z.infer<typeof panelSchema>;
/** A validated experiment config (defaults filled in: `measure.lateWindow`, `groups[i].overrides`). */
export type ExperimentConfig = z.infer<typeof experimentSchema>;
/** What a config file may contain before defaults are filled in (presets are written as this). */
export type ExperimentConfigInput = z.input<typeof experimentSchema>;

/** One group with its overrides applied: everything a training job needs. */
export interface ResolvedGroupConfig {
  experiment: string;
  group: string;
  /** Index of the group in `config.groups`. */
  index: number;
  value?: number;
  series?: string;
  reference?: string;
  model: ModelSpec;
  loss: LossKind;
  data: DataConfig;
  trainingSetSize?: number;
  init: InitScheme;
  train: TrainConfig;
  measure: MeasureConfig;
  /** Replicas (seeds) of this group: rows carry seed = 0 … seeds − 1. */
  seeds: number;
  /** Base seed of the random streams. */
  seed: number;
  /** Σ_ε (m×m) from `data.sigmaEps` or `data.noiseStd`/`noiseRotation`, not yet checked for definiteness. */
  noiseCovariance: number[][];
}
