/**
 * The lab page's live plots: the project's timeseries panels (`panelSpec`, the specs the reports
 * render) compiled once with a named data source, then fed through vega changesets as log points
 * arrive; the closed-form lines are replaced whenever a control moves. Plus a picture of where the
 * replicas sit: each layer's Frobenius norm ‖W_i‖_F per replica beside the predicted minimal-fluctuation
 * solution's (norms do not change under the rotations that leave the minimum's orbit point fixed).
 */
import { changeset, parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ExperimentConfig, PanelSpec } from '../../src/experiments/config.ts';
import {
  PALETTE,
  panelSpec,
  THEME,
  THEORY_LABEL,
  timeseriesValues,
  type VegaLiteSpec,
} from '../../src/experiments/plots.ts';
import type { ResultRow } from '../../src/experiments/results.ts';
import type { DeepLinearTheory } from '../../src/theory/deep-linear.ts';

const DATA = 'rows';
/** Views fill their container: `width` and the height are the whole view's, axes and titles included. */
const FIT = { type: 'fit', contains: 'padding', resize: true };
const PLOT_HEIGHT = 230;
const MINIMUM = 'minimum';
const SWITCH = 'switch';

/** The five live metrics, each in its own view (so each has its own y axis and reads at a glance). */
export const LIVE_METRICS = ['loss', 'sharpness', 'fluctuation', 'lambdaMax', 'lambdaMaxAtMinimum'] as const;
export type LiveMetric = (typeof LIVE_METRICS)[number];

const SYMBOLS: Record<LiveMetric, string> = {
  loss: 'minibatch loss ½‖f − y‖²',
  sharpness: 'sharpness T = Tr H',
  fluctuation: 'fluctuation S = E‖∇ℓ‖²',
  lambdaMax: 'λ_max(H) at the iterate',
  lambdaMaxAtMinimum: 'λ_max(H) at the nearest minimum',
};

const THEORY_NAMES: Partial<Record<LiveMetric, string>> = {
  sharpness: 'T*',
  fluctuation: 'S*',
  // λ_max* is the minimum's: at the iterate SGD's fluctuation splits its degeneracy and pushes λ_max
  // up, so the closed form is drawn beside λ_max at the nearest point of the minimum manifold.
  lambdaMaxAtMinimum: 'λ_max*',
};

/** Axis titles where the view's title is longer than the plot is high. */
const Y_TITLES: Partial<Record<LiveMetric, string>> = {
  lambdaMax: 'λ_max(H)',
  lambdaMaxAtMinimum: 'λ_max(H) at minimum',
};

function panelFor(metric: LiveMetric): PanelSpec {
  return {
    name: metric,
    kind: 'timeseries',
    metrics: [metric],
    title: SYMBOLS[metric],
    yScale: 'log',
    y: Y_TITLES[metric] ?? SYMBOLS[metric],
  };
}

function liveSpec(config: ExperimentConfig, metric: LiveMetric, width: number): VegaLiteSpec {
  const spec = panelSpec(config, panelFor(metric), [], { width, height: PLOT_HEIGHT });
  spec.data = { name: DATA };
  spec.autosize = FIT;
  const replicas = config.seeds;
  const closedForm = THEORY_NAMES[metric];
  spec.title = {
    text: SYMBOLS[metric],
    subtitle: `mean ± s.e. over ${replicas} replica${replicas === 1 ? '' : 's'}${closedForm ? `; dashed: closed-form ${closedForm}` : ''}${metric === 'sharpness' ? '; dotted: T_min' : ''}`,
    anchor: 'start',
  };
  // One run, one colour: no group legend (the dash legend names measured vs theory).
  const layers = spec.layer as { encoding: Record<string, Record<string, unknown>> }[];
  for (const layer of layers) {
    layer.encoding.color = { value: PALETTE[0] };
  }
  // Where SGD gives way to GD (Fig 4): a grey vertical rule, labelled on the sharpness view.
  layers.push({
    data: { name: SWITCH },
    mark: { type: 'rule', color: '#777', strokeWidth: 1 },
    encoding: { x: { field: 'step', type: 'quantitative' } },
  } as never);
  if (metric === 'sharpness') {
    layers.push({
      data: { name: SWITCH },
      mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, dy: 4, color: '#555', fontSize: 11 },
      encoding: {
        x: { field: 'step', type: 'quantitative' },
        y: { value: 0 },
        text: { value: 'GD from here' },
      },
    } as never);
    // The flattest point of the whole minimum manifold: where SGD would go if it minimised sharpness.
    layers.push(
      {
        data: { name: MINIMUM },
        mark: { type: 'rule', strokeDash: [2, 3], strokeWidth: 1.5, color: PALETTE[1] },
        encoding: { y: { field: 'value', type: 'quantitative' } },
      } as never,
      {
        data: { name: MINIMUM },
        mark: { type: 'text', align: 'right', dx: -4, dy: -6, color: PALETTE[1], fontSize: 11 },
        encoding: {
          x: { value: 'width' },
          y: { field: 'value', type: 'quantitative' },
          text: { field: 'label' },
        },
      } as never,
    );
  }
  return spec;
}

function layerNormSpec(depth: number, width: number): VegaLiteSpec {
  const layers = Array.from({ length: depth }, (_, i) => `W${i + 1}`);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Where the replicas sit: layer norms ‖W_i‖_F',
      subtitle: 'dots: each replica now; bars: the minimum SGD selects (closed form)',
      anchor: 'start',
    },
    width,
    height: PLOT_HEIGHT,
    autosize: FIT,
    config: THEME,
    layer: [
      {
        data: { name: 'predicted' },
        mark: { type: 'tick', thickness: 3, size: 36, color: PALETTE[1] },
        encoding: {
          x: { field: 'layer', type: 'ordinal', sort: layers, title: 'layer i', axis: { labelAngle: 0 } },
          // Padded so a bar at the top of the domain is not drawn on the frame.
          y: { field: 'norm', type: 'quantitative', title: 'Frobenius norm ‖W_i‖_F', scale: { padding: 8 } },
        },
      },
      {
        data: { name: 'replicas' },
        mark: { type: 'circle', size: 36, opacity: 0.55, color: PALETTE[0] },
        encoding: {
          x: { field: 'layer', type: 'ordinal', sort: layers, title: 'layer i' },
          xOffset: { field: 'replica', type: 'nominal', legend: null },
          y: { field: 'norm', type: 'quantitative', title: 'Frobenius norm ‖W_i‖_F' },
        },
      },
    ],
  };
}

async function mount(container: HTMLElement, spec: VegaLiteSpec, label: string): Promise<View> {
  const view = new View(parse(compile(spec as unknown as TopLevelSpec).spec), {
    renderer: 'canvas',
    container,
    hover: false,
  });
  container.setAttribute('role', 'img');
  container.setAttribute('aria-label', label);
  await view.runAsync();
  return view;
}

function frobenius(values: Float32Array, offset: number, size: number): number {
  let sum = 0;
  for (let k = 0; k < size; k++) sum += values[offset + k] ** 2;
  return Math.sqrt(sum);
}

/** The closed form that holds over steps [from, to] of a run. */
export interface TheorySegment {
  from: number;
  to: number;
  theory: DeepLinearTheory;
}

/** The page's views of one run: five timeseries and the layer-norm picture. */
export class LivePlots {
  private constructor(
    private readonly config: ExperimentConfig,
    private readonly views: Map<LiveMetric, View>,
    private readonly norms: View,
  ) {}

  /** Builds the views into `containers` (one element per live metric, and one for the norms). */
  static async create(
    config: ExperimentConfig,
    containers: Record<LiveMetric | 'norms', HTMLElement>,
    width: number,
  ): Promise<LivePlots> {
    const views = new Map<LiveMetric, View>();
    for (const metric of LIVE_METRICS)
      views.set(
        metric,
        await mount(
          containers[metric],
          liveSpec(config, metric, width),
          `${SYMBOLS[metric]} against training step`,
        ),
      );
    const depth = config.model.kind === 'deep-linear' ? config.model.hidden.length + 1 : 1;
    const norms = await mount(containers.norms, layerNormSpec(depth, width), 'layer norms of every replica');
    return new LivePlots(config, views, norms);
  }

  /** Appends the measured rows of new log points. */
  add(rows: readonly ResultRow[]): void {
    for (const [metric, view] of this.views) {
      const mine = rows.filter((row) => row.metric === metric && row.seed !== 'theory');
      if (mine.length === 0) continue;
      view.change(DATA, changeset().insert(timeseriesValues(panelFor(metric), mine))).run();
    }
  }

  /**
   * Replaces the closed-form lines: one level per segment of the run (a run continued under a new
   * setting has one segment per setting, so the line steps where the setting changed); T_min and
   * the predicted layer norms are the last segment's.
   */
  setTheory(segments: readonly TheorySegment[]): void {
    const theory = segments[segments.length - 1].theory;
    const closedFormOf = (t: DeepLinearTheory): Record<LiveMetric, number | undefined> => ({
      loss: undefined,
      sharpness: t.sharpness,
      fluctuation: t.fluctuation,
      lambdaMax: undefined,
      lambdaMaxAtMinimum: t.lambdaMax,
    });
    for (const [metric, view] of this.views) {
      const theoryRows: ResultRow[] = [];
      for (const segment of segments) {
        const value = closedFormOf(segment.theory)[metric];
        if (value === undefined) continue;
        for (const step of [segment.from, Math.max(segment.to, segment.from + 1)])
          theoryRows.push({
            experiment: this.config.name,
            group: this.config.groups[0].name,
            seed: 'theory',
            step,
            metric,
            value,
          });
      }
      const change = changeset()
        .remove((d: { kind: string }) => d.kind === THEORY_LABEL)
        .insert(timeseriesValues(panelFor(metric), theoryRows));
      view.change(DATA, change);
      if (metric === 'sharpness')
        view.change(
          MINIMUM,
          changeset()
            .remove(() => true)
            .insert([{ value: theory.minSharpness, label: `T_min = ${theory.minSharpness.toPrecision(4)}` }]),
        );
      view.run();
    }
    const predicted = theory.weights.map((w, i) => ({
      layer: `W${i + 1}`,
      norm: Math.sqrt(w.flat().reduce((sum, v) => sum + v * v, 0)),
    }));
    this.norms
      .change(
        'predicted',
        changeset()
          .remove(() => true)
          .insert(predicted),
      )
      .run();
  }

  /** Marks the step where training switches to GD (none: SGD throughout; 0: GD from the start, unmarked). */
  setSwitch(step: number | undefined): void {
    const marks = step ? [{ step }] : [];
    for (const view of this.views.values())
      view
        .change(
          SWITCH,
          changeset()
            .remove(() => true)
            .insert(marks),
        )
        .run();
  }

  /** Shows each replica's layer norms at the latest log point. */
  setWeights(params: readonly Float32Array[]): void {
    const replicas = this.config.seeds;
    const points: { layer: string; replica: number; norm: number }[] = [];
    params.forEach((values, i) => {
      const size = values.length / replicas;
      for (let r = 0; r < replicas; r++)
        points.push({ layer: `W${i + 1}`, replica: r, norm: frobenius(values, r * size, size) });
    });
    this.norms
      .change(
        'replicas',
        changeset()
          .remove(() => true)
          .insert(points),
      )
      .run();
  }

  finalize(): void {
    for (const view of this.views.values()) view.finalize();
    this.norms.finalize();
  }
}
