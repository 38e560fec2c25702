/**
 * Replicas, batches and shards.
 *
 * Replicas are numbered over the whole experiment, group-major: group g's seed s is replica
 * offset(g) + s. Every random stream of a replica (initialisation, minibatches, label noise,
 * evaluation set, curvature probes) is keyed by that number, so a replica trains the same whether it
 * runs alone, in a shard, or batched with other groups.
 */
import { InputError } from '../../errors.ts';
import { isLogPoint, logPoints } from '../../train/schedule.ts';
import {
  type ExperimentConfig,
  type ResolvedGroupConfig,
  type ValidatedGroup,
  validateExperiment,
} from '../config.ts';

/** Shard `index` of `count`: a contiguous range of the experiment's replicas (see `shardRange`). */
export interface ExperimentShard {
  index: number;
  count: number;
}

/** A group's seeds [firstSeed, firstSeed + seeds) inside a batch. */
export interface BatchMember {
  group: ValidatedGroup;
  groupIndex: number;
  firstSeed: number;
  seeds: number;
}

/** Consecutive groups that differ only in label noise, input covariance or initialisation: one job. */
export interface ReplicaBatch {
  members: BatchMember[];
  /** Global number of the batch's first replica. */
  offset: number;
  replicas: number;
}

/** Global number of each group's seed 0 (and, last, the total replica count). */
export function replicaOffsets(groups: readonly { resolved: { seeds: number } }[]): number[] {
  const offsets = [0];
  for (const g of groups) offsets.push(offsets[offsets.length - 1] + g.resolved.seeds);
  return offsets;
}

/**
 * The replicas [start, end) of shard `index` of `count`: contiguous ranges of near-equal size, so a
 * shard trains as few batches as possible. Bad specs are input errors naming --shard.
 */
export function shardRange(
  config: ExperimentConfig,
  shard: ExperimentShard,
): { start: number; end: number; total: number } {
  const total = replicaOffsets(validateExperiment(config)).at(-1) ?? 0;
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1)
    throw new InputError('--shard', `the shard count must be a positive integer, got ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new InputError('--shard', `the shard index must be an integer in 0…${count - 1}, got ${index}`);
  if (count > total)
    throw new InputError(
      '--shard',
      `${count} shards for ${total} replicas (groups × seeds): use at most ${total} shards`,
    );
  return {
    start: Math.floor((index * total) / count),
    end: Math.floor(((index + 1) * total) / count),
    total,
  };
}

/** File data may come without label noise (Σ_ε empty); every other kind has it. */
export function hasLabelNoise(group: ValidatedGroup): boolean {
  return group.sigmaEps.length > 0;
}

/** What must be equal for groups to share a batch: everything but noise, Σ_x and initialisation. */
function batchKey(group: ValidatedGroup): string {
  const { resolved } = group;
  const { noiseStd, noiseRotation, sigmaEps, sigmaX, ...data } = resolved.data as Record<string, unknown>;
  return JSON.stringify({
    model: resolved.model,
    loss: resolved.loss,
    data,
    train: resolved.train,
    measure: resolved.measure,
    seed: resolved.seed,
    // A fixed training set is drawn once for all replicas, so its noise must be the group's own.
    fixed: resolved.trainingSetSize === undefined ? null : [resolved.trainingSetSize, resolved.index],
    labelNoise: hasLabelNoise(group),
  });
}

/** The batches that train replicas [start, end) (default all), in config order. */
export function planBatches(
  groups: readonly ValidatedGroup[],
  range?: { start: number; end: number },
): ReplicaBatch[] {
  const offsets = replicaOffsets(groups);
  const start = range?.start ?? 0;
  const end = range?.end ?? offsets[groups.length];
  const batches: ReplicaBatch[] = [];
  let lastKey = '';
  groups.forEach((group, groupIndex) => {
    const first = Math.max(start, offsets[groupIndex]);
    const last = Math.min(end, offsets[groupIndex + 1]);
    if (first >= last) return;
    const member = { group, groupIndex, firstSeed: first - offsets[groupIndex], seeds: last - first };
    const key = batchKey(group);
    const open = batches.at(-1);
    if (open && key === lastKey) {
      open.members.push(member);
      open.replicas += member.seeds;
    } else {
      batches.push({ members: [member], offset: first, replicas: member.seeds });
    }
    lastKey = key;
  });
  return batches;
}

/** The batches of a run of `config`: all replicas, or those of `shard`. */
export function planRun(config: ExperimentConfig, shard?: ExperimentShard | null): ReplicaBatch[] {
  return planBatches(validateExperiment(config), shard ? shardRange(config, shard) : undefined);
}

/** The log points of a group (updates applied, 0 = the initialisation, the last = the end), ascending. */
export function logSteps(resolved: Pick<ResolvedGroupConfig, 'train' | 'measure'>): number[] {
  return logPoints({ every: resolved.measure.every, steps: resolved.train.steps });
}

/**
 * Whether a checkpoint may name `step` (updates applied, the next to take) as its own: a log point
 * strictly inside the run (none at 0, rebuilt from the seeds, nor at the end, the run is done).
 */
export function isCheckpointStep(
  resolved: Pick<ResolvedGroupConfig, 'train' | 'measure'>,
  step: number,
): boolean {
  const { steps } = resolved.train;
  return (
    Number.isInteger(step) &&
    step > 0 &&
    step < steps &&
    isLogPoint(step, { every: resolved.measure.every, steps })
  );
}

/** Training steps of a batch (every member shares them, see batchKey). */
export function batchSteps(batch: ReplicaBatch): number {
  return batch.members[0].group.resolved.train.steps;
}

/** Per-replica list of a member property, repeated over each member's seeds. */
export function perSlot<T>(batch: ReplicaBatch, value: (member: BatchMember) => T): T[] {
  return batch.members.flatMap((m) => Array.from({ length: m.seeds }, () => value(m)));
}

/** Seed within its group of each replica of the batch. */
export function replicaSeeds(batch: ReplicaBatch): number[] {
  return batch.members.flatMap((m) => Array.from({ length: m.seeds }, (_, s) => m.firstSeed + s));
}

/** `group/seed` of each replica of the batch: the prefix of its tensors in weights.safetensors. */
export function replicaNames(batch: ReplicaBatch): string[] {
  return batch.members.flatMap((m) =>
    Array.from({ length: m.seeds }, (_, s) => `${m.group.resolved.group}/${m.firstSeed + s}`),
  );
}

/** The batch's group name, or the first … last of the groups it holds (for progress lines). */
export function batchLabel(batch: ReplicaBatch): string {
  const names = batch.members.map((m) => m.group.resolved.group);
  return names.length === 1 ? names[0] : `${names[0]} … ${names[names.length - 1]}`;
}
