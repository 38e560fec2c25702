/**
 * Figure panels as Vega-Lite specs: plain JSON data, host-agnostic (a Node host renders them to SVG
 * with vega, a browser can embed them). One spec per PanelSpec:
 * - timeseries: each metric against the training step, one line per group (mean over seeds) with a
 *   ± standard-error band; closed-form values dashed;
 * - final-vs-group: each group's late-window mean (± standard error bars) against the group's value,
 *   one line per series; closed-form values dashed.
 * Several metrics in one panel become side-by-side facets with their own y scales.
 */
import { type ExperimentConfig, metricMatches, type PanelSpec, panelGroups, resolveGroup } from './config.ts';
import { type FinalValue, finalValues, type ResultRow, relativeFinalValues, summarise } from './results.ts';

/** A Vega-Lite (v6) specification as plain JSON. */
export type VegaLiteSpec = Record<string, unknown>;

export const MEASURED_LABEL = 'measured: mean ± s.e. over seeds';
export const THEORY_LABEL = 'theory (closed form)';

/** Colour-blind-safe categorical palette (Okabe–Ito, then Tableau). */
export const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#000000',
  '#F0E442',
  '#4e79a7',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
];

const FACET_WIDTH = 250;
const SINGLE_WIDTH = 420;
const HEIGHT = 230;

const BASE_LABELS: Record<string, string> = {
  loss: 'training loss',
  sharpness: 'sharpness T = Tr H',
  fluctuation: 'gradient fluctuation S = E‖∇ℓ‖²',
  lambdaMax: 'largest eigenvalue λ_max(H)',
  lambdaMaxAtMinimum: 'λ_max(H) at the nearest minimum',
  layerCondition: 'condition number σ_max/σ_min',
  relativeSharpness: 'T / T(reference)',
  gradientNorm: 'gradient norm ‖∇L‖',
  density: 'spectral density ρ(λ)',
  accuracy: 'held-out accuracy',
  heldOutLoss: 'held-out loss',
};

/** A metric's label on axes and facet headers (`layerCondition.W2` → `κ(W2) = σ_max/σ_min`). */
export function metricLabel(metric: string): string {
  const layer = /^layerCondition\.(.+)$/.exec(metric);
  if (layer) return `condition number κ(${layer[1]})`;
  const eigenvalue = /^lambda(\d+)$/.exec(metric);
  if (eigenvalue) return `eigenvalue λ${eigenvalue[1]}(H)`;
  const block = /^layer(Sharpness|LambdaMax)\.(.+)$/.exec(metric);
  if (block) return block[1] === 'Sharpness' ? `block trace Tr H(${block[2]})` : `block λ_max H(${block[2]})`;
  return BASE_LABELS[metric] ?? metric;
}

/** The row metrics a panel shows, in the panel's order (layers in natural order: W2 before W10). */
export function panelMetrics(panel: PanelSpec, rows: readonly ResultRow[]): string[] {
  const present = [...new Set(rows.map((row) => row.metric))];
  const out: string[] = [];
  for (const wanted of panel.metrics) {
    const matching = present
      .filter((metric) => metricMatches(metric, wanted) && !out.includes(metric))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    out.push(...(matching.length > 0 ? matching : present.includes(wanted) ? [] : [wanted]));
  }
  return out;
}

const uniqueMetricFilter = (metrics: string[]) => (row: ResultRow) => metrics.includes(row.metric);

function seedsNote(rows: readonly ResultRow[]): string {
  // Seeds of each group (groups may override their seed count): one number, or the range.
  const seeds = new Map<string, Set<number>>();
  for (const row of rows) {
    if (row.seed === 'theory') continue;
    const set = seeds.get(row.group) ?? new Set<number>();
    set.add(row.seed);
    seeds.set(row.group, set);
  }
  const counts = [...seeds.values()].map((set) => set.size);
  if (counts.length === 0) return '0 seeds per group';
  const low = Math.min(...counts);
  const high = Math.max(...counts);
  if (low === high) return low === 1 ? '1 seed per group' : `${low} seeds per group`;
  return `${low}–${high} seeds per group`;
}

interface PlotOptions {
  width?: number;
  height?: number;
}

/** The Vega-Lite spec of one panel of `config`, from the experiment's rows. */
export function panelSpec(
  config: ExperimentConfig,
  panel: PanelSpec,
  rows: readonly ResultRow[],
  options: PlotOptions = {},
): VegaLiteSpec {
  const groups = panelGroups(config, panel);
  const shown = new Set(groups.map((g) => g.name));
  const inPanel = rows.filter((row) => shown.has(row.group));
  const metrics = panelMetrics(panel, inPanel);
  const selected = inPanel.filter(uniqueMetricFilter(metrics));
  if (panel.kind === 'density') return densitySpec(config, panel, selected, options);
  return panel.kind === 'timeseries'
    ? timeseriesSpec(config, panel, selected, metrics, options)
    : finalSpec(config, panel, selected, metrics, options);
}

/**
 * The spectral density ρ(λ) of each replica at the end of training (the `density` rows), one line per
 * seed coloured by group. Each replica has its own grid, so curves are drawn, not averaged. On a log
 * y axis densities below `DENSITY_LOG_FLOOR` of the panel's peak are drawn at that floor.
 */
function densitySpec(
  config: ExperimentConfig,
  panel: PanelSpec,
  rows: readonly ResultRow[],
  options: PlotOptions,
): VegaLiteSpec {
  const groups = panelGroups(config, panel).map((g) => g.name);
  const curves = rows.filter((row) => row.eigenvalue !== undefined && row.seed !== 'theory');
  const last = Math.max(...curves.map((row) => row.step));
  const peak = Math.max(...curves.map((row) => (Number.isFinite(row.value) ? row.value : 0)));
  // On a log axis the gaps between eigenvalue clusters sit on a floor instead of falling to 0.
  const floor = panel.yScale === 'log' ? DENSITY_LOG_FLOOR * peak : Number.NEGATIVE_INFINITY;
  const values = curves
    .filter((row) => row.step === last && Number.isFinite(row.value))
    .map((row) => ({
      group: row.group,
      seed: row.seed,
      eigenvalue: row.eigenvalue,
      density: Math.max(row.value, floor),
    }));
  const seeds = new Set(values.map((v) => `${v.group}/${v.seed}`)).size;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(panel, `Hessian spectrum at step ${last}; one line per replica (${seeds} in all).`),
    data: { values },
    config: THEME,
    width: options.width ?? SINGLE_WIDTH,
    height: options.height ?? HEIGHT,
    mark: { type: 'line', strokeWidth: 1.5, opacity: 0.8 },
    encoding: {
      x: {
        field: 'eigenvalue',
        type: 'quantitative',
        title: panel.x ?? 'eigenvalue λ of H',
        axis: { labelOverlap: true },
        scale: { zero: false, nice: false },
      },
      y: yEncoding(panel, 'density', 'density'),
      color: groupColor(groups),
      detail: { field: 'seed', type: 'nominal' },
    },
  };
}

function title(panel: PanelSpec, subtitle: string): Record<string, unknown> {
  return { text: panel.title, subtitle, anchor: 'start', offset: 12 };
}

/** A relative panel's axis title: the metric over its value in the reference group. */
function relativeLabel(metric: string): string {
  const symbols: Record<string, string> = { sharpness: 'T', fluctuation: 'S', lambdaMax: 'λ_max' };
  const symbol = symbols[metric];
  return symbol
    ? `${symbol} / ${symbol}(reference group)`
    : `${metricLabel(metric)} / its reference-group value`;
}

/** The y encoding of one metric's view, titled with the metric and its symbol (or the panel's `y`). */
function yEncoding(panel: PanelSpec, metric: string, field: string): Record<string, unknown> {
  return {
    field,
    type: 'quantitative',
    title: panel.y ?? (panel.relative ? relativeLabel(metric) : metricLabel(metric)),
    scale: panel.yScale === 'log' ? { type: 'log' } : { type: 'linear', zero: false },
    axis: axisFor(panel.yScale),
  };
}

/**
 * Axis of a linear or log scale. Log axes keep their grid at every tick but label only 1, 2 and 5
 * times a power of ten, so the labels do not crowd.
 */
function axisFor(scale: 'linear' | 'log' | undefined): Record<string, unknown> {
  if (scale !== 'log') return { labelOverlap: true };
  return { labelExpr: "test(/^[125]e/, format(datum.value, '.0e')) ? datum.label : ''", labelOverlap: true };
}

const DASH_LEGEND = {
  title: null,
  orient: 'bottom',
  symbolType: 'stroke',
  symbolStrokeColor: '#444',
  symbolStrokeWidth: 2,
  symbolSize: 400,
  labelLimit: 400,
};

const SERIES_LEGEND = {
  orient: 'right',
  labelLimit: 320,
  symbolType: 'stroke',
  symbolStrokeWidth: 3,
  symbolOpacity: 1,
};

/** The rows of a panel's measured values, and of its closed-form values. */
const measured = { filter: { field: 'kind', equal: MEASURED_LABEL } };
const theory = { filter: { field: 'kind', equal: THEORY_LABEL } };

/** The measured mean as a solid line, and the closed form as a dashed one: in every panel kind. */
function meanAndTheoryLines(
  x: Record<string, unknown>,
  y: Record<string, unknown>,
  color: Record<string, unknown>,
  hasTheory: boolean,
): { mean: Record<string, unknown>; theory: Record<string, unknown> } {
  return {
    mean: {
      name: 'mean',
      transform: [measured],
      mark: { type: 'line', strokeWidth: 2 },
      encoding: { x, y, color, strokeDash: dashEncoding(hasTheory) },
    },
    theory: {
      name: 'theory',
      transform: [theory],
      mark: { type: 'line', strokeDash: [6, 4], strokeWidth: 1.5 },
      encoding: { x, y, color, strokeDash: dashEncoding(hasTheory) },
    },
  };
}

function dashEncoding(hasTheory: boolean): Record<string, unknown> {
  return {
    field: 'kind',
    type: 'nominal',
    scale: {
      domain: [MEASURED_LABEL, THEORY_LABEL],
      range: [
        [1, 0],
        [6, 4],
      ],
    },
    legend: hasTheory ? DASH_LEGEND : null,
  };
}

/**
 * One view per metric, each with its own y axis titled with the metric and its symbol: a single view,
 * or views side by side (up to three a row) over the rows of their metric. `layer(metric)` builds a
 * view's layers.
 */
function arrange(
  panel: PanelSpec,
  metrics: string[],
  values: Record<string, unknown>[],
  layer: (metric: string) => Record<string, unknown>[],
  subtitle: string,
  options: PlotOptions,
): VegaLiteSpec {
  const height = options.height ?? HEIGHT;
  const common = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: title(panel, subtitle),
    data: { values },
    config: THEME,
  };
  if (metrics.length <= 1) {
    return { ...common, width: options.width ?? SINGLE_WIDTH, height, layer: layer(metrics[0] ?? '') };
  }
  return {
    ...common,
    columns: Math.min(metrics.length, 3),
    concat: metrics.map((metric, index) => ({
      width: options.width ?? FACET_WIDTH,
      height,
      transform: [{ filter: { field: 'metric', equal: metricLabel(metric) } }],
      // Layer names must be unique across the whole spec (Vega-Lite names data sources after them).
      layer: layer(metric).map((l) => ({ ...l, name: `${l.name}_${index + 1}` })),
    })),
    resolve: { scale: { y: 'independent' } },
  };
}

/** Keeps values plottable on a log axis: positive means; a band reaching ≤ 0 is cut at mean/10. */
function logSafe(panel: PanelSpec, mean: number, lower: number): { ok: boolean; lower: number } {
  if (!Number.isFinite(mean)) return { ok: false, lower };
  if (panel.yScale !== 'log') return { ok: true, lower };
  if (!(mean > 0)) return { ok: false, lower };
  return { ok: true, lower: lower > 0 ? lower : mean / 10 };
}

/** The steps where groups of the panel switch from SGD to GD, with the groups that do. */
function switchPoints(
  config: ExperimentConfig,
  groups: readonly string[],
): { step: number; label: string }[] {
  const byStep = new Map<number, string[]>();
  for (const name of groups) {
    const at = resolveGroup(config, name).train.switchToGdAt;
    if (at !== undefined) byStep.set(at, [...(byStep.get(at) ?? []), name]);
  }
  return [...byStep.entries()].map(([step, names]) => ({
    step,
    label: `${names.length === groups.length ? '' : `${names.join(', ')}: `}SGD → GD at step ${step}`,
  }));
}

/** A labelled vertical rule at each switch to GD. */
function switchLayers(switches: { step: number; label: string }[]): Record<string, unknown>[] {
  if (switches.length === 0) return [];
  const data = { values: switches };
  const x = { field: 'step', type: 'quantitative' };
  return [
    {
      name: 'switch',
      data,
      mark: { type: 'rule', color: '#444', strokeDash: [2, 3], strokeWidth: 1.5 },
      encoding: { x },
    },
    {
      name: 'switchLabel',
      data,
      mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, dy: 4, fontSize: 11, color: '#333' },
      encoding: { x, y: { value: 0 }, text: { field: 'label' } },
    },
  ];
}

/**
 * The data points of a timeseries panel: mean ± standard error over seeds per (group, metric, step)
 * with the metric's label and whether it is measured or theory (`kind`); points a log axis cannot
 * show are left out. Steps are summarised independently, so rows of new steps can be streamed in.
 */
export function timeseriesValues(panel: PanelSpec, rows: readonly ResultRow[]): Record<string, unknown>[] {
  const values: Record<string, unknown>[] = [];
  const estimateErrors = estimateErrorsOfMeans(rows);
  for (const s of summarise(rows)) {
    const lowerRaw = s.mean - s.standardError;
    const { ok, lower } = logSafe(panel, s.mean, lowerRaw);
    if (!ok) continue;
    const estimate = s.theory ? undefined : estimateErrors.get(JSON.stringify([s.group, s.metric, s.step]));
    values.push({
      group: s.group,
      metric: metricLabel(s.metric),
      step: s.step,
      mean: s.mean,
      lower,
      upper: s.mean + s.standardError,
      ...(estimate !== undefined && {
        estimateLower: logSafe(panel, s.mean, s.mean - estimate).lower,
        estimateUpper: s.mean + estimate,
      }),
      kind: s.theory ? THEORY_LABEL : MEASURED_LABEL,
    });
  }
  return values;
}

/**
 * The estimates' own sampling error of each seed mean, keyed by (group, metric, step): the rows
 * `<metric>StandardError` (evaluation sample, probes) of its seeds combined, √(Σ s.e.²) / seeds.
 */
function estimateErrorsOfMeans(rows: readonly ResultRow[]): Map<string, number> {
  const sums = new Map<string, { squares: number; count: number }>();
  for (const row of rows) {
    const match = /^(.+)StandardError$/.exec(row.metric);
    if (!match || row.seed === 'theory' || !Number.isFinite(row.value)) continue;
    const key = JSON.stringify([row.group, match[1], row.step]);
    const sum = sums.get(key) ?? { squares: 0, count: 0 };
    sum.squares += row.value * row.value;
    sum.count++;
    sums.set(key, sum);
  }
  return new Map([...sums].map(([key, { squares, count }]) => [key, Math.sqrt(squares) / count]));
}

/** Lowest density drawn on a log axis, relative to the panel's peak (the Gaussian tails fall to 0). */
const DENSITY_LOG_FLOOR = 1e-4;

/** One colour per group, in the panel's group order. */
function groupColor(groups: string[]): Record<string, unknown> {
  return {
    field: 'group',
    type: 'nominal',
    title: 'group',
    scale: { domain: groups, range: PALETTE },
    legend: SERIES_LEGEND,
  };
}

function timeseriesSpec(
  config: ExperimentConfig,
  panel: PanelSpec,
  rows: readonly ResultRow[],
  metrics: string[],
  options: PlotOptions,
): VegaLiteSpec {
  const groups = panelGroups(config, panel).map((g) => g.name);
  const values = timeseriesValues(panel, rows);
  const hasTheory = values.some((v) => v.kind === THEORY_LABEL);
  const hasEstimateErrors = values.some((v) => v.estimateUpper !== undefined);
  const x = {
    field: 'step',
    type: 'quantitative',
    title: panel.x ?? 'training step (updates applied)',
    axis: { labelOverlap: true, format: '~s', tickMinStep: 1 },
    scale: { nice: false },
  };
  const color = groupColor(groups);
  const switches = switchPoints(config, groups);
  const layer = (metric: string) => {
    const lines = meanAndTheoryLines(x, yEncoding(panel, metric, 'mean'), color, hasTheory);
    return [
      {
        name: 'band',
        transform: [measured],
        mark: { type: 'area', opacity: 0.2, interpolate: 'linear' },
        encoding: {
          x,
          y: yEncoding(panel, metric, 'lower'),
          y2: { field: 'upper' },
          color,
        },
      },
      ...(hasEstimateErrors
        ? [
            {
              name: 'estimateBand',
              transform: [measured, { filter: 'isValid(datum.estimateUpper)' }],
              mark: { type: 'area', opacity: 0.35, interpolate: 'linear' },
              encoding: {
                x,
                y: yEncoding(panel, metric, 'estimateLower'),
                y2: { field: 'estimateUpper' },
                color,
              },
            },
          ]
        : []),
      lines.mean,
      lines.theory,
      ...switchLayers(switches),
    ];
  };
  const subtitle = `Mean over ${seedsNote(rows)} with a ± standard-error band${hasEstimateErrors ? " (darker: the estimates' own s.e., from the evaluation sample and probes)" : ''}${hasTheory ? '; dashed: closed-form theory' : ''}.`;
  return arrange(panel, metrics, values, layer, subtitle, options);
}

function finalSpec(
  config: ExperimentConfig,
  panel: PanelSpec,
  rows: readonly ResultRow[],
  metrics: string[],
  options: PlotOptions,
): VegaLiteSpec {
  const groups = panelGroups(config, panel);
  const lateWindow = (group: string) => resolveGroup(config, group).measure.lateWindow;
  const finals: FinalValue[] = panel.relative
    ? relativeFinalValues(rows, lateWindow, Object.fromEntries(groups.map((g) => [g.name, g.reference])))
    : finalValues(rows, lateWindow);
  const byName = new Map(groups.map((g) => [g.name, g]));
  const anySeries = groups.some((g) => g.series !== undefined);
  const seriesOf = (group: string) => byName.get(group)?.series ?? 'all groups';
  const series = [...new Set(groups.map((g) => seriesOf(g.name)))];
  const values: Record<string, unknown>[] = [];
  for (const f of finals) {
    const group = byName.get(f.group);
    if (!group || group.value === undefined) continue;
    const base = { group: f.group, x: group.value, series: seriesOf(f.group), metric: metricLabel(f.metric) };
    const { ok, lower } = logSafe(panel, f.mean, f.mean - f.standardError);
    if (ok) {
      values.push({ ...base, mean: f.mean, lower, upper: f.mean + f.standardError, kind: MEASURED_LABEL });
    }
    if (f.theory !== undefined && logSafe(panel, f.theory, f.theory).ok) {
      values.push({ ...base, mean: f.theory, lower: f.theory, upper: f.theory, kind: THEORY_LABEL });
    }
  }
  const hasTheory = values.some((v) => v.kind === THEORY_LABEL);
  // Integer group values (depth, widths) get integer ticks: 2, 3, not 2.0, 2.5.
  const integers = groups.every((g) => g.value === undefined || Number.isInteger(g.value));
  const x = {
    field: 'x',
    type: 'quantitative',
    title: panel.x ?? 'group value',
    scale: panel.xScale === 'log' ? { type: 'log' } : { type: 'linear', zero: false },
    axis: {
      ...axisFor(panel.xScale),
      ...(integers && panel.xScale !== 'log' && { format: 'd', tickMinStep: 1 }),
    },
  };
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    scale: { domain: series, range: PALETTE },
    legend: anySeries ? SERIES_LEGEND : null,
  };
  const tooltip = [
    { field: 'group', type: 'nominal' },
    { field: 'mean', type: 'quantitative', format: '.4g' },
  ];
  const layer = (metric: string) => {
    const lines = meanAndTheoryLines(x, yEncoding(panel, metric, 'mean'), color, hasTheory);
    return [
      {
        name: 'errorbars',
        transform: [measured],
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: { x, y: yEncoding(panel, metric, 'lower'), y2: { field: 'upper' }, color },
      },
      lines.mean,
      {
        name: 'points',
        transform: [measured],
        mark: { type: 'point', filled: true, size: 45, opacity: 1 },
        encoding: { x, y: yEncoding(panel, metric, 'mean'), color, tooltip },
      },
      lines.theory,
    ];
  };
  const what = panel.relative ? 'each group ÷ its reference group, seed by seed' : 'late-window mean';
  const fractions = [...new Set(groups.map((g) => lateWindow(g.name)))];
  const window = fractions.length === 1 ? `last ${Math.round(fractions[0] * 100)} % of steps` : 'late window';
  const subtitle = `Final value (${what}; ${window}), mean ± s.e. over ${seedsNote(rows)}${hasTheory ? '; dashed: closed-form theory' : ''}.`;
  return arrange(panel, metrics, values, layer, subtitle, options);
}

/** Shared look: readable fonts, light grid, white background. */
export const THEME: Record<string, unknown> = {
  background: 'white',
  font: 'Helvetica, Arial, sans-serif',
  padding: 12,
  view: { stroke: '#bbb' },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    gridColor: '#e8e8e8',
    tickColor: '#888',
  },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  header: { labelFontSize: 13 },
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: '#555', anchor: 'start' },
  range: { category: PALETTE },
};
