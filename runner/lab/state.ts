/**
 * The lab page's setting as data: the paper's deep linear network (d = m = 2) with its noise, training
 * and measurement controls, its URL form (a link reproduces a setting), the experiment config it stands
 * for (the one `sharpness-lab run` accepts), the paper's presets translated into it, and the closed-form
 * theory of the current setting. Host-agnostic (no DOM): the page and the tests share it.
 *
 * Label noise: √Σ_ε = R(θ) diag(s, s/√κ) R(θ)ᵀ's square root, i.e. `noiseStd = [s, s/√κ]` rotated by θ,
 * so κ is the condition number of Σ_ε and s² its largest eigenvalue.
 */
import { z } from 'zod';
import { InputError } from '../../src/errors.ts';
import {
  applyQuick,
  type ExperimentConfig,
  type ExperimentConfigInput,
  noiseCovariance,
  prepareExperiment,
  type ResolvedGroupConfig,
  resolveGroup,
} from '../../src/experiments/config.ts';
import { DEEP_LINEAR_METRICS } from '../../src/experiments/presets/common.ts';
import { loadPreset } from '../../src/experiments/presets/index.ts';
import { type DeepLinearTheory, deepLinearTheory } from '../../src/theory/deep-linear.ts';

/** Widths the fused narrow kernel trains (deeper or wider nets still run, on the slower tape path). */
export const LAB_MAX_DEPTH = 10;
export const LAB_MAX_WIDTH = 8;
export const LAB_MAX_REPLICAS = 256;
/** The κ slider's range: κ(Σ_ε) from 1 (isotropic) to 10⁶, on a log scale. */
export const LAB_MAX_LOG10_KAPPA = 6;

const positive = () => z.coerce.number().finite('must be a finite number').positive('must be positive');
const integer = (min: number, max: number) =>
  z.coerce
    .number()
    .int('must be an integer')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const real = () => z.coerce.number().finite('must be a finite number');

export const labStateSchema = z.strictObject({
  /** Depth D of f(x) = W_D ⋯ W_1 x, and the width of every hidden layer. */
  depth: integer(1, LAB_MAX_DEPTH),
  width: integer(1, LAB_MAX_WIDTH),
  /** Teacher V (2×2), row-major. */
  V: z.tuple([real(), real(), real(), real()]),
  /** Diagonal of Σ_x (input variances). */
  sigmaX: z.tuple([positive(), positive()]),
  /** Largest √Σ_ε entry s, condition number κ(Σ_ε) ≥ 1, rotation θ of Σ_ε's eigenvectors in degrees. */
  noise: positive(),
  kappa: real().min(1, 'must be at least 1 (κ(Σ_ε) = λ_max/λ_min)'),
  angle: real().min(-180, 'must be at least -180°').max(180, 'must be at most 180°'),
  learningRate: positive(),
  batchSize: integer(1, 100_000),
  replicas: integer(1, LAB_MAX_REPLICAS),
  /** 'xavier', or N(0, initScale²) weights. */
  init: z.enum(['xavier', 'normal']),
  initScale: positive(),
  /** SGD throughout, full-batch-like GD (minibatches of gdBatchSize) throughout, or SGD then GD at switchAt. */
  mode: z.enum(['sgd', 'gd', 'switch']),
  switchAt: integer(0, 1e9),
  gdBatchSize: integer(1, 100_000),
  steps: integer(1, 1e9),
  /** Steps between log points (loss, T, S, λ_max measured; one plot point). */
  every: integer(1, 1e9),
  evaluationSamples: integer(1, 100_000),
  seed: integer(0, 2 ** 31),
});

export type LabState = z.infer<typeof labStateSchema>;

/** Fields in URL order (the query string names them exactly so). */
export const LAB_FIELDS = Object.keys(labStateSchema.shape) as (keyof LabState)[];

/** A state checked by the schema; the error names the field (`kappa: must be at least 1 …`). */
export function parseLabState(raw: unknown): LabState {
  const result = labStateSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new InputError(issue.path.map(String).join('.') || 'state', issue.message);
}

/** The URL query string of a state: every field, arrays comma-separated. */
export function stateToQuery(state: LabState): string {
  const params = new URLSearchParams();
  for (const field of LAB_FIELDS) {
    const value = state[field];
    params.set(field, Array.isArray(value) ? value.join(',') : String(value));
  }
  return params.toString();
}

/** A state from a query string; fields it leaves out keep `base`'s values. */
export function stateFromQuery(query: string, base: LabState): LabState {
  const params = new URLSearchParams(query);
  const raw: Record<string, unknown> = { ...base };
  for (const field of LAB_FIELDS) {
    const value = params.get(field);
    if (value === null) continue;
    raw[field] = Array.isArray(base[field]) ? value.split(',') : value;
  }
  for (const key of params.keys())
    if (!(LAB_FIELDS as string[]).includes(key))
      throw new InputError(key, `unknown setting in the link (known: ${LAB_FIELDS.join(', ')})`);
  return parseLabState(raw);
}

function rotation(degrees: number): number[][] {
  const t = (degrees * Math.PI) / 180;
  return [
    [Math.cos(t), -Math.sin(t)],
    [Math.sin(t), Math.cos(t)],
  ];
}

/** √Σ_ε's diagonal before rotation: [s, s/√κ]. */
export function noiseStd(state: LabState): [number, number] {
  return [state.noise, state.noise / Math.sqrt(state.kappa)];
}

export const LAB_EXPERIMENT = 'lab';
export const LAB_GROUP = 'lab';

/** The experiment config of a state: one group, the replicas as its seeds; `run` accepts it as is. */
export function labConfigInput(state: LabState): ExperimentConfigInput {
  const [v11, v12, v21, v22] = state.V;
  const identityX = state.sigmaX[0] === 1 && state.sigmaX[1] === 1;
  const switchToGdAt = state.mode === 'gd' ? 0 : state.mode === 'switch' ? state.switchAt : undefined;
  return {
    name: LAB_EXPERIMENT,
    description:
      `Deep linear network (D = ${state.depth}, hidden width ${state.width}) on a linear teacher with ` +
      `√Σ_ε = diag(${noiseStd(state)
        .map((v) => +v.toPrecision(6))
        .join(', ')})` +
      `${state.angle === 0 ? '' : ` rotated by ${state.angle}°`}, set up in the sharpness-lab page.`,
    model: {
      kind: 'deep-linear',
      inputDim: 2,
      hidden: new Array(state.depth - 1).fill(state.width),
      outputDim: 2,
    },
    loss: 'mse',
    data: {
      kind: 'linear-teacher',
      V: [
        [v11, v12],
        [v21, v22],
      ],
      ...(!identityX && {
        sigmaX: [
          [state.sigmaX[0], 0],
          [0, state.sigmaX[1]],
        ],
      }),
      noiseStd: noiseStd(state),
      ...(state.angle !== 0 && { noiseRotation: rotation(state.angle) }),
    },
    init: state.init === 'xavier' ? { kind: 'xavier' } : { kind: 'normal', scale: state.initScale },
    train: {
      learningRate: state.learningRate,
      batchSize: state.batchSize,
      steps: state.steps,
      ...(switchToGdAt !== undefined && { switchToGdAt, gdBatchSize: state.gdBatchSize }),
    },
    measure: {
      every: state.every,
      evaluationSamples: state.evaluationSamples,
      metrics: [...DEEP_LINEAR_METRICS],
    },
    seeds: state.replicas,
    seed: state.seed,
    groups: [{ name: LAB_GROUP }],
    panels: [
      {
        name: 'curvature',
        kind: 'timeseries',
        metrics: ['sharpness', 'fluctuation', 'lambdaMax', 'lambdaMaxAtMinimum'],
        title:
          'Sharpness T = Tr H, gradient fluctuation S and λ_max (at the iterate and at the nearest minimum) during training',
        yScale: 'log',
      },
      { name: 'loss', kind: 'timeseries', metrics: ['loss'], title: 'Training loss', yScale: 'log' },
    ],
  };
}

/** The state's config, parsed and checked as `run` checks a file (InputError names the JSON path). */
export function labConfig(state: LabState): ExperimentConfig {
  return prepareExperiment(labConfigInput(state));
}

/** Closed-form T*, S*, λ_max*, T_min and predicted weights of the state's network and data. */
export function labTheory(state: LabState): DeepLinearTheory {
  const data = labConfigInput(state).data as ExperimentConfig['data'] & { kind: 'linear-teacher' };
  return deepLinearTheory({
    depth: state.depth,
    V: data.V,
    sigmaX: [
      [state.sigmaX[0], 0],
      [0, state.sigmaX[1]],
    ],
    sigmaEps: noiseCovariance(data),
  });
}

/** A paper figure's setting: one group of a preset (full or quick form). */
export interface LabPreset {
  id: string;
  label: string;
  preset: string;
  group: string;
  quick: boolean;
}

export const LAB_PRESETS: readonly LabPreset[] = [
  {
    id: 'sharpening-quick',
    label: 'Sharpening, quick: κ = 100, η = 0.05 (sharpening-linear --quick)',
    preset: 'sharpening-linear',
    group: 'anisotropic',
    quick: true,
  },
  {
    id: 'sharpening-anisotropic',
    label: 'Figs 2, 5: anisotropic √Σ_ε = diag(10, 0.1), 10⁵ steps',
    preset: 'sharpening-linear',
    group: 'anisotropic',
    quick: false,
  },
  {
    id: 'sharpening-isotropic',
    label: 'Figs 2, 5: isotropic √Σ_ε = diag(10, 10), 10⁵ steps',
    preset: 'sharpening-linear',
    group: 'isotropic',
    quick: false,
  },
  {
    id: 'init-scale',
    label: 'Fig 1: init scale s = 1.5, η = 0.001 (init-scale)',
    preset: 'init-scale',
    group: 'scale-1.5',
    quick: false,
  },
  {
    id: 'sgd-then-gd',
    label: 'Fig 4: SGD, then GD from step 1000 (sgd-vs-gd --quick)',
    preset: 'sgd-vs-gd',
    group: 'sgd-then-gd',
    quick: true,
  },
  {
    id: 'depth-10',
    label: 'Fig 7: depth D = 10, anisotropic (depth)',
    preset: 'depth',
    group: 'anisotropic-D10',
    quick: false,
  },
];

export const DEFAULT_PRESET = LAB_PRESETS[0];

/** The resolved group of a lab preset. */
export function presetGroup(preset: LabPreset): ResolvedGroupConfig {
  const config = loadPreset(preset.preset);
  return resolveGroup(preset.quick ? applyQuick(config) : config, preset.group);
}

/**
 * The lab state of one resolved group: the model must be a deep linear 2 → 2 net with equal hidden
 * widths, the data a linear teacher with a diagonal Σ_x and √Σ_ε given as noiseStd (no rotation).
 */
export function stateFromGroup(group: ResolvedGroupConfig): LabState {
  const { model, data, init, train, measure } = group;
  const where = `${group.experiment}/${group.group}`;
  if (model.kind !== 'deep-linear' || model.inputDim !== 2 || model.outputDim !== 2)
    throw new InputError('model', `${where}: the lab trains deep linear networks from R² to R²`);
  if (new Set(model.hidden).size > 1) throw new InputError('model.hidden', `${where}: hidden widths differ`);
  if (data.kind !== 'linear-teacher' || !data.noiseStd || data.noiseStd.length !== 2 || data.noiseRotation)
    throw new InputError('data', `${where}: the lab needs a linear teacher with noiseStd of length 2`);
  const sigmaX = data.sigmaX ?? [
    [1, 0],
    [0, 1],
  ];
  if (sigmaX[0][1] !== 0 || sigmaX[1][0] !== 0)
    throw new InputError('data.sigmaX', `${where}: Σ_x must be diagonal`);
  if (init.kind === 'kaiming')
    throw new InputError('init', `${where}: the lab offers Xavier or N(0, s²) init`);
  const [a, b] = data.noiseStd;
  return parseLabState({
    depth: model.hidden.length + 1,
    width: model.hidden[0] ?? 2,
    V: data.V.flat(),
    sigmaX: [sigmaX[0][0], sigmaX[1][1]],
    noise: Math.max(a, b),
    // Rounded so κ = 100 stays 100 (3 / 0.3 is 10.000000000000002 in floating point).
    kappa: +((Math.max(a, b) / Math.min(a, b)) ** 2).toPrecision(12),
    // diag(a, b) with a < b is diag(b, a) rotated by 90°.
    angle: a >= b ? 0 : 90,
    learningRate: train.learningRate,
    batchSize: train.batchSize,
    replicas: group.seeds,
    init: init.kind === 'normal' ? 'normal' : 'xavier',
    initScale: init.kind === 'normal' ? init.scale : 1,
    mode: train.switchToGdAt === undefined ? 'sgd' : train.switchToGdAt === 0 ? 'gd' : 'switch',
    switchAt: train.switchToGdAt ?? Math.floor(train.steps / 2),
    gdBatchSize: train.gdBatchSize ?? 1000,
    steps: train.steps,
    every: measure.every,
    evaluationSamples: measure.evaluationSamples,
    seed: group.seed,
  });
}

/** The state a preset loads. */
export function presetState(preset: LabPreset): LabState {
  return stateFromGroup(presetGroup(preset));
}
