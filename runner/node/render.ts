/**
 * Renders Vega-Lite specs (src/experiments/plots.ts) to SVG in Node: compile to Vega with vega-lite,
 * run a headless vega View, `toSVG()`. No browser, no canvas package needed (vega estimates text
 * widths without one).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { VegaLiteSpec } from '../../src/experiments/plots.ts';

/** Warnings (e.g. an empty theory layer's infinite extent) are printed only when asked for. */
const logLevel = process.env.SHARPNESS_LAB_PLOT_WARNINGS === '1' ? vega.Warn : vega.Error;

/** The SVG document of a Vega-Lite spec. Throws if vega-lite rejects the spec. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const { spec: vegaSpec } = compile(spec as unknown as TopLevelSpec, { logger: vega.logger(logLevel) });
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none', logLevel });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
