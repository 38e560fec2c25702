/**
 * A checkpoint file knows which run wrote it: its identity (the exact config, shard, package version
 * and results format) and a fingerprint of that identity. `checkCheckpoint` reads a checkpoint
 * through a schema and against the run about to resume, so `--resume` never mixes two runs' rows and
 * never trusts a damaged file: every refusal is an InputError naming what differs or which field is
 * damaged. Pure CPU (no GPU, no files): the host reads the file and calls it before any work.
 */
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { type ExperimentConfig, formatPath, validateExperiment } from './config.ts';
import {
  type Checkpoint,
  type ExperimentShard,
  isCheckpointStep,
  logSteps,
  planBatches,
  shardRange,
} from './executor.ts';
import { RESULTS_FORMAT, rowSchema } from './results.ts';

/** What makes two runs the same run: resuming is allowed only into an equal identity. */
export interface RunIdentity {
  experiment: string;
  /** The exact config used (quick already applied; seed and seeds included). */
  config: ExperimentConfig;
  shard: ExperimentShard | null;
  packageVersion: string;
  resultsFormat: number;
}

/** A checkpoint as written to checkpoint.json: the executor's state plus the run's identity. */
export interface CheckpointFile extends Checkpoint {
  identity: RunIdentity;
  /** `fingerprint(identity)`: a quick equality check, and a guard against hand edits of the identity. */
  fingerprint: string;
}

/** The identity of a run of `config` (one shard of it, or all replicas). */
export function runIdentity(
  config: ExperimentConfig,
  shard: ExperimentShard | undefined | null,
  packageVersion: string,
): RunIdentity {
  return {
    experiment: config.name,
    config,
    shard: shard ? { index: shard.index, count: shard.count } : null,
    packageVersion,
    resultsFormat: RESULTS_FORMAT,
  };
}

/** JSON with object keys sorted at every level, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** 64-bit FNV-1a of the identity's canonical JSON, as 16 hex digits (an equality check, not a secret). */
export function fingerprint(identity: RunIdentity): string {
  const text = canonicalJson(identity);
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0');
}

/** The checkpoint file for a state of the run `identity`. */
export function checkpointFile(state: Checkpoint, identity: RunIdentity): CheckpointFile {
  return { ...state, identity, fingerprint: fingerprint(identity) };
}

/** The first place two JSON values differ: its path and both values (undefined when they are equal). */
export function firstDifference(
  a: unknown,
  b: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; was: unknown; now: unknown } | undefined {
  const isObject = (v: unknown) => v !== null && typeof v === 'object';
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const found = firstDifference(a[i], b[i], [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  if (isObject(a) && isObject(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const left = a as Record<string, unknown>;
    const right = b as Record<string, unknown>;
    for (const key of [...new Set([...Object.keys(left), ...Object.keys(right)])]) {
      const found = firstDifference(left[key], right[key], [...path, key]);
      if (found) return found;
    }
    return undefined;
  }
  return canonicalJson(a) === canonicalJson(b) ? undefined : { path, was: a, now: b };
}

const shardSchema = z.strictObject({ index: z.number().int().min(0), count: z.number().int().min(1) });

const identitySchema = z.strictObject({
  experiment: z.string(),
  config: z.record(z.string(), z.unknown()),
  shard: shardSchema.nullable(),
  packageVersion: z.string(),
  resultsFormat: z.number().int(),
});

const checkpointSchema = z.strictObject({
  version: z.literal(2),
  experiment: z.string(),
  shard: shardSchema.nullable(),
  batchIndex: z.number().int('must be an integer').min(0, 'must be at least 0'),
  step: z.number().int('must be an integer').min(1, 'must be at least 1'),
  params: z.array(z.array(z.number())),
  // A frozen (diverged) replica's optimizer state may be NaN, written as null.
  optimizerState: z.array(z.array(z.number().nullable())).optional(),
  rows: z.array(rowSchema),
  divergences: z.array(
    z.strictObject({
      group: z.string(),
      replica: z.number().int().min(0),
      step: z.number().int().min(0),
      loss: z.number().nullable(),
    }),
  ),
  weights: z
    .array(
      z.strictObject({
        name: z.string(),
        shape: z.array(z.number().int().min(1)),
        values: z.array(z.number()),
      }),
    )
    .optional(),
  identity: identitySchema,
  fingerprint: z.string(),
});

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/**
 * Reads `raw` (the parsed checkpoint.json at `file`) as a checkpoint of the run `identity`: a damaged
 * file (wrong shape, a number out of range for this config) or one of another run (any identity field
 * differs) is an InputError on `--resume` naming the field. Returns the state to resume.
 */
export function checkCheckpoint(raw: unknown, file: string, identity: RunIdentity): Checkpoint {
  const damaged = (field: string, message: string) =>
    new InputError(
      '--resume',
      `${file} is damaged at '${field}': ${message}; delete it and run without --resume`,
    );
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw damaged('checkpoint', `expected a checkpoint object, got ${shown(raw)}`);
  if (!('identity' in raw))
    throw new InputError(
      '--resume',
      `${file} records no run identity (written by an older sharpness-lab); delete it and run without --resume`,
    );
  const parsed = checkpointSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
    const input = issue.path.reduce<unknown>(
      (value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey],
      raw,
    );
    throw damaged(
      formatPath(path),
      issue.code === 'unrecognized_keys' ? 'unknown field' : `${issue.message} (got ${shown(input)})`,
    );
  }
  const state = parsed.data;
  if (state.fingerprint !== fingerprint(state.identity as RunIdentity))
    throw damaged('fingerprint', 'does not match the identity recorded beside it (edited by hand?)');
  const difference = firstDifference(state.identity, identity);
  if (difference) {
    const [head, ...rest] = difference.path;
    const field = head === 'config' && rest.length > 0 ? formatPath(rest) : formatPath(difference.path);
    throw new InputError(
      '--resume',
      `${file} belongs to a different run: ${field} is ${shown(difference.now)} now but was ${shown(difference.was)} in the checkpoint's run; start afresh without --resume (or give this run its own --out)`,
    );
  }
  if (state.experiment !== identity.experiment)
    throw damaged('experiment', `names '${state.experiment}', its identity '${identity.experiment}'`);
  if (canonicalJson(state.shard) !== canonicalJson(identity.shard))
    throw damaged('shard', `${shown(state.shard)} differs from its identity's ${shown(identity.shard)}`);

  const config = identity.config;
  const groups = validateExperiment(config);
  const batches = planBatches(groups, identity.shard ? shardRange(config, identity.shard) : undefined);
  if (state.batchIndex >= batches.length)
    throw damaged(
      'batchIndex',
      `must be below ${batches.length} (the run's replica batches), got ${state.batchIndex}`,
    );
  const batch = batches[state.batchIndex];
  const first = batch.members[0].group;
  if (!isCheckpointStep(first.resolved, state.step))
    throw damaged(
      'step',
      `${state.step} is not a log point inside the run (0 < step < train.steps) of train.steps ${first.resolved.train.steps} with measure.every ${first.resolved.measure.every}`,
    );
  const parameters = first.model.parameters;
  if (state.params.length !== parameters.length)
    throw damaged('params', `holds ${state.params.length} tensors, the model has ${parameters.length}`);
  parameters.forEach((spec, i) => {
    const expected = batch.replicas * spec.shape.reduce((a, b) => a * b, 1);
    if (state.params[i].length !== expected)
      throw damaged(
        `params[${i}]`,
        `holds ${state.params[i].length} values, ${spec.name} of ${batch.replicas} replicas has ${expected}`,
      );
  });

  const byName = new Map(groups.map((g) => [g.resolved.group, g.resolved]));
  const seen = new Set<string>();
  state.rows.forEach((row, i) => {
    const group = byName.get(row.group);
    if (row.experiment !== identity.experiment)
      throw damaged(`rows[${i}].experiment`, `'${row.experiment}' is not '${identity.experiment}'`);
    if (!group) throw damaged(`rows[${i}].group`, `no group '${row.group}' in the config`);
    if (row.seed !== 'theory' && !(Number.isInteger(row.seed) && row.seed >= 0 && row.seed < group.seeds))
      throw damaged(
        `rows[${i}].seed`,
        `must be 'theory' or an integer in 0…${group.seeds - 1}, got ${shown(row.seed)}`,
      );
    const onLogPoint =
      row.seed === 'theory' || row.metric === 'relativeSharpness'
        ? Number.isInteger(row.step) && row.step >= 0 && row.step <= group.train.steps
        : logSteps(group).includes(row.step);
    if (!onLogPoint)
      throw damaged(`rows[${i}].step`, `${shown(row.step)} is not a log point of group '${row.group}'`);
    const key = canonicalJson([row.group, row.seed, row.step, row.metric]);
    if (seen.has(key))
      throw damaged(
        `rows[${i}]`,
        `repeats group '${row.group}' seed ${row.seed} step ${row.step} ${row.metric}`,
      );
    seen.add(key);
  });
  state.divergences.forEach((d, i) => {
    const group = byName.get(d.group);
    if (!group) throw damaged(`divergences[${i}].group`, `no group '${d.group}' in the config`);
    if (d.replica >= group.seeds)
      throw damaged(`divergences[${i}].replica`, `must be below ${group.seeds}, got ${d.replica}`);
  });
  return {
    version: 2,
    experiment: state.experiment,
    shard: state.shard,
    batchIndex: state.batchIndex,
    step: state.step,
    params: state.params,
    ...(state.optimizerState && {
      optimizerState: state.optimizerState.map((values) => values.map((v) => v ?? Number.NaN)),
    }),
    ...(state.weights && { weights: state.weights }),
    rows: state.rows.map((row) => ({ ...row, value: row.value ?? Number.NaN })),
    divergences: state.divergences.map((d) => ({ ...d, loss: d.loss ?? Number.NaN })),
  };
}
