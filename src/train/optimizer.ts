/**
 * Optimizers and learning-rate schedules of the general training path, as data (zod schemas shared
 * by configs and the `train()` API) and as GPU state (momentum buffers, Adam moments) batched over
 * replicas like the parameters.
 *
 * Conventions (PyTorch's): η_s = learningRate · schedule factor at step s (s counts updates already
 * applied, from 0). Weight decay λ is L2 by default — g ← g + λθ before the update, as in
 * `torch.optim.SGD` and `Adam` — or decoupled with `decoupledWeightDecay: true` — θ ← θ − η_s λ θ
 * before the update, as in `AdamW`. Momentum: b ← μ b + g, θ ← θ − η b (heavy ball) or
 * θ − η (g + μ b) (Nesterov). Adam: bias-corrected moments with t = s + 1.
 */
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { accumulate, fill } from '../kernels/elementwise.ts';
import { adamUpdate, momentumUpdate, sgdUpdate } from '../kernels/optimizer.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';

const finite = () => z.number().finite('must be a finite number');
const fraction = () => finite().min(0, 'must be in [0, 1)').lt(1, 'must be in [0, 1)');
const decayFields = {
  /** λ ≥ 0 (default 0). */
  weightDecay: finite().min(0, 'must be non-negative').default(0),
  /** θ ← θ − ηλθ (AdamW) instead of L2 g ← g + λθ (default false). */
  decoupledWeightDecay: z.boolean().default(false),
};

/** `train.optimizer` of a config, `optimizer` of `train()`. Defaults are filled in by parsing. */
export const optimizerSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('sgd'), ...decayFields }),
  z.strictObject({
    kind: z.literal('momentum'),
    momentum: fraction().default(0.9),
    nesterov: z.boolean().default(false),
    ...decayFields,
  }),
  z.strictObject({
    kind: z.literal('adam'),
    beta1: fraction().default(0.9),
    beta2: fraction().default(0.999),
    epsilon: finite().positive('must be positive').default(1e-8),
    ...decayFields,
  }),
]);

const positiveInt = () => z.number().int('must be an integer').min(1, 'must be a positive integer');
const warmup = {
  warmupSteps: z.number().int('must be an integer').min(0, 'must be non-negative').default(0),
};

/**
 * `train.schedule`: the factor f(s) with η_s = learningRate · f(s), times a linear warm-up
 * min(1, (s + 1) / warmupSteps) when warmupSteps > 0.
 * - constant: f = 1
 * - step: f = factor^⌊s / every⌋
 * - cosine: f = minFactor + (1 − minFactor) · ½ (1 + cos(π · min(s, T) / T)), T = `steps` (default:
 *   the run's train.steps)
 */
export const scheduleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant'), ...warmup }),
  z.strictObject({
    kind: z.literal('step'),
    every: positiveInt(),
    factor: finite().positive('must be positive'),
    ...warmup,
  }),
  z.strictObject({
    kind: z.literal('cosine'),
    steps: positiveInt().optional(),
    minFactor: finite().min(0, 'must be in [0, 1]').max(1, 'must be in [0, 1]').default(0),
    ...warmup,
  }),
]);

export type OptimizerSpec = z.infer<typeof optimizerSchema>;
export type OptimizerInput = z.input<typeof optimizerSchema>;
export type ScheduleSpec = z.infer<typeof scheduleSchema>;
export type ScheduleInput = z.input<typeof scheduleSchema>;

export const PLAIN_SGD: OptimizerSpec = { kind: 'sgd', weightDecay: 0, decoupledWeightDecay: false };
export const CONSTANT_SCHEDULE: ScheduleSpec = { kind: 'constant', warmupSteps: 0 };

/** Plain SGD at a constant rate: the paper's update, the only one the fused kernels run. */
export function isPlainSgd(optimizer?: OptimizerSpec, schedule?: ScheduleSpec): boolean {
  const plainOptimizer = !optimizer || (optimizer.kind === 'sgd' && optimizer.weightDecay === 0);
  const constantRate = !schedule || (schedule.kind === 'constant' && schedule.warmupSteps === 0);
  return plainOptimizer && constantRate;
}

/** Why the fused path refuses this optimizer or schedule (undefined: it does not). */
export function fusedRefusal(optimizer?: OptimizerSpec, schedule?: ScheduleSpec): string | undefined {
  if (isPlainSgd(optimizer, schedule)) return undefined;
  return "the fused kernels run plain SGD at a constant learning rate (no momentum, Adam, weight decay or schedule); use path 'general' or 'auto'";
}

/** The learning rate of the update at step s (s = updates already applied, from 0). */
export function learningRateAt(
  learningRate: number,
  schedule: ScheduleSpec | undefined,
  step: number,
  totalSteps: number,
): number {
  if (!schedule) return learningRate;
  let factor = 1;
  if (schedule.kind === 'step') factor = schedule.factor ** Math.floor(step / schedule.every);
  if (schedule.kind === 'cosine') {
    const horizon = schedule.steps ?? totalSteps;
    const progress = Math.min(step, horizon) / horizon;
    factor = schedule.minFactor + (1 - schedule.minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
  if (schedule.warmupSteps > 0) factor *= Math.min(1, (step + 1) / schedule.warmupSteps);
  return learningRate * factor;
}

/** Parses an optimizer given in code; errors name `field` and the JSON path inside it. */
export function parseOptimizer(raw: unknown, field = 'optimizer'): OptimizerSpec {
  return parseOrThrow(optimizerSchema, raw, field);
}

/** Parses a schedule given in code; errors name `field` and the JSON path inside it. */
export function parseSchedule(raw: unknown, field = 'schedule'): ScheduleSpec {
  return parseOrThrow(scheduleSchema, raw, field);
}

function parseOrThrow<S extends z.ZodType>(schema: S, raw: unknown, field: string): z.infer<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
  throw new InputError(`${field}${path}`, issue.message);
}

/**
 * An optimizer's state on the GPU for parameters batched over R replicas: one momentum buffer, or
 * Adam's two moments, per parameter tensor (zero at the start). Plain SGD has none.
 */
export class OptimizerState {
  /** The state tensors in a fixed order (per parameter: b, or m then v) — what a checkpoint stores. */
  readonly tensors: Tensor[];

  constructor(
    private readonly engine: Engine,
    readonly optimizer: OptimizerSpec,
    params: readonly Tensor[],
  ) {
    const slots = optimizer.kind === 'momentum' ? 1 : optimizer.kind === 'adam' ? 2 : 0;
    this.tensors = params.flatMap((p) =>
      Array.from({ length: slots }, (_, k) =>
        fill(engine, engine.empty(p.shape, { batch: p.batch, label: `${optimizer.kind} state ${k}` }), 0),
      ),
    );
  }

  /**
   * Applies the update of step s (updates already applied, from 0) to every parameter from its
   * gradient, at this step's learning rate (see `learningRateAt`).
   */
  update(params: readonly Tensor[], grads: readonly Tensor[], step: number, learningRate: number): void {
    const { engine, optimizer } = this;
    const decay = {
      learningRate,
      weightDecay: optimizer.weightDecay,
      decoupled: optimizer.decoupledWeightDecay,
    };
    params.forEach((p, i) => {
      const g = grads[i];
      switch (optimizer.kind) {
        case 'sgd':
          // The paper's update, launched exactly as before optimizers existed (bit-identical runs).
          if (optimizer.weightDecay === 0) accumulate(engine, p, g, 1, -learningRate);
          else sgdUpdate(engine, p, g, decay);
          return;
        case 'momentum':
          momentumUpdate(engine, p, g, this.tensors[i], {
            ...decay,
            momentum: optimizer.momentum,
            nesterov: optimizer.nesterov,
          });
          return;
        case 'adam':
          adamUpdate(engine, p, g, this.tensors[2 * i], this.tensors[2 * i + 1], {
            ...decay,
            beta1: optimizer.beta1,
            beta2: optimizer.beta2,
            epsilon: optimizer.epsilon,
            t: step + 1,
          });
          return;
      }
    });
  }

  /** The state as plain arrays (replica-major, like the parameters), for a checkpoint. */
  async read(): Promise<number[][]> {
    return Promise.all(this.tensors.map(async (t) => Array.from(await t.read())));
  }

  /** Restores what `read` returned (a checkpoint of the same optimizer, model and replicas). */
  write(values: readonly (readonly number[])[], field = '--resume'): void {
    if (values.length !== this.tensors.length || values.some((v, i) => v.length !== this.tensors[i].length))
      throw new InputError(
        field,
        `the saved ${this.optimizer.kind} state does not match this model and optimizer`,
      );
    values.forEach((v, i) => {
      this.engine.write(this.tensors[i], v);
    });
  }

  dispose(): void {
    for (const t of this.tensors) t.dispose();
  }
}
