/**
 * Writes an experiment's outputs into DIR/NAME/: config.json (the exact config used), results.csv,
 * results.json, one SVG per panel and report.html; and DIR/index.html linking every experiment found
 * in DIR. Every file is written atomically (a temporary name in the same folder, then rename), so a
 * reader never sees half a file. The report can be rebuilt from results.json alone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { panelCaption } from '../../src/experiments/captions.ts';
import { resolveGroup, validateExperiment } from '../../src/experiments/config.ts';
import { groupsCsv, type ParameterColumn, varyingColumns } from '../../src/experiments/group-parameters.ts';
import { metricLabel, panelSpec } from '../../src/experiments/plots.ts';
import {
  describeDivergence,
  type ExperimentResults,
  type FinalValue,
  finalValues,
  groupDivergences,
  parseResults,
  toCsv,
} from '../../src/experiments/results.ts';
import { DIVERGENCE_BOUND } from '../../src/train/trainer.ts';
import { injectWriteFault } from './faults.ts';
import { renderSvg } from './render.ts';

let temporaryCounter = 0;

/** Writes `content` to `path` via a temporary file in the same folder and a rename. */
export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}-${temporaryCounter++}`;
  try {
    injectWriteFault(path);
    writeFileSync(temporary, content);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** JSON with NaN and ±Infinity written as null (JSON has neither), two-space indented. */
function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export interface WrittenReport {
  /** DIR/NAME */
  dir: string;
  files: string[];
}

/**
 * The data files of a run, each written atomically: config.json, results.csv, results.json (keys in
 * a fixed order) and groups.csv (each group's parameters as named columns). A run calls it at every
 * log point (`inProgress`), so a user can watch the files grow, and once at the end.
 */
export function writeResultFiles(out: string, results: ExperimentResults): string[] {
  mkdirSync(out, { recursive: true });
  writeFileAtomic(join(out, 'config.json'), json(results.config));
  writeFileAtomic(join(out, 'results.csv'), toCsv(results.rows));
  writeFileAtomic(join(out, 'groups.csv'), groupsCsv(validateExperiment(results.config)));
  const ordered: ExperimentResults = {
    experiment: results.experiment,
    adapter: results.adapter,
    startedAt: results.startedAt,
    wallSeconds: results.wallSeconds,
    ...(results.inProgress && { inProgress: true }),
    ...(results.quick !== undefined && { quick: results.quick }),
    ...(results.shard && { shard: results.shard }),
    config: results.config,
    ...(results.definitions && { definitions: results.definitions }),
    rows: results.rows,
    divergences: results.divergences,
  };
  writeFileAtomic(join(out, 'results.json'), json(ordered));
  return ['config.json', 'results.csv', 'groups.csv', 'results.json'];
}

/**
 * Writes the data files, the panels' SVGs and Vega-Lite specs and report.html into DIR/NAME/ (created
 * if missing). Returns the folder and the files written.
 */
export async function writeExperimentReport(dir: string, results: ExperimentResults): Promise<WrittenReport> {
  const out = join(dir, results.experiment);
  return { dir: out, files: await writeExperimentFiles(out, results) };
}

/**
 * Writes the data files, the panels' SVGs and Vega-Lite specs and report.html into `out` itself
 * (created if missing; a run's staging folder); returns the file names.
 */
export async function writeExperimentFiles(out: string, results: ExperimentResults): Promise<string[]> {
  const data = writeResultFiles(out, results);
  const rendered = await renderReportFiles(out, results);
  return [...data, ...rendered];
}

/** Renders the panels' SVGs and report.html into `out` from the results; returns the file names. */
async function renderReportFiles(out: string, results: ExperimentResults): Promise<string[]> {
  const files: string[] = [];
  const panels: { name: string; title: string; file: string }[] = [];
  for (const panel of results.config.panels) {
    // The spec beside its SVG, to restyle or re-render the figure (e.g. in the Vega editor).
    const spec = panelSpec(results.config, panel, results.rows);
    writeFileAtomic(join(out, `${panel.name}.vl.json`), json(spec));
    const svg = await renderSvg(spec);
    const file = `${panel.name}.svg`;
    writeFileAtomic(join(out, file), svg);
    files.push(`${panel.name}.vl.json`, file);
    panels.push({ name: panel.name, title: panel.title, file });
  }
  writeFileAtomic(join(out, 'report.html'), reportHtml(results, panels));
  files.push('report.html');
  return files;
}

/** Reads DIR/NAME/results.json. */
export function readResults(experimentDir: string): ExperimentResults {
  const path = join(experimentDir, 'results.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(path, `cannot read results (${(error as Error).message})`);
  }
  return parseResults(raw, path);
}

/** Re-renders an experiment's SVGs and report.html from its results.json (no re-run). */
export async function rerenderExperiment(experimentDir: string): Promise<ExperimentResults> {
  const results = readResults(experimentDir);
  await renderReportFiles(experimentDir, results);
  return results;
}

/** Experiment folders in DIR: subfolders holding a results.json, sorted by name. */
export function findExperiments(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (
    readdirSync(dir, { withFileTypes: true })
      // Dot folders are runs' staging areas (see output-set.ts), not experiments.
      .filter(
        (entry) =>
          entry.isDirectory() &&
          !entry.name.startsWith('.') &&
          existsSync(join(dir, entry.name, 'results.json')),
      )
      .map((entry) => entry.name)
      .sort()
  );
}

/** Writes DIR/index.html linking every experiment report in DIR; returns its path. */
export function writeIndex(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const entries = findExperiments(dir).map((name) => {
    try {
      return { name, results: readResults(join(dir, name)) };
    } catch (error) {
      return { name, error: (error as Error).message };
    }
  });
  const rows = entries.map((entry) => {
    const link = `<a href="${escapeHtml(encodeURIComponent(entry.name))}/report.html">${escapeHtml(entry.name)}</a>`;
    if (!('results' in entry) || !entry.results) {
      return `<tr><td>${link}</td><td colspan="5" class="error">unreadable results.json: ${escapeHtml(entry.error ?? '')}</td></tr>`;
    }
    const r = entry.results;
    return `<tr><td>${link}${r.quick ? ' <span class="badge">quick</span>' : ''}</td><td>${escapeHtml(r.config.figure ?? '')}</td><td class="description">${escapeHtml(r.config.description)}</td><td>${escapeHtml(formatDate(r.startedAt))}</td><td class="number">${escapeHtml(formatDuration(r.wallSeconds))}</td><td>${r.divergences.length > 0 ? `<span class="error">${r.divergences.length}</span>` : '0'}</td></tr>`;
  });
  const body =
    entries.length === 0
      ? '<p>No experiments here yet: run <code>npx sharpness-lab run NAME</code>.</p>'
      : `<table><thead><tr><th>experiment</th><th>figure</th><th>what it shows</th><th>started</th><th>wall time</th><th>diverged replicas</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
  const html = page('sharpness-lab experiments', `<h1>sharpness-lab experiments</h1>\n${body}`);
  const path = join(dir, 'index.html');
  writeFileAtomic(path, html);
  return path;
}

// ---------------------------------------------------------------------------------------------------
// HTML

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number with 4 significant digits (exponent form outside 10⁻³ … 10⁶); '—' for NaN. */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x !== 0 && (Math.abs(x) >= 1e6 || Math.abs(x) < 1e-3)) return x.toExponential(3);
  return String(Number(x.toPrecision(4)));
}

/**
 * A mean with its standard error as a paper writes it: the s.e. to 2 significant digits, the mean to
 * the same decimal place (11.83 ± 0.47, 1193 ± 18); 4 significant digits where there is no s.e.
 */
export function formatMeasurement(mean: number, standardError: number): string {
  if (!Number.isFinite(mean) || !(standardError > 0) || !Number.isFinite(standardError))
    return `${formatNumber(mean)}${Number.isNaN(standardError) ? '' : ` ± ${formatNumber(standardError)}`}`;
  const exponent = Math.floor(Math.log10(standardError)) - 1;
  const magnitude = Math.abs(mean) > 0 ? Math.floor(Math.log10(Math.abs(mean))) : exponent;
  if (magnitude >= 6 || magnitude < -3 || exponent < -6)
    return `${formatNumber(mean)} ± ${formatNumber(Number(standardError.toPrecision(2)))}`;
  const decimals = Math.max(0, -exponent);
  const round = (x: number) =>
    decimals > 0 ? x.toFixed(decimals) : String(Math.round(x / 10 ** exponent) * 10 ** exponent);
  return `${round(mean)} ± ${round(standardError)}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds - 60 * minutes)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC');
}

const STYLE = `
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.figure-ref { color: #666; font-size: 1.05em; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.number, td.value { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.description { max-width: 36em; } .theory { color: #666; font-size: 0.9em; } .se { color: #555; }
.wide { overflow-x: auto; }
.meta td:first-child { font-weight: bold; background: #fafafa; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #333; } figcaption ul { margin: 0.3em 0; padding-left: 1.2em; }
details.config summary { cursor: pointer; color: #0072B2; }
.badge { background: #e69f00; color: white; border-radius: 3px; padding: 0 0.4em; font-size: 0.8em; }
.error { color: #b00020; } .warning { border: 1px solid #e0a800; background: #fff8e1; padding: 0.6em 1em; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; white-space: pre-wrap; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** One group's cells of the final-values table: all its seeds diverged, or seeds and metric cells. */
interface GroupCells {
  group: string;
  parameters: string[];
  seeds?: string;
  cells?: string[];
  /** Why no values: every seed diverged. */
  diverged?: string;
}

function finalTable(results: ExperimentResults): string {
  const { config, rows } = results;
  const lateWindow = (group: string) => resolveGroup(config, group).measure.lateWindow;
  const finals = finalValues(rows, lateWindow);
  // Columns in the order the config measures them (layers in natural order: W2 before W10).
  const order = (metric: string) => {
    const index = config.measure.metrics.indexOf(metric.split('.')[0] as never);
    return index < 0 ? config.measure.metrics.length : index;
  };
  // A sample estimate's own standard error (<metric>StandardError) goes into its metric's cell.
  const estimateError = (metric: string) => /^(.+)StandardError$/.exec(metric)?.[1];
  const measured = new Set(finals.map((f) => f.metric));
  const metrics = [...measured]
    .filter((m) => {
      const base = estimateError(m);
      return base === undefined || !measured.has(base);
    })
    .sort((a, b) => order(a) - order(b) || a.localeCompare(b, 'en', { numeric: true }));
  const byKey = new Map<string, FinalValue>(finals.map((f) => [`${f.group}\u0000${f.metric}`, f]));
  // The parameters that tell the groups apart, as named columns (κ(Σ_ε), init scale s, depth D, …).
  const validated = validateExperiment(config);
  const varying = varyingColumns(validated).filter((c) => c.key !== 'seeds');
  // 'group value' says nothing a named column (init scale s, κ(Σ_ε), depth D) already says.
  const shown = (c: ParameterColumn, v: ReturnType<ParameterColumn['value']>) =>
    typeof v === 'number' ? (c.integer ? String(v) : formatNumber(v)) : (v ?? '');
  const valuesOf = (c: ParameterColumn) => validated.map((g) => shown(c, c.value(g)));
  const columns = varying.filter(
    (c) =>
      c.key !== 'value' ||
      !varying.some((other) => other !== c && valuesOf(other).join() === valuesOf(c).join()),
  );
  const divergedGroups = new Map(groupDivergences(config, results.divergences).map((d) => [d.group, d]));
  // Per group: its parameter cells, its seeds cell and its metric cells (or one cell: all diverged).
  const table = config.groups.map((group): GroupCells => {
    const g = validated.find((v) => v.resolved.group === group.name);
    const parameters = columns.map((c) => {
      const v = g ? c.value(g) : undefined;
      const text = shown(c, v);
      return typeof v === 'number'
        ? `<td class="number">${escapeHtml(text)}</td>`
        : `<td>${escapeHtml(text)}</td>`;
    });
    const divergence = divergedGroups.get(group.name);
    if (divergence && divergence.diverged.length >= divergence.seeds)
      return { group: group.name, parameters, diverged: escapeHtml(describeDivergence(divergence)) };
    const cells = metrics.map((metric) => {
      const f = byKey.get(`${group.name}\u0000${metric}`);
      if (!f) return '<td class="value">—</td>';
      const measured = (mean: number, standardError: number) => {
        const [m, e] = formatMeasurement(mean, standardError).split(' ± ');
        return e === undefined ? m : `${m} <span class="se">± ${e}</span>`;
      };
      const value = Number.isNaN(f.mean) ? '—' : measured(f.mean, f.standardError);
      const ratio =
        f.theory !== undefined && f.theory !== 0 && !Number.isNaN(f.mean)
          ? `<br>ratio ${measured(f.mean / f.theory, f.standardError / Math.abs(f.theory))}`
          : '';
      const theory =
        f.theory !== undefined
          ? `<br><span class="theory">theory ${formatNumber(f.theory)}${ratio}</span>`
          : '';
      const own = byKey.get(`${group.name}\u0000${metric}StandardError`);
      const estimate =
        own && !Number.isNaN(own.mean)
          ? `<br><span class="se">each seed's estimate ± ${formatNumber(own.mean)} (evaluation sample)</span>`
          : '';
      return `<td class="value">${value}${estimate}${theory}</td>`;
    });
    const counted = Math.max(0, ...metrics.map((m) => byKey.get(`${group.name}\u0000${m}`)?.count ?? 0));
    const seeds = divergence
      ? `${counted} <span class="error">(${escapeHtml(describeDivergence(divergence))})</span>`
      : String(counted);
    return { group: group.name, parameters, seeds: `<td class="number">${seeds}</td>`, cells };
  });
  // Too many columns for the page and few enough groups: a column per group instead.
  const transposed = columns.length + metrics.length + 2 > 10 && table.length <= 8;
  let body: string[];
  let header: string;
  if (transposed) {
    header = `<tr><th></th>${table.map((t) => `<th>${escapeHtml(t.group)}</th>`).join('')}</tr>`;
    const row = (label: string, cells: string[]) => `<tr><th>${escapeHtml(label)}</th>${cells.join('')}</tr>`;
    const diverged = (t: GroupCells, cell: () => string) =>
      t.diverged !== undefined ? `<td class="error">${t.diverged}</td>` : cell();
    body = [
      ...columns.map((c, i) =>
        row(
          c.label,
          table.map((t) => t.parameters[i]),
        ),
      ),
      row(
        'seeds',
        table.map((t) => diverged(t, () => t.seeds ?? '')),
      ),
      ...metrics.map((m, j) =>
        row(
          metricLabel(m),
          table.map((t) => diverged(t, () => t.cells?.[j] ?? '')),
        ),
      ),
    ];
  } else {
    header = `<tr><th>group</th>${columns.map((c) => `<th>${escapeHtml(c.label)}</th>`).join('')}<th>seeds</th>${metrics.map((m) => `<th>${escapeHtml(metricLabel(m))}</th>`).join('')}</tr>`;
    body = table.map((t) => {
      const name = `<td>${escapeHtml(t.group)}</td>${t.parameters.join('')}`;
      if (t.diverged !== undefined)
        return `<tr>${name}<td class="error" colspan="${metrics.length + 1}">${t.diverged}</td></tr>`;
      return `<tr>${name}${t.seeds ?? ''}${(t.cells ?? []).join('')}</tr>`;
    });
  }
  const fractions = [...new Set(config.groups.map((g) => lateWindow(g.name)))];
  const window = fractions.map((f) => `${Math.round(f * 100)} %`).join(' / ');
  return `<p>Each seed's mean over the last ${window} of its logged steps, then mean ± standard error over seeds; theory: the closed-form value of the minimum SGD selects (deep linear networks on a linear teacher, beside population measurements), with the ratio measured / theory ± its s.e.</p>
<div class="wide"><table><thead>${header}</thead><tbody>
${body.join('\n')}
</tbody></table></div>`;
}

/** What each metric is ("population, exact" or "sample of n = …"), with the groups when they differ. */
function definitionsList(results: ExperimentResults): string {
  const definitions = results.definitions ?? [];
  if (definitions.length === 0) return '';
  const byMetric = new Map<string, Map<string, string[]>>();
  for (const d of definitions) {
    const forMetric = byMetric.get(d.metric) ?? new Map<string, string[]>();
    forMetric.set(d.definition, [...(forMetric.get(d.definition) ?? []), d.group]);
    byMetric.set(d.metric, forMetric);
  }
  const items = [...byMetric.entries()].flatMap(([metric, forMetric]) =>
    [...forMetric.entries()].map(
      ([definition, groups]) =>
        `<li><b>${escapeHtml(metric)}</b>: ${escapeHtml(definition)}${forMetric.size > 1 ? ` <span class="theory">(${escapeHtml(groups.join(', '))})</span>` : ''}</li>`,
    ),
  );
  return `<p>What each number is:</p>\n<ul class="definitions">\n${items.join('\n')}\n</ul>`;
}

function divergenceSection(results: ExperimentResults): string {
  if (results.divergences.length === 0) return '';
  const rows = results.divergences
    .map(
      (d) =>
        `<tr><td>${escapeHtml(d.group)}</td><td class="number">${d.replica}</td><td class="number">${d.step}</td><td class="number">${formatNumber(d.loss)}</td></tr>`,
    )
    .join('\n');
  return `<h2>Divergences</h2>
<div class="warning"><p class="error">${results.divergences.length} replica(s) diverged (loss or weights non-finite, or loss above ${formatNumber(DIVERGENCE_BOUND)}, at a log point). A diverged replica is frozen there: it has no rows from that step on and no final value, so the means below are over the other seeds.</p>
<ul>${groupDivergences(results.config, results.divergences)
    .map((d) => `<li>${escapeHtml(d.group)}: ${escapeHtml(describeDivergence(d))}</li>`)
    .join('')}</ul>
<table><thead><tr><th>group</th><th>replica (seed)</th><th>step</th><th>loss</th></tr></thead><tbody>
${rows}
</tbody></table></div>`;
}

function reportHtml(
  results: ExperimentResults,
  panels: { name: string; title: string; file: string }[],
): string {
  const { config } = results;
  const steps = [...new Set(config.groups.map((g) => resolveGroup(config, g.name).train.steps))];
  // Groups may override seeds (and steps): list each distinct value.
  const seedCounts = [...new Set(config.groups.map((g) => resolveGroup(config, g.name).seeds))];
  const meta = [
    ['adapter', results.adapter],
    ['started', formatDate(results.startedAt)],
    ['wall time', `${formatDuration(results.wallSeconds)} (all sessions, resumes included)`],
    [
      'groups',
      config.groups.length <= 12
        ? `${config.groups.length} (${config.groups.map((g) => g.name).join(', ')})`
        : `${config.groups.length} (${config.groups
            .slice(0, 6)
            .map((g) => g.name)
            .join(', ')}, …; all in the table below)`,
    ],
    ['seeds per group', seedCounts.join(', ')],
    ['training steps', steps.join(', ')],
    ['form', results.quick ? 'quick (the preset’s --quick override applied)' : 'full'],
  ]
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`)
    .join('\n');
  const figures = panels
    .map((p) => {
      const panel = config.panels.find((x) => x.name === p.name);
      const sentences = panel ? panelCaption(config, panel, results.rows) : [];
      const caption =
        sentences.length > 0
          ? `<figcaption><ul>${sentences.map((t) => `<li>${escapeHtml(t)}</li>`).join('')}</ul><a href="${escapeHtml(encodeURIComponent(`${p.name}.vl.json`))}">Vega-Lite spec</a></figcaption>`
          : '';
      return `<figure id="${escapeHtml(p.name)}"><img src="${escapeHtml(encodeURIComponent(p.file))}" alt="${escapeHtml(p.title)}">${caption}</figure>`;
    })
    .join('\n');
  const body = `<p><a href="../index.html">← all experiments</a></p>
<h1>${escapeHtml(config.name)}${results.quick ? ' <span class="badge">quick</span>' : ''}</h1>
${config.figure ? `<p class="figure-ref">Reproduces the paper’s ${escapeHtml(config.figure)}</p>` : ''}
<p>${escapeHtml(config.description)}</p>
<table class="meta"><tbody>
${meta}
</tbody></table>
${divergenceSection(results)}
<h2>Figures</h2>
${figures || '<p>This experiment defines no panels.</p>'}
<h2>Final values</h2>
${definitionsList(results)}
${finalTable(results)}
<h2>Configuration</h2>
<p>The exact config used (also in <a href="config.json">config.json</a>; rows in <a href="results.csv">results.csv</a> and <a href="results.json">results.json</a>, each group's parameters in <a href="groups.csv">groups.csv</a>).</p>
<details class="config"><summary>config (${config.groups.length} groups, ${config.panels.length} panels)</summary>
<pre>${escapeHtml(JSON.stringify(config, null, 2))}</pre>
</details>`;
  return page(`${config.name} — sharpness-lab`, body);
}
