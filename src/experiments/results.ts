/**
 * Results as tidy rows — one measured number per row: (experiment, group, seed, step, metric, value),
 * seed = replica index 0 … seeds − 1, or 'theory' for the closed-form line — with CSV output and the
 * statistics the plots and the report show: mean ± standard error over seeds at each step, and the
 * late-window "final" value of each seed averaged over seeds.
 */
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { meanAndStandardError } from '../statistics.ts';
import { type ExperimentConfig, parseExperimentConfig, resolveGroup } from './config.ts';
import type { MetricDefinition } from './definitions.ts';

export interface ResultRow {
  experiment: string;
  group: string;
  /** Replica index within the group (0-based), or 'theory' for closed-form values. */
  seed: number | 'theory';
  /** Training steps taken when measured. */
  step: number;
  /** `loss`, `sharpness`, `lambdaMax`, `fluctuation`, `layerCondition.<layer>`, … */
  metric: string;
  value: number;
  /** Metric `density` only: the eigenvalue at which `value` is the spectral density. */
  eigenvalue?: number;
}

/** A replica whose loss became non-finite or exceeded the bound (from the trainer's reports). */
export interface Divergence {
  group: string;
  replica: number;
  step: number;
  loss: number;
}

/** The content of results.json: everything needed to re-render the report without re-running. */
export interface ExperimentResults {
  experiment: string;
  /** The adapter it ran on, in words (vendor, architecture, description, backend). */
  adapter: string;
  /** ISO 8601 start time. */
  startedAt: string;
  wallSeconds: number;
  /** The exact config used (quick already applied when run with --quick). */
  config: ExperimentConfig;
  rows: ResultRow[];
  divergences: Divergence[];
  /** What each (group, metric) is: "population, exact" or "sample of n = …" (absent in older files). */
  definitions?: MetricDefinition[];
  /** Whether the config is a preset's quick form. */
  quick?: boolean;
  /** Written at a log point of a run still going (the rows so far); absent once it has ended. */
  inProgress?: boolean;
  /** Set when this is one shard of a sharded run (`run --shard i/n`); `merge` combines the shards. */
  shard?: ShardSpec;
}

/**
 * results.json of a run: its rows in the canonical order and its divergences, with where and when it
 * ran (`adapter` in words, e.g. `adapterSummary`).
 */
export function experimentResults(
  config: ExperimentConfig,
  outcome: { rows: readonly ResultRow[]; divergences: readonly Divergence[] },
  run: { adapter: string; startedAt: Date; wallSeconds: number; quick?: boolean },
): ExperimentResults {
  return {
    experiment: config.name,
    adapter: run.adapter,
    startedAt: run.startedAt.toISOString(),
    wallSeconds: run.wallSeconds,
    config,
    rows: canonicalRowOrder(config, outcome.rows),
    divergences: outcome.divergences.map((d) => ({
      group: d.group,
      replica: d.replica,
      step: d.step,
      loss: d.loss,
    })),
    ...(run.quick !== undefined && { quick: run.quick }),
  };
}

/** JSON as the result files are written: two-space indented, with a final newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Shard `index` of `count` (0 ≤ index < count): a contiguous range of the run's replicas. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** A group's replicas that diverged (frozen from that log point on, left out of its final values). */
export interface GroupDivergence {
  group: string;
  /** Replicas of the group (its seeds) and those that diverged, by seed. */
  seeds: number;
  diverged: Divergence[];
}

/** Per group with at least one diverged replica: which, in config order (seeds ascending). */
export function groupDivergences(
  config: ExperimentConfig,
  divergences: readonly Divergence[],
): GroupDivergence[] {
  return config.groups.flatMap((group) => {
    const diverged = divergences.filter((d) => d.group === group.name).sort((a, b) => a.replica - b.replica);
    return diverged.length === 0
      ? []
      : [{ group: group.name, seeds: resolveGroup(config, group.name).seeds, diverged }];
  });
}

/** In words: "7 of 8 seeds; seed 3 diverged at step 200", or "all 8 seeds diverged (…)". */
export function describeDivergence({ seeds, diverged }: GroupDivergence): string {
  const which = diverged.map((d) => `seed ${d.replica} diverged at step ${d.step}`).join(', ');
  if (diverged.length >= seeds) return `all ${seeds} seeds diverged (${which}): no results`;
  return `${seeds - diverged.length} of ${seeds} seeds; ${which}`;
}

// ---------------------------------------------------------------------------------------------------
// Canonical row order

/** Measured metrics in the order they appear in files; others (layerCondition.*, …) follow by name. */
const METRIC_ORDER = ['loss', 'sharpness', 'lambdaMax', 'lambdaMaxAtMinimum', 'fluctuation'];

function metricRank(metric: string): number {
  const index = METRIC_ORDER.indexOf(metric);
  if (index >= 0) return index;
  return metric === 'relativeSharpness' ? METRIC_ORDER.length + 2 : METRIC_ORDER.length + 1;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The rows in the one order every writer uses (a single run and a merge of shards give equal files):
 * by group in config order, then metric (loss, sharpness, lambdaMax, fluctuation, the rest by name,
 * relativeSharpness last), step ascending, seed ascending with the 'theory' row after the replicas.
 * Groups the config does not name (none in valid results) go last, by name. Returns a new array.
 */
export function canonicalRowOrder(
  config: Pick<ExperimentConfig, 'groups'>,
  rows: readonly ResultRow[],
): ResultRow[] {
  const groupRank = new Map(config.groups.map((g, i) => [g.name, i]));
  const rank = (group: string) => groupRank.get(group) ?? config.groups.length;
  const seedRank = (seed: number | 'theory') => (seed === 'theory' ? Number.POSITIVE_INFINITY : seed);
  return [...rows].sort(
    (a, b) =>
      rank(a.group) - rank(b.group) ||
      compareText(a.group, b.group) ||
      metricRank(a.metric) - metricRank(b.metric) ||
      compareText(a.metric, b.metric) ||
      a.step - b.step ||
      (seedRank(a.seed) === seedRank(b.seed) ? 0 : seedRank(a.seed) < seedRank(b.seed) ? -1 : 1),
  );
}

// ---------------------------------------------------------------------------------------------------
// CSV (RFC 4180)

export const CSV_HEADER = 'experiment,group,seed,step,metric,value';
/** The header when the rows hold a spectral density (metric `density`, see `toCsv`). */
export const CSV_HEADER_WITH_EIGENVALUE = `${CSV_HEADER},eigenvalue`;

/** A field quoted when it holds a comma, a double quote, CR or LF (quotes doubled), as RFC 4180 says. */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The rows as CSV: header `experiment,group,seed,step,metric,value`, CRLF line breaks (RFC 4180),
 * numbers in JavaScript's shortest round-trip form (NaN, Infinity and -Infinity spelt out). When any
 * row is a `density` row, a seventh column `eigenvalue` follows (empty on the other rows).
 */
export function toCsv(rows: readonly ResultRow[]): string {
  const withEigenvalue = rows.some((row) => row.eigenvalue !== undefined);
  const lines = [withEigenvalue ? CSV_HEADER_WITH_EIGENVALUE : CSV_HEADER];
  for (const row of rows) {
    const fields: (string | number)[] = [
      row.experiment,
      row.group,
      row.seed,
      row.step,
      row.metric,
      row.value,
    ];
    if (withEigenvalue) fields.push(row.eigenvalue ?? '');
    lines.push(fields.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Splits RFC 4180 CSV text into records of fields (accepts CRLF or LF line breaks). */
export function parseCsvRecords(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      if (c === '\r' && text[i + 1] === '\n') i++;
    } else field += c;
    i++;
  }
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

/** Rows back from `toCsv` output. */
export function fromCsv(text: string): ResultRow[] {
  const [header, ...records] = parseCsvRecords(text);
  const columns = header?.join(',');
  if (columns !== CSV_HEADER && columns !== CSV_HEADER_WITH_EIGENVALUE)
    throw new InputError('results.csv', `expected the header '${CSV_HEADER}'`);
  return records.map((fields, i) => {
    if (fields.length !== header.length)
      throw new InputError(
        `results.csv line ${i + 2}`,
        `expected ${header.length} fields, got ${fields.length}`,
      );
    const [experiment, group, seed, step, metric, value, eigenvalue] = fields;
    return {
      experiment,
      group,
      seed: seed === 'theory' ? 'theory' : Number(seed),
      step: Number(step),
      metric,
      value: Number(value),
      ...(eigenvalue !== undefined && eigenvalue !== '' && { eigenvalue: Number(eigenvalue) }),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Statistics (mean ± standard error: see src/statistics.ts)

export interface SummaryRow {
  group: string;
  metric: string;
  step: number;
  /** Mean over seeds of the finite values (a theory row: its value). */
  mean: number;
  /** Over seeds (NaN with one seed); 0 for a theory row, a closed form rather than a sample. */
  standardError: number;
  /** Seeds with a finite value at this step (non-finite values, e.g. diverged replicas, are left out). */
  count: number;
  theory: boolean;
}

/**
 * Mean and standard error over seeds per (group, metric, step); theory rows are summarised apart
 * (`theory: true`). Groups and metrics keep their order of first appearance, steps ascend.
 */
export function summarise(rows: readonly ResultRow[]): SummaryRow[] {
  const buckets = new Map<
    string,
    { group: string; metric: string; step: number; theory: boolean; values: number[] }
  >();
  const groupOrder = new Map<string, number>();
  const metricOrder = new Map<string, number>();
  for (const row of rows) {
    if (row.eigenvalue !== undefined) continue; // a density is a curve, not a value per step
    if (!groupOrder.has(row.group)) groupOrder.set(row.group, groupOrder.size);
    if (!metricOrder.has(row.metric)) metricOrder.set(row.metric, metricOrder.size);
    const theory = row.seed === 'theory';
    const key = JSON.stringify([row.group, row.metric, row.step, theory]);
    let bucket = buckets.get(key);
    if (!bucket) {
      bucket = { group: row.group, metric: row.metric, step: row.step, theory, values: [] };
      buckets.set(key, bucket);
    }
    if (Number.isFinite(row.value)) bucket.values.push(row.value);
  }
  const out = [...buckets.values()].map((b) => {
    const { mean, standardError } = meanAndStandardError(b.values);
    return {
      group: b.group,
      metric: b.metric,
      step: b.step,
      mean,
      standardError: b.theory ? 0 : standardError,
      count: b.values.length,
      theory: b.theory,
    };
  });
  return out.sort(
    (a, b) =>
      (groupOrder.get(a.group) ?? 0) - (groupOrder.get(b.group) ?? 0) ||
      (metricOrder.get(a.metric) ?? 0) - (metricOrder.get(b.metric) ?? 0) ||
      Number(a.theory) - Number(b.theory) ||
      a.step - b.step,
  );
}

export interface FinalValue {
  group: string;
  metric: string;
  /** Mean over seeds of each seed's late-window mean (NaN when only theory rows exist). */
  mean: number;
  standardError: number;
  /** Seeds that contributed (with at least one finite value in the window). */
  count: number;
  /** Steps averaged: every logged step s with from ≤ s ≤ to. */
  window: [number, number];
  /** The closed-form value (theory row at the latest step), when the group has one. */
  theory?: number;
}

type LateWindow = number | ((group: string) => number);

function windowOf(lateWindow: LateWindow, group: string): number {
  const fraction = typeof lateWindow === 'function' ? lateWindow(group) : lateWindow;
  if (!(fraction > 0 && fraction <= 1))
    throw new InputError('lateWindow', `must be in (0, 1], got ${fraction}`);
  return fraction;
}

interface LateMeans {
  group: string;
  metric: string;
  window: [number, number];
  /** Each seed's mean over the window (finite values only). */
  bySeed: Map<number, number>;
  theory?: number;
}

/**
 * Each seed's mean over the late window: the logged steps s ≥ last − f·(last − first), where first and
 * last are the group's first and last logged steps of that metric and f the late-window fraction.
 * Only seeds measured at `last` count (a replica that diverged stops having rows).
 */
function lateMeans(rows: readonly ResultRow[], lateWindow: LateWindow): LateMeans[] {
  const byKey = new Map<
    string,
    { group: string; metric: string; measured: ResultRow[]; theory: ResultRow[] }
  >();
  for (const row of rows) {
    if (row.eigenvalue !== undefined) continue; // a density is a curve, not a value per step
    const key = JSON.stringify([row.group, row.metric]);
    let entry = byKey.get(key);
    if (!entry) {
      entry = { group: row.group, metric: row.metric, measured: [], theory: [] };
      byKey.set(key, entry);
    }
    (row.seed === 'theory' ? entry.theory : entry.measured).push(row);
  }
  const out: LateMeans[] = [];
  for (const { group, metric, measured, theory } of byKey.values()) {
    const fraction = windowOf(lateWindow, group);
    let window: [number, number] = [Number.NaN, Number.NaN];
    const bySeed = new Map<number, number>();
    if (measured.length > 0) {
      let first = Number.POSITIVE_INFINITY;
      let last = Number.NEGATIVE_INFINITY;
      for (const row of measured) {
        first = Math.min(first, row.step);
        last = Math.max(last, row.step);
      }
      const from = last - fraction * (last - first);
      window = [measured.filter((r) => r.step >= from).reduce((m, r) => Math.min(m, r.step), last), last];
      // A replica frozen as diverged has no row at the last step: it has no final value.
      const survivors = new Set(measured.filter((r) => r.step === last).map((r) => r.seed));
      const sums = new Map<number, { sum: number; n: number }>();
      for (const row of measured) {
        if (row.step < from || !Number.isFinite(row.value) || !survivors.has(row.seed)) continue;
        const seed = row.seed as number;
        const s = sums.get(seed) ?? { sum: 0, n: 0 };
        s.sum += row.value;
        s.n++;
        sums.set(seed, s);
      }
      for (const [seed, s] of [...sums.entries()].sort((a, b) => a[0] - b[0])) bySeed.set(seed, s.sum / s.n);
    }
    let theoryValue: number | undefined;
    if (theory.length > 0) {
      const latest = theory.reduce((best, row) => (row.step >= best.step ? row : best));
      theoryValue = latest.value;
    }
    out.push({ group, metric, window, bySeed, ...(theoryValue !== undefined && { theory: theoryValue }) });
  }
  return out;
}

/**
 * The "final" value of each (group, metric): every seed's mean over the late window (the last
 * `lateWindow` fraction of the logged steps), then mean ± standard error over seeds; theory rows give
 * `theory`. Non-finite values are left out. `lateWindow` may differ per group.
 */
export function finalValues(rows: readonly ResultRow[], lateWindow: LateWindow): FinalValue[] {
  return lateMeans(rows, lateWindow).map(({ group, metric, window, bySeed, theory }) => {
    const { mean, standardError } = meanAndStandardError([...bySeed.values()]);
    return {
      group,
      metric,
      mean,
      standardError,
      count: bySeed.size,
      window,
      ...(theory !== undefined && { theory }),
    };
  });
}

/**
 * Final values relative to a reference group (e.g. T(κ) / T(isotropic)): for each seed present in
 * both, the ratio of the two late-window means; then mean ± standard error over those seeds. The
 * theory ratio when both have theory. Groups without a reference are left out.
 */
export function relativeFinalValues(
  rows: readonly ResultRow[],
  lateWindow: LateWindow,
  references: Readonly<Record<string, string | undefined>>,
): FinalValue[] {
  const late = lateMeans(rows, lateWindow);
  const byKey = new Map(late.map((entry) => [`${entry.group}\u0000${entry.metric}`, entry]));
  const out: FinalValue[] = [];
  for (const entry of late) {
    const referenceName = references[entry.group];
    if (referenceName === undefined) continue;
    const reference = byKey.get(`${referenceName}\u0000${entry.metric}`);
    if (!reference) continue;
    const ratios: number[] = [];
    for (const [seed, value] of entry.bySeed) {
      const base = reference.bySeed.get(seed);
      if (base !== undefined && base !== 0) ratios.push(value / base);
    }
    const { mean, standardError } = meanAndStandardError(ratios);
    const theory =
      entry.theory !== undefined && reference.theory !== undefined && reference.theory !== 0
        ? entry.theory / reference.theory
        : undefined;
    out.push({
      group: entry.group,
      metric: entry.metric,
      mean,
      standardError,
      count: ratios.length,
      window: entry.window,
      ...(theory !== undefined && { theory }),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// results.json

/**
 * Version of what rows mean (their fields, the meaning of `step`, the metrics' definitions). Bump it
 * when that changes: a checkpoint of another version cannot be resumed into the same results.
 * 2: `step` counts the updates applied (0 = the initialisation, measured; the last log point is the
 * end of training; see src/train/schedule.ts), where 1 numbered log points by the 0-based step taken.
 */
export const RESULTS_FORMAT = 2;

/** One row of results.json or of a checkpoint (a value of null is NaN: JSON has no NaN). */
export const rowSchema = z.object({
  experiment: z.string(),
  group: z.string(),
  seed: z.union([z.number(), z.literal('theory')]),
  step: z.number(),
  metric: z.string(),
  // JSON has no NaN or Infinity: JSON.stringify writes them as null, read back as NaN.
  value: z.number().nullable(),
  /** `density` rows only (see ResultRow). */
  eigenvalue: z.number().optional(),
});

const resultsSchema = z.object({
  experiment: z.string(),
  adapter: z.string(),
  startedAt: z.string(),
  wallSeconds: z.number(),
  config: z.unknown(),
  rows: z.array(rowSchema),
  divergences: z.array(
    z.object({ group: z.string(), replica: z.number(), step: z.number(), loss: z.number().nullable() }),
  ),
  definitions: z
    .array(z.object({ group: z.string(), metric: z.string(), definition: z.string() }))
    .optional(),
  quick: z.boolean().optional(),
  inProgress: z.boolean().optional(),
  shard: z
    .object({ index: z.number().int().min(0), count: z.number().int().min(1) })
    .refine((s) => s.index < s.count, 'shard index must be below the shard count')
    .optional(),
});

/** Parses a results.json object (the config is validated again; null values become NaN). */
export function parseResults(raw: unknown, field = 'results.json'): ExperimentResults {
  const result = resultsSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
    throw new InputError(`${field}${where}`, issue.message);
  }
  const data = result.data;
  let config: ExperimentConfig;
  try {
    config = parseExperimentConfig(data.config);
  } catch (error) {
    if (error instanceof InputError) {
      const message = error.message.slice(error.field.length + 2);
      throw new InputError(`${field}.config.${error.field}`, message);
    }
    throw error;
  }
  return {
    ...data,
    config,
    rows: data.rows.map((row) => ({ ...row, value: row.value ?? Number.NaN })),
    divergences: data.divergences.map((d) => ({ ...d, loss: d.loss ?? Number.NaN })),
  };
}
