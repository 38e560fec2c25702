/**
 * Experiments as data: the JSON schema of an experiment config (zod), group resolution (deep-merged
 * overrides), the `--quick` override, and the deeper CPU-side checks (model shapes, covariances) that
 * must pass before any GPU work. Every failure is an `InputError` whose field is the JSON path of the
 * bad value in the file as written, e.g. `groups[1].overrides.train.learningRate`.
 *
 * Conventions: loss ℓ = ½‖f(x) − y‖² (MSE) or softmax cross-entropy against soft targets, mean over
 * the batch; `data.noiseStd` is √Σ_ε's diagonal (the paper's √Σ_ε = diag(…)), so
 * Σ_ε = R diag(noiseStd²) Rᵀ with R = `noiseRotation` (identity when omitted).
 */
import { z } from 'zod';
import { InputError } from '../errors.ts';
import type { InitScheme } from '../models/init.ts';
import type { LossKind } from '../models/losses.ts';
import { buildModel, type Model, type ModelSpec } from '../models/model.ts';
import { checkCovariance, parseMatrix } from '../theory/validate.ts';
import { optimizerSchema, scheduleSchema } from '../train/optimizer.ts';

/** Metrics an experiment can measure at its log points. */
export const METRICS = [
  'loss',
  'sharpness',
  'lambdaMax',
  'fluctuation',
  'layerCondition',
  'topEigenvalues',
  'gradientNorm',
  'layerSharpness',
  'density',
  'accuracy',
  'heldOutLoss',
] as const;
export type MetricName = (typeof METRICS)[number];

/** Row metrics computed from other rows (the executor's `relativeSharpness` = T(group) / T(reference)). */
export const DERIVED_METRICS = ['relativeSharpness'] as const;

/**
 * Row name of the condition number σ_max/σ_min of one weight matrix (metric `layerCondition`), e.g.
 * `layerCondition.W1`. Panels that list `layerCondition` show every layer.
 */
export function layerConditionMetric(parameterName: string): string {
  return `layerCondition.${parameterName}`;
}

// ---------------------------------------------------------------------------------------------------
// Schema building blocks

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
const jobShape = {
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

const jobSchema = z.strictObject(jobShape).superRefine((job, ctx) => {
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

const experimentSchema = z.strictObject({
  ...jobShape,
  groups: z.array(groupSchema).min(1, 'needs at least one group'),
  panels: z.array(panelSchema),
  quick: overridesSchema.optional(),
});

// ---------------------------------------------------------------------------------------------------
// Types

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

// ---------------------------------------------------------------------------------------------------
// Error reporting

type Path = (string | number)[];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || 'config';
}

/** Splits `groups[1].overrides.train` into ['groups', 1, 'overrides', 'train']. */
export function parsePath(field: string): Path {
  const path: Path = [];
  for (const match of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (match[2] !== undefined) path.push(Number(match[2]));
    else path.push(match[1]);
  }
  return path;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 24 ? `${value.slice(0, 24)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `an ${typeof value}`;
}

const ARTICLES: Record<string, string> = {
  number: 'a number',
  string: 'a string',
  array: 'an array',
  object: 'an object',
  boolean: 'true or false',
  record: 'an object',
};

/** The first zod issue as (path, message) in the project's words. */
function issueMessage(issue: z.core.$ZodIssue): { path: Path; message: string } {
  const path = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k)) as Path;
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.expected === 'int') return { path, message: issue.message };
      const expected = ARTICLES[issue.expected] ?? issue.expected;
      if (input === undefined) return { path, message: `missing (expected ${expected})` };
      return { path, message: `expected ${expected}, got ${describe(input)}` };
    }
    case 'unrecognized_keys':
      return {
        path: [...path, issue.keys[0]],
        message: `unknown field${issue.keys.length > 1 ? ` (also: ${issue.keys.slice(1).join(', ')})` : ''}; check the spelling`,
      };
    case 'invalid_union': {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      const options = (issue as { options?: unknown[] }).options;
      if (discriminator && options) {
        const got =
          input && typeof input === 'object' ? (input as Record<string, unknown>)[discriminator] : input;
        const known = options.map(String).join(', ');
        const target = path[path.length - 1] === discriminator ? path : [...path, discriminator];
        if (got === undefined) return { path: target, message: `missing (one of ${known})` };
        return { path: target, message: `unknown ${discriminator} ${JSON.stringify(got)} (known: ${known})` };
      }
      return { path, message: issue.message };
    }
    case 'invalid_value':
      return {
        path,
        message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(input)}`,
      };
    default:
      return { path, message: issue.message };
  }
}

/** Where the user wrote a value: its JSON path in the file, and a note on how it was reached. */
interface Location {
  field: string;
  note?: string;
}

/** Maps a path in a merged object back to where the user wrote the value. */
type Attribute = (path: Path) => Location;

const plainPath: Attribute = (path) => ({ field: formatPath(path) });

function inputError(location: Location, message: string): InputError {
  return new InputError(location.field, location.note ? `${message} (${location.note})` : message);
}

function parseWith<S extends z.ZodType>(schema: S, raw: unknown, attribute: Attribute): z.infer<S> {
  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const { path, message } = issueMessage(result.error.issues[0]);
  throw inputError(attribute(path), message);
}

// ---------------------------------------------------------------------------------------------------
// Deep merge of overrides

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

const NOISE_MATRIX = ['sigmaEps'];
const NOISE_DIAGONAL = ['noiseStd', 'noiseRotation'];
/** The two forms of file data (kind 'file'): .npy files, or a CSV file with its columns. */
const FILE_NPY = ['x', 'y'];
const FILE_CSV = ['csv', 'xColumns', 'yColumns', 'header'];

/** Drops the keys of `other` from `out` when `override` gives any of `form`. */
function dropOtherForm(
  out: Record<string, unknown>,
  override: Record<string, unknown>,
  form: string[],
  other: string[],
) {
  if (form.some((k) => k in override)) for (const k of other) delete out[k];
}

/**
 * Deep merge: objects merge key by key; arrays and numbers replace; `null` deletes a key. An object
 * with a different `kind` replaces the base object whole (its other fields belong to another
 * variant), and giving one form of the label noise (sigmaEps, or noiseStd/noiseRotation) or of file
 * data (x/y .npy files, or csv with its columns) drops the other.
 */
export function mergeOverrides(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return clone(override);
  if ('kind' in override && override.kind !== base.kind) return stripNulls(clone(override));
  const out: Record<string, unknown> = { ...base };
  dropOtherForm(out, override, NOISE_MATRIX, NOISE_DIAGONAL);
  dropOtherForm(out, override, NOISE_DIAGONAL, NOISE_MATRIX);
  if (base.kind === 'file') {
    dropOtherForm(out, override, FILE_NPY, FILE_CSV);
    dropOtherForm(out, override, FILE_CSV, FILE_NPY);
  }
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete out[key];
    else out[key] = key in base ? mergeOverrides(base[key], value) : stripNulls(clone(value));
  }
  return out;
}

function stripNulls(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  for (const [k, v] of Object.entries(value)) {
    if (v === null) delete value[k];
    else stripNulls(v);
  }
  return value;
}

/** The value at `path` inside `obj` (undefined when a step is missing). */
function at(obj: unknown, path: Path): unknown {
  let current = obj;
  for (const key of path) {
    if (Array.isArray(current) && typeof key === 'number') current = current[key];
    else if (isPlainObject(current) && typeof key === 'string') current = current[key];
    else return undefined;
  }
  return current;
}

/**
 * Where a merged value came from: inside `overrides` (at `prefix`) when the override wrote that value
 * or an object on its way, else the base (located by `outer`, noting `context`).
 */
function overrideAttribution(overrides: unknown, prefix: Path, outer: Attribute, context: string): Attribute {
  return (path) => {
    for (let n = path.length; n > 0; n--) {
      if (at(overrides, path.slice(0, n)) !== undefined) return outer([...prefix, ...path]);
    }
    const base = outer(path);
    return { field: base.field, note: base.note ? `${context}, ${base.note}` : context };
  };
}

const JOB_KEYS = Object.keys(jobShape);

function jobPart(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([key]) => JOB_KEYS.includes(key)));
}

// ---------------------------------------------------------------------------------------------------
// Public API

/** Deeper than any config needs; deeper JSON would overflow the stack of the recursive merges. */
const MAX_NESTING = 32;

/** Experiment names that collide with a file a run writes beside the experiment folders (DIR/index.html). */
const RESERVED_NAMES = ['index.html'];

/** Refuses JSON nested deeper than `limit` (checked without recursion), naming the first deep path. */
function checkNesting(raw: unknown, limit: number): void {
  const stack: { value: unknown; path: Path }[] = [{ value: raw, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: Path };
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= limit)
      throw new InputError(formatPath(path), `nests deeper than ${limit} levels; no config needs that`);
    for (const [key, child] of Object.entries(value))
      stack.push({ value: child, path: [...path, Array.isArray(value) ? Number(key) : key] });
  }
}

function parseInternal(raw: unknown, attribute: Attribute): ExperimentConfig {
  if (!isPlainObject(raw)) throw inputError(attribute([]), `expected a JSON object, got ${describe(raw)}`);
  const config = parseWith(experimentSchema, raw, attribute);
  if (RESERVED_NAMES.includes(config.name.toLowerCase()))
    throw inputError(
      attribute(['name']),
      `'${config.name}' is the name of a file every run writes into the output folder; choose another name`,
    );
  // The base alone must be a complete job (its own checks, e.g. switchToGdAt ≤ steps).
  parseWith(jobSchema, jobPart(config), attribute);

  const names = new Map<string, number>();
  const resolved = new Map<string, ResolvedGroupConfig>();
  config.groups.forEach((group, i) => {
    if (names.has(group.name))
      throw inputError(
        attribute(['groups', i, 'name']),
        `'${group.name}' is also the name of groups[${names.get(group.name)}]`,
      );
    names.set(group.name, i);
  });
  config.groups.forEach((group, i) => {
    if (group.reference !== undefined && !names.has(group.reference)) {
      throw inputError(
        attribute(['groups', i, 'reference']),
        `no group is named '${group.reference}' (groups: ${[...names.keys()].join(', ')})`,
      );
    }
    const forbidden = Object.keys(group.overrides).find((key) => !JOB_KEYS.includes(key));
    if (forbidden !== undefined) {
      const hint = ['groups', 'panels', 'quick'].includes(forbidden)
        ? 'groups cannot override this'
        : 'unknown field; check the spelling';
      throw inputError(attribute(['groups', i, 'overrides', forbidden]), hint);
    }
    if (group.overrides.name !== undefined)
      throw inputError(attribute(['groups', i, 'overrides', 'name']), 'the experiment name is shared');
    resolved.set(group.name, resolveWith(config, i, attribute));
  });

  const panelNames = new Set<string>();
  config.panels.forEach((panel, p) => {
    const where = (...rest: Path) => attribute(['panels', p, ...rest]);
    const fail = (location: Location, message: string) => inputError(location, message);
    if (panelNames.has(panel.name)) throw fail(where('name'), `'${panel.name}' is used twice`);
    panelNames.add(panel.name);
    panel.metrics.forEach((metric, m) => {
      if (!isKnownMetric(metric))
        throw fail(
          where('metrics', m),
          `unknown metric '${metric}' (known: ${[...METRICS, ...DERIVED_METRICS].join(', ')}, layerCondition.<layer>)`,
        );
    });
    panel.metrics.forEach((metric, m) => {
      // A density is a curve over eigenvalues: only density panels draw it, and they draw nothing else.
      if ((metric === 'density') !== (panel.kind === 'density'))
        throw fail(
          where('metrics', m),
          panel.kind === 'density'
            ? `a density panel shows only 'density', not '${metric}'`
            : `'density' is shown by a panel of kind 'density'`,
        );
    });
    const shown = panelGroups(config, panel);
    panel.groups?.forEach((pattern, g) => {
      if (!config.groups.some((group) => matchesPattern(group.name, pattern)))
        throw fail(where('groups', g), `matches no group (groups: ${[...names.keys()].join(', ')})`);
    });
    panel.metrics.forEach((metric, m) => {
      const family = metric === 'relativeSharpness' ? 'sharpness' : metric.split('.')[0];
      const measured = shown.some((group) =>
        (resolved.get(group.name)?.measure.metrics as readonly string[] | undefined)?.includes(family),
      );
      if (!measured)
        throw fail(
          where('metrics', m),
          `no group shown in this panel measures '${family}' (add it to measure.metrics)`,
        );
    });
    if (panel.relative) {
      if (panel.kind !== 'final-vs-group')
        throw fail(where('relative'), 'only final-vs-group panels can be relative');
      const missing = shown.find((group) => group.reference === undefined);
      if (missing)
        throw fail(
          where('relative'),
          `group '${missing.name}' has no reference group to divide by (set groups[].reference)`,
        );
    }
    if (panel.kind === 'final-vs-group') {
      const missing = shown.find((group) => group.value === undefined);
      if (missing)
        throw fail(where('kind'), `group '${missing.name}' has no value to place it on the x axis`);
    }
  });
  return config;
}

/**
 * Parses and validates an experiment config (JSON data). Checks types, ranges, unknown fields, every
 * group with its overrides applied, panels against groups and metrics, and the `quick` override
 * applied. Matrices are only checked to be numbers here; `validateExperiment` does the rest.
 */
export function parseExperimentConfig(raw: unknown): ExperimentConfig {
  checkNesting(raw, MAX_NESTING);
  const config = parseInternal(raw, plainPath);

  if (config.quick !== undefined) quickConfig(config);
  return config;
}

/** A group's full job config: the base with the group's overrides deep-merged in (see `mergeOverrides`). */
export function resolveGroup(
  config: ExperimentConfig,
  group: GroupSpec | string | number,
): ResolvedGroupConfig {
  const index =
    typeof group === 'number'
      ? group
      : config.groups.findIndex((g) => g.name === (typeof group === 'string' ? group : group.name));
  if (!(index >= 0 && index < config.groups.length)) {
    const name = typeof group === 'object' ? group.name : String(group);
    throw new InputError(
      'groups',
      `no group '${name}' (groups: ${config.groups.map((g) => g.name).join(', ')})`,
    );
  }
  return resolveWith(config, index, plainPath);
}

/** Every group of the experiment, resolved, in config order. */
export function resolveGroups(config: ExperimentConfig): ResolvedGroupConfig[] {
  return config.groups.map((_, i) => resolveGroup(config, i));
}

function resolveWith(config: ExperimentConfig, index: number, attribute: Attribute): ResolvedGroupConfig {
  const group = config.groups[index];
  const inner = overrideAttribution(
    group.overrides,
    ['groups', index, 'overrides'],
    attribute,
    `in group '${group.name}'`,
  );
  const merged = mergeOverrides(jobPart(config), group.overrides);
  const job = parseWith(jobSchema, merged, inner);
  const resolved: ResolvedGroupConfig = {
    experiment: config.name,
    group: group.name,
    index,
    ...(group.value !== undefined && { value: group.value }),
    ...(group.series !== undefined && { series: group.series }),
    ...(group.reference !== undefined && { reference: group.reference }),
    model: job.model,
    loss: job.loss,
    data: job.data,
    ...(job.trainingSetSize !== undefined && { trainingSetSize: job.trainingSetSize }),
    init: job.init,
    train: job.train,
    measure: job.measure,
    seeds: job.seeds,
    seed: job.seed,
    noiseCovariance: noiseCovariance(job.data),
  };
  return resolved;
}

/** Σ_ε of a data config: `sigmaEps`, or R diag(noiseStd²) Rᵀ. Shapes are checked by `validateExperiment`. */
export function noiseCovariance(data: DataConfig): number[][] {
  if (data.sigmaEps !== undefined) return data.sigmaEps.map((row) => row.slice());
  const std = data.noiseStd ?? [];
  const m = std.length;
  const R = data.noiseRotation;
  const out = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      if (!R) {
        out[i][j] = i === j ? std[i] * std[i] : 0;
        continue;
      }
      let sum = 0;
      for (let k = 0; k < m; k++) sum += (R[i]?.[k] ?? 0) * std[k] * std[k] * (R[j]?.[k] ?? 0);
      out[i][j] = sum;
    }
  }
  return out;
}

function quickConfig(config: ExperimentConfig): ExperimentConfig {
  const { quick, ...rest } = config;
  if (quick === undefined) return config;
  if ('quick' in quick) throw new InputError('quick.quick', 'quick cannot be nested');
  const merged = mergeOverrides(rest, quick) as Record<string, unknown>;
  // Validation errors point into `quick` when it wrote the value, else at the config.
  const attribute = overrideAttribution(quick, ['quick'], plainPath, 'with quick applied');
  return parseInternal(merged, attribute);
}

/** The config with its `quick` override deep-merged in (and `quick` dropped); unchanged if it has none. */
export function applyQuick(config: ExperimentConfig): ExperimentConfig {
  const result = quickConfig(config);
  if (result === config) {
    const { quick: _, ...rest } = config;
    return rest as ExperimentConfig;
  }
  return result;
}

/** Whether a group name matches a panel's group pattern ('*' matches any run of characters). */
export function matchesPattern(name: string, pattern: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return regex.test(name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The groups a panel shows, in config order. */
export function panelGroups(config: ExperimentConfig, panel: PanelSpec): GroupSpec[] {
  const patterns = panel.groups;
  if (!patterns) return config.groups;
  return config.groups.filter((group) => patterns.some((pattern) => matchesPattern(group.name, pattern)));
}

/** Whether a panel may show this metric: a measured one, a derived one, or `layerCondition.<layer>`. */
export function isKnownMetric(metric: string): boolean {
  if ((METRICS as readonly string[]).includes(metric)) return true;
  if ((DERIVED_METRICS as readonly string[]).includes(metric)) return true;
  return /^layerCondition\.[A-Za-z0-9_]+$/.test(metric);
}

/** Whether a row metric belongs to a panel metric (`layerCondition` covers `layerCondition.W1`, …). */
export function metricMatches(rowMetric: string, panelMetric: string): boolean {
  if (panelMetric === 'topEigenvalues') return /^lambda\d+$/.test(rowMetric);
  return rowMetric === panelMetric || rowMetric.startsWith(`${panelMetric}.`);
}

/** Row names of the `topEigenvalues` metric: lambda1 (the largest) … lambdak. */
export function topEigenvalueMetric(index: number): string {
  return `lambda${index + 1}`;
}

/** Row names of the `layerSharpness` metric: each layer's block trace and block λ_max. */
export function layerSharpnessMetrics(parameterName: string): { trace: string; lambdaMax: string } {
  return { trace: `layerSharpness.${parameterName}`, lambdaMax: `layerLambdaMax.${parameterName}` };
}

// ---------------------------------------------------------------------------------------------------
// Deeper checks (CPU only, before any GPU work)

export const MNIST_INPUT_FEATURES = 784;
export const MNIST_OUTPUT_CLASSES = 10;

/** A group's model and data, checked: the validated covariances and the built (CPU-side) model. */
export interface ValidatedGroup {
  resolved: ResolvedGroupConfig;
  model: Model;
  /** Σ_x of one input row (identity when not given), symmetrised; undefined for MNIST and file data. */
  sigmaX?: number[][];
  /** Σ_ε, symmetrised and positive definite; empty (0×0) for file data without label noise. */
  sigmaEps: number[][];
}

/**
 * Builds every group's model with `buildModel` and checks its data against it: V, Σ_x and Σ_ε shapes,
 * symmetry and positive definiteness (`checkCovariance`), the teacher network, noiseRotation
 * orthogonal, cross-entropy with at least two outputs. Errors name the path as written (inside
 * `groups[i].overrides` when the group set it). Pure CPU: call it before any GPU work.
 */
export function validateExperiment(config: ExperimentConfig): ValidatedGroup[] {
  return validateWith(config, plainPath);
}

/**
 * The buffer limits of a device. Without an adapter at hand, `ANY_DEVICE_LIMITS`: kernels index f32
 * elements with u32, so no device can hold a tensor of 2³² elements or more.
 */
export interface BufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export const ANY_DEVICE_LIMITS: BufferLimits = {
  maxStorageBufferBindingSize: 4 * (2 ** 32 - 1),
  maxBufferSize: 4 * (2 ** 32 - 1),
};

/** One tensor a group's run allocates, sized from its config, and the field that sets its size. */
export interface BufferNeed {
  field: string;
  /** How the size comes about, in words (e.g. `seeds 64 × evaluationSamples 10⁶ × 2 inputs`). */
  what: string;
  bytes: number;
}

/**
 * The largest tensors a group's run allocates (lower bounds: parameters, evaluation set, minibatches,
 * layer activations and attention scores, all replicas in one buffer). Pure CPU.
 */
export function bufferNeeds(group: ValidatedGroup, replicas = group.resolved.seeds): BufferNeed[] {
  const { resolved, model } = group;
  const widths = [model.inputFeatures, model.outputDim, ...model.parameters.map((p) => p.shape[0])];
  const widest = Math.max(...widths);
  const spec = resolved.model;
  // Attention scores per row (heads × T × T) dominate a Transformer's activations.
  const perRow =
    spec.kind === 'transformer' ? Math.max(widest, spec.heads * spec.sequenceLength ** 2) : widest;
  const needs: BufferNeed[] = [];
  const largestParameter = Math.max(...model.parameters.map((p) => p.shape.reduce((a, b) => a * b, 1)));
  needs.push({
    field: 'model',
    what: `${replicas} replicas × ${largestParameter} weights of the largest layer`,
    bytes: 4 * replicas * largestParameter,
  });
  const rows: [string, number | undefined][] = [
    ['measure.evaluationSamples', resolved.measure.evaluationSamples],
    ['train.batchSize', resolved.train.batchSize],
    ['train.gdBatchSize', resolved.train.gdBatchSize],
  ];
  for (const [field, count] of rows) {
    if (count === undefined) continue;
    needs.push({
      field,
      what: `${replicas} replicas × ${count} rows × ${perRow} values per row`,
      bytes: 4 * replicas * count * perRow,
    });
  }
  if (resolved.trainingSetSize !== undefined)
    needs.push({
      field: 'trainingSetSize',
      what: `${resolved.trainingSetSize} rows × ${model.inputFeatures} features`,
      bytes: 4 * resolved.trainingSetSize * model.inputFeatures,
    });
  return needs;
}

function gibibytes(bytes: number): string {
  return `${Number((bytes / 2 ** 30).toPrecision(3))} GiB`;
}

function checkBuffers(group: ValidatedGroup, limits: BufferLimits, replicas?: number): void {
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const which =
    limits.maxStorageBufferBindingSize <= limits.maxBufferSize
      ? 'maxStorageBufferBindingSize'
      : 'maxBufferSize';
  for (const need of bufferNeeds(group, replicas)) {
    if (need.bytes <= limit) continue;
    const device =
      limits === ANY_DEVICE_LIMITS ? 'any WebGPU device (2³² f32 elements)' : `this device's ${which}`;
    throw new InputError(
      need.field,
      `needs a ${gibibytes(need.bytes)} buffer (${need.what}), more than ${device} of ${gibibytes(limit)}; make it smaller, or use fewer seeds or more shards (--shard)`,
    );
  }
}

/**
 * Checks every group's largest buffers against a device's limits (after the adapter is known, before
 * any GPU work); errors name the field as written, like `validateExperiment`. `replicas[g]`: how many
 * replicas share group g's buffers (groups may train batched together, a shard trains fewer).
 */
export function checkDeviceLimits(config: ExperimentConfig, limits: BufferLimits, replicas?: number[]): void {
  validateWith(config, plainPath, limits, replicas);
}

function validateWith(
  config: ExperimentConfig,
  outer: Attribute,
  limits: BufferLimits = ANY_DEVICE_LIMITS,
  replicas?: number[],
): ValidatedGroup[] {
  return config.groups.map((group, index) => {
    const resolved = resolveGroup(config, index);
    const attribute = overrideAttribution(
      group.overrides,
      ['groups', index, 'overrides'],
      outer,
      `in group '${group.name}'`,
    );
    try {
      const validated = validateGroup(resolved);
      if (replicas?.[index] !== 0) checkBuffers(validated, limits, replicas?.[index]);
      return validated;
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      const message = error.message.startsWith(`${error.field}: `)
        ? error.message.slice(error.field.length + 2)
        : error.message;
      throw inputError(attribute(parsePath(error.field)), message);
    }
  });
}

function validateGroup(resolved: ResolvedGroupConfig): ValidatedGroup {
  const model = buildModel(resolved.model, 'model');
  const { data } = resolved;
  let inputs: number;
  let outputs: number;
  let source: string;
  if (data.kind === 'linear-teacher') {
    const V = parseMatrix(data.V, 'data.V');
    outputs = V.length;
    inputs = V[0].length;
    source = `the teacher V (${outputs}×${inputs})`;
  } else if (data.kind === 'teacher-student') {
    const teacher = buildModel(data.teacher, 'data.teacher');
    inputs = teacher.inputFeatures;
    outputs = teacher.outputDim;
    source = `the teacher network (${inputs} input features, ${outputs} outputs)`;
  } else if (data.kind === 'mnist') {
    inputs = MNIST_INPUT_FEATURES;
    outputs = MNIST_OUTPUT_CLASSES;
    source = `MNIST (${inputs} pixels, ${outputs} classes)`;
  } else {
    // The files' widths are checked against the model when the host reads them (before GPU work).
    inputs = model.inputFeatures;
    outputs = model.outputDim;
    source = `the data files (${outputs} target columns)`;
  }
  if (model.inputFeatures !== inputs) {
    const what =
      model.inputFeatures === resolved.model.inputDim
        ? `${model.inputFeatures}`
        : `${model.inputFeatures} (= sequenceLength × inputDim)`;
    throw new InputError(
      'model.inputDim',
      `the model reads ${what} features per row but ${source} gives ${inputs}`,
    );
  }
  if (model.outputDim !== outputs)
    throw new InputError(
      'model.outputDim',
      `the model gives ${model.outputDim} outputs but ${source} has ${outputs}`,
    );
  if (resolved.loss === 'cross-entropy' && outputs < 2)
    throw new InputError(
      'loss',
      'cross-entropy needs at least 2 outputs (a softmax over one class is constant)',
    );

  let sigmaX: number[][] | undefined;
  if ('sigmaX' in data && data.sigmaX !== undefined) {
    sigmaX = checkCovariance(
      parseMatrix(data.sigmaX, 'data.sigmaX'),
      inputs,
      'data.sigmaX',
      `(Σ_x of ${source})`,
    );
  } else if (data.kind === 'linear-teacher' || data.kind === 'teacher-student') {
    sigmaX = Array.from({ length: inputs }, (_, i) =>
      Array.from({ length: inputs }, (_, j) => (i === j ? 1 : 0)),
    );
  }

  let sigmaEps: number[][];
  if (data.kind === 'file' && data.sigmaEps === undefined && data.noiseStd === undefined) {
    sigmaEps = [];
  } else if (data.sigmaEps !== undefined) {
    sigmaEps = checkCovariance(
      parseMatrix(data.sigmaEps, 'data.sigmaEps'),
      outputs,
      'data.sigmaEps',
      `(Σ_ε of ${source})`,
    );
  } else {
    const std = data.noiseStd ?? [];
    if (std.length !== outputs)
      throw new InputError(
        'data.noiseStd',
        `must have ${outputs} entries (one per output of ${source}), got ${std.length}`,
      );
    if (data.noiseRotation !== undefined) {
      const R = parseMatrix(data.noiseRotation, 'data.noiseRotation');
      if (R.length !== outputs || R[0].length !== outputs)
        throw new InputError(
          'data.noiseRotation',
          `must be ${outputs}×${outputs}, got ${R.length}×${R[0].length}`,
        );
      checkOrthogonal(R, 'data.noiseRotation');
    }
    sigmaEps = checkCovariance(resolved.noiseCovariance, outputs, 'data.noiseStd', `(Σ_ε of ${source})`);
  }
  return { resolved, model, sigmaX, sigmaEps };
}

function checkOrthogonal(R: number[][], field: string): void {
  const n = R.length;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += R[k][i] * R[k][j];
      worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
    }
  }
  if (worst > 1e-6)
    throw new InputError(
      field,
      `must be orthogonal (RᵀR = I), but RᵀR differs from I by up to ${worst.toPrecision(3)}`,
    );
}

/**
 * Parse, run every CPU-side check on the full and the quick form (errors in the quick form point into
 * `quick` where it wrote the value), and return the form asked for: the one call a runner needs
 * before GPU work.
 */
export function prepareExperiment(raw: unknown, options: { quick?: boolean } = {}): ExperimentConfig {
  const parsed = parseExperimentConfig(raw);
  validateExperiment(parsed);
  const quick = applyQuick(parsed);
  if (parsed.quick !== undefined)
    validateWith(quick, overrideAttribution(parsed.quick, ['quick'], plainPath, 'with quick applied'));
  return options.quick ? quick : parsed;
}
