/**
 * Figure captions written from the data, so a caption never claims more than the run shows: each
 * group's final value ± s.e. beside the theory (as a ratio with its s.e.), and its trend over the late
 * window — or, for a group that switches from SGD to GD, the fitted slope before and after the switch —
 * as a least-squares slope per seed, then mean ± s.e. over seeds.
 */
import { densityMoments } from '../curvature/density.ts';
import { meanAndStandardError } from '../statistics.ts';
import { type ExperimentConfig, type PanelSpec, panelGroups, resolveGroup } from './config.ts';
import { metricLabel, panelMetrics } from './plots.ts';
import { finalValues, type ResultRow, relativeFinalValues } from './results.ts';

/** Short symbols for captions (the axis titles carry the long labels). */
const SYMBOLS: Record<string, string> = {
  loss: 'loss',
  sharpness: 'T',
  lambdaMax: 'λ_max',
  lambdaMaxAtMinimum: 'λ_max at the nearest minimum',
  fluctuation: 'S',
  relativeSharpness: 'T / T(ref)',
};

/** The theory's name for a metric's predicted value: T*, S*; λ_max* for λ_max at the nearest minimum. */
function theorySymbol(symbol: string): string {
  return symbol === SYMBOLS.lambdaMaxAtMinimum ? 'λ_max*' : `${symbol}*`;
}

function symbolOf(metric: string): string {
  return SYMBOLS[metric] ?? metricLabel(metric);
}

/** 3 significant digits, exponent form outside 10⁻² … 10⁵. */
export function formatValue(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? '—' : x > 0 ? '∞' : '−∞';
  if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-2)) return x.toExponential(2);
  return String(Number(x.toPrecision(3)));
}

/** Value ± standard error, the error to 2 significant digits. */
export function withError(mean: number, standardError: number): string {
  const error = Number(standardError.toPrecision(2));
  // A small s.e. of an ordinary number reads as a decimal (0.0061), not in exponent form.
  const plain = Math.abs(mean) >= 1e-2 && Math.abs(mean) < 1e5 && error >= 1e-6 && error < 1e-2;
  return `${formatValue(mean)} ± ${plain ? error.toFixed(-Math.floor(Math.log10(error)) + 1) : formatValue(error)}`;
}

/** A step count with thousands separators (100,000). */
function formatStep(step: number): string {
  return Math.round(step).toLocaleString('en-US');
}

/** Least-squares slope of y on x (NaN with fewer than two distinct x). */
export function fittedSlope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : Number.NaN;
}

/**
 * The change of a metric over steps [from, to] as each seed's fitted slope times (to − from), then
 * mean ± s.e. over seeds: how much the fitted line rises across the window.
 */
export function windowChange(
  rows: readonly ResultRow[],
  group: string,
  metric: string,
  from: number,
  to: number,
): { mean: number; standardError: number; seeds: number } {
  const bySeed = new Map<number, [number, number][]>();
  for (const r of rows) {
    if (r.group !== group || r.metric !== metric || r.seed === 'theory') continue;
    if (r.step < from || r.step > to || !Number.isFinite(r.value)) continue;
    bySeed.set(r.seed, [...(bySeed.get(r.seed) ?? []), [r.step, r.value]]);
  }
  const changes = [...bySeed.values()]
    .map((points) => fittedSlope(points) * (to - from))
    .filter(Number.isFinite);
  return { ...meanAndStandardError(changes), seeds: changes.length };
}

/** 'rising', 'falling' or 'flat' for a change beyond or within two standard errors. */
function trendWord(change: { mean: number; standardError: number }): string {
  // One seed gives no standard error (NaN): the spread, hence the trend, is not known.
  if (Number.isNaN(change.standardError)) return 'one seed: no trend test';
  if (!(Math.abs(change.mean) > 2 * change.standardError)) return 'flat within 2 s.e.';
  return change.mean > 0 ? 'still rising' : 'still falling';
}

function signed(mean: number, standardError: number): string {
  return `${mean >= 0 ? '+' : '−'}${withError(Math.abs(mean), standardError)}`;
}

/** The sentence for one group's metric in a time-series panel. */
function timeseriesSentence(
  config: ExperimentConfig,
  rows: readonly ResultRow[],
  group: string,
  metric: string,
): string | undefined {
  const resolved = resolveGroup(config, group);
  const lateWindow = resolved.measure.lateWindow;
  const final = finalValues(
    rows.filter((r) => r.group === group && r.metric === metric),
    lateWindow,
  )[0];
  if (!final || Number.isNaN(final.mean)) return undefined;
  const symbol = symbolOf(metric);
  const steps = resolved.train.steps;
  const start = meanAndStandardError(
    rows
      .filter((r) => r.group === group && r.metric === metric && r.seed !== 'theory' && r.step === 0)
      .map((r) => r.value)
      .filter(Number.isFinite),
  );
  const from = Number.isNaN(start.mean)
    ? ''
    : ` from ${withError(start.mean, start.standardError)} at step 0 to`;
  let text = `${group}: ${symbol}${from} ${from ? '' : '= '}${withError(final.mean, final.standardError)} at the end`;
  if (final.theory !== undefined && final.theory !== 0) {
    text += ` (theory ${formatValue(final.theory)}: ratio ${withError(final.mean / final.theory, final.standardError / Math.abs(final.theory))})`;
  }
  const at = resolved.train.switchToGdAt;
  if (at !== undefined && at > 0 && at < steps) {
    const before = windowChange(rows, group, metric, Math.max(0, at - (steps - at)), at);
    const after = windowChange(rows, group, metric, at, steps);
    text += `; fitted change over the ${formatStep(at - Math.max(0, at - (steps - at)))} SGD steps before the switch to GD ${signed(before.mean, before.standardError)}, over the ${formatStep(steps - at)} GD steps after it ${signed(after.mean, after.standardError)}`;
  } else {
    const window = Math.round(steps * (1 - lateWindow));
    const change = windowChange(rows, group, metric, window, steps);
    if (change.seeds > 0)
      text += `; fitted change over steps ${formatStep(window)}–${formatStep(steps)}: ${signed(change.mean, change.standardError)} (${trendWord(change)}${towardTheory(symbol, final, change, steps - window, steps)})`;
  }
  return text;
}

/**
 * For a metric still moving at the end beside a theory value: how far it got (“50 of T* = 258 at
 * 100,000 steps”) and, moving toward the theory, the steps the rest would take at the late window's
 * fitted rate (a relaxation time measured from the run, a lower bound when the approach slows down).
 */
export function towardTheory(
  symbol: string,
  final: { mean: number; standardError: number; theory?: number },
  change: { mean: number; standardError: number },
  windowSteps: number,
  steps: number,
): string {
  if (final.theory === undefined || !(Math.abs(change.mean) > 2 * change.standardError)) return '';
  const gap = final.theory - final.mean;
  if (!(Math.abs(gap) > 2 * final.standardError)) return '';
  const where = ` at ${formatStep(steps)} steps: ${formatValue(final.mean)} of ${theorySymbol(symbol)} = ${formatValue(final.theory)}`;
  if (Math.sign(gap) !== Math.sign(change.mean)) return `${where}, moving away from it`;
  const rate = change.mean / windowSteps;
  return `${where}; at the late window's rate the rest takes about ${formatStep(gap / rate)} more steps`;
}

/** The sentences for one metric of a final-vs-group panel: its range over the groups, with theory. */
function finalSentence(
  config: ExperimentConfig,
  panel: PanelSpec,
  rows: readonly ResultRow[],
  metric: string,
): string | undefined {
  const groups = panelGroups(config, panel).filter((g) => g.value !== undefined);
  const lateWindow = (group: string) => resolveGroup(config, group).measure.lateWindow;
  const finals = panel.relative
    ? relativeFinalValues(rows, lateWindow, Object.fromEntries(groups.map((g) => [g.name, g.reference])))
    : finalValues(rows, lateWindow);
  // Groups of one series (line) together, named, when there are several.
  const series = [...new Set(groups.map((g) => g.series))];
  const sections = series.flatMap((name) => {
    const parts = groups
      .filter((g) => g.series === name)
      .flatMap((g) => {
        const f = finals.find((x) => x.group === g.name && x.metric === metric);
        if (!f || Number.isNaN(f.mean)) return [];
        const theory = f.theory !== undefined ? ` (theory ${formatValue(f.theory)})` : '';
        return [`${formatValue(g.value as number)}: ${withError(f.mean, f.standardError)}${theory}`];
      });
    if (parts.length === 0) return [];
    return [series.length > 1 && name !== undefined ? `${name}: ${parts.join(', ')}` : parts.join('; ')];
  });
  if (sections.length === 0) return undefined;
  const what = panel.relative ? `${symbolOf(metric)} relative to the reference group` : symbolOf(metric);
  return `${what} against ${panel.x ?? 'the group value'} — ${sections.join('; ')}`;
}

/** A group's density at its last step: the mean eigenvalue ∫λρ(λ)dλ = Tr H / n, mean ± s.e. over seeds. */
function densitySentence(rows: readonly ResultRow[], group: string): string | undefined {
  const curves = rows.filter((r) => r.group === group && r.eigenvalue !== undefined && r.seed !== 'theory');
  if (curves.length === 0) return undefined;
  const last = Math.max(...curves.map((r) => r.step));
  const bySeed = new Map<number | 'theory', ResultRow[]>();
  for (const row of curves)
    if (row.step === last) bySeed.set(row.seed, [...(bySeed.get(row.seed) ?? []), row]);
  const means = [...bySeed.values()]
    .map(
      (seed) =>
        densityMoments(
          seed.map((r) => r.eigenvalue ?? Number.NaN),
          seed.map((r) => r.value),
        ).mean,
    )
    .filter(Number.isFinite);
  if (means.length === 0) return undefined;
  const { mean, standardError } = meanAndStandardError(means);
  return `${group}: mean eigenvalue ∫λρ(λ)dλ = Tr H / n = ${withError(mean, standardError)} at step ${formatStep(last)} (${means.length} seed${means.length === 1 ? '' : 's'})`;
}

/**
 * The caption of one panel, from its rows: one sentence per group and metric (time series) or per
 * metric (final vs group), each value the late-window mean ± s.e. over seeds.
 */
export function panelCaption(
  config: ExperimentConfig,
  panel: PanelSpec,
  rows: readonly ResultRow[],
): string[] {
  const groups = panelGroups(config, panel).map((g) => g.name);
  const shown = rows.filter((r) => groups.includes(r.group));
  const metrics = panelMetrics(panel, shown);
  if (panel.kind === 'density') return groups.flatMap((group) => densitySentence(shown, group) ?? []);
  if (panel.kind === 'final-vs-group')
    return metrics.flatMap((metric) => finalSentence(config, panel, shown, metric) ?? []);
  return metrics.flatMap((metric) =>
    groups.flatMap((group) => timeseriesSentence(config, shown, group, metric) ?? []),
  );
}
