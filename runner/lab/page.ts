/**
 * Entry of the lab page (`sharpness-lab lab`, `npm run build:lab`): the controls of the paper's deep
 * linear setting, the closed-form theory recomputed on every input, live training of all replicas on
 * the page's WebGPU engine (the bundled shaders), live plots, exports in the CLI's formats and the
 * setting in the URL. Browser only.
 *
 * A change of noise, data, learning rate, batch size, optimiser or step count continues the run from
 * its last log point under the new setting (so the replicas visibly move to the new minimum); a change
 * of the network, replicas, init, seed or measurement restarts it.
 */
import { InputError } from '../../src/errors.ts';
import { experimentResults, formatJson, type ResultRow, toCsv } from '../../src/experiments/results.ts';
import { adapterSummary } from '../../src/gpu/context.ts';
import { requestGpuContext } from '../../src/gpu/device.ts';
import { Engine } from '../../src/tensor/engine.ts';
import type { DeepLinearTheory } from '../../src/theory/deep-linear.ts';
import { loadShaderSources } from '../browser/shaders.ts';
import { LIVE_METRICS, type LiveMetric, LivePlots } from './plots.ts';
import { LabRun, type RunStatus } from './run.ts';
import {
  DEFAULT_PRESET,
  LAB_FIELDS,
  LAB_PRESETS,
  type LabState,
  labConfig,
  labTheory,
  parseLabState,
  presetState,
  stateFromQuery,
  stateToQuery,
} from './state.ts';

/** Fields a running run can take over from its last log point (the network's shapes stay). */
const CONTINUABLE: ReadonlySet<keyof LabState> = new Set([
  'V',
  'sigmaX',
  'noise',
  'kappa',
  'angle',
  'learningRate',
  'batchSize',
  'mode',
  'switchAt',
  'gdBatchSize',
  'steps',
]);

const NO_WEBGPU_HELP =
  'Use a browser with WebGPU: Chrome or Edge 113 or newer (Windows, macOS, ChromeOS, Android; on Linux ' +
  'enable chrome://flags/#enable-unsafe-webgpu), Safari 26, or Firefox 141 on Windows. The page must come ' +
  'from https:// or from http://localhost / 127.0.0.1 (a secure context). The theory table still works.';

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

function input(id: string): HTMLInputElement {
  return element<HTMLInputElement>(id);
}

function show(id: string, text: string | undefined): void {
  const box = element(id);
  box.textContent = text ?? '';
  box.hidden = !text;
}

function format(value: number): string {
  return Number.isFinite(value) ? value.toPrecision(6) : '—';
}

// ---------------------------------------------------------------------------------------------------
// Controls ↔ state

function writeControls(state: LabState): void {
  for (const field of LAB_FIELDS) {
    const value = state[field];
    if (field === 'kappa') input('kappa').value = String(Math.log10(state.kappa));
    else if (Array.isArray(value))
      value.forEach((v, i) => {
        input(`${field}${i}`).value = String(v);
      });
    else input(field).value = String(value);
  }
  showSliderValues(state);
  input('initScale').disabled = state.init !== 'normal';
  input('switchAt').disabled = state.mode !== 'switch';
  input('gdBatchSize').disabled = state.mode === 'sgd';
}

function showSliderValues(state: LabState): void {
  element('kappa-value').textContent =
    state.kappa < 1e3 ? state.kappa.toPrecision(3) : state.kappa.toExponential(1);
  input('kappa').setAttribute('aria-valuetext', `κ = ${state.kappa.toPrecision(3)}`);
  element('angle-value').textContent = `${state.angle}°`;
}

/**
 * The controls as a state; a bad value is an InputError naming its field. κ is read from its slider
 * only when the slider moved (`fromSlider`): the slider snaps to its grid of log10 κ, and a κ from a
 * preset or a link (11.1 = (1/0.3)²) must not move to the grid when another control changes.
 */
function readControls(fromSlider: boolean): LabState {
  const raw: Record<string, unknown> = {};
  for (const field of LAB_FIELDS) {
    const value = current[field];
    if (field === 'kappa') {
      // Rounded so that 10² is 100, not 100.00000000000004.
      raw.kappa = fromSlider ? +(10 ** Number(input('kappa').value)).toPrecision(12) : current.kappa;
    } else if (Array.isArray(value)) raw[field] = value.map((_, i) => input(`${field}${i}`).value);
    else raw[field] = input(field).value;
  }
  return parseLabState(raw);
}

/** The control of a state field (`V.2` is the input V2). */
function controlOf(field: string): HTMLElement | null {
  const [name, index] = field.split('.');
  return document.getElementById(index === undefined ? name : `${name}${index}`);
}

/** What the reader sees as the control's name: its label, else its aria-label, else the field. */
function controlLabel(field: string): string {
  const control = controlOf(field);
  if (!control) return field;
  const label = document.querySelector(`label[for="${control.id}"]`)?.textContent;
  return label ?? control.getAttribute('aria-label') ?? field;
}

function markInvalid(field: string | undefined): void {
  for (const el of Array.from(document.querySelectorAll('.invalid'))) el.classList.remove('invalid');
  if (field) controlOf(field)?.classList.add('invalid');
}

// ---------------------------------------------------------------------------------------------------
// Theory

function showTheory(state: LabState): void {
  try {
    const theory = labTheory(state);
    element('theory-sharpness').textContent = format(theory.sharpness);
    element('theory-fluctuation').textContent = format(theory.fluctuation);
    element('theory-lambdaMax').textContent = format(theory.lambdaMax);
    element('theory-minSharpness').textContent = format(theory.minSharpness);
    const last = segments.at(-1);
    if (last) last.theory = theory;
    drawTheory();
  } catch (error) {
    for (const id of ['sharpness', 'fluctuation', 'lambdaMax', 'minSharpness'])
      element(`theory-${id}`).textContent = '—';
    if (!(error instanceof InputError)) throw error;
  }
}

/** The closed-form lines from the segments of the run (the last one follows the controls). */
function drawTheory(): void {
  if (!plots || segments.length === 0) return;
  const end = (run?.config.train.steps ?? current.steps) - 1;
  plots.setSwitch(run?.config.train.switchToGdAt);
  plots.setTheory(
    segments.map((s, i) => ({ from: s.from, to: (segments[i + 1]?.from ?? end + 1) - 1, theory: s.theory })),
  );
}

/** The replicas' mean of each metric at the latest log point. */
function showCurrent(rows: readonly ResultRow[]): void {
  const last = rows.reduce((step, row) => Math.max(step, row.step), -1);
  for (const metric of ['sharpness', 'fluctuation', 'lambdaMax', 'lambdaMaxAtMinimum']) {
    const values = rows.filter((r) => r.metric === metric && r.step === last && Number.isFinite(r.value));
    if (values.length === 0) continue;
    element(`now-${metric}`).textContent = format(values.reduce((s, r) => s + r.value, 0) / values.length);
  }
}

// ---------------------------------------------------------------------------------------------------
// Engine and runs

let current: LabState = presetState(DEFAULT_PRESET);
/** The state the current run was started or continued with. */
let runState: LabState | undefined;
let engine: Engine | undefined;
/** Whether the WebGPU engine is being set up, ready, or unavailable in this browser. */
let engineState: 'starting' | 'ready' | 'unavailable' = 'starting';
let adapterName = '';
let run: LabRun | undefined;
let plots: LivePlots | undefined;
let pendingRows: ResultRow[] = [];
let pendingParams: readonly Float32Array[] | undefined;
let drawScheduled = false;
let continuedAt: number | undefined;
/** The settings the run trained under: from which step, and their closed form. */
let segments: { from: number; theory: DeepLinearTheory }[] = [];
/** Run changes are applied one after another (a dragged slider sends many). */
let applying: Promise<void> = Promise.resolve();

function hostName(): string {
  const match = /(Edg|Chrome|Firefox|Version)\/(\d+)/.exec(navigator.userAgent);
  const name = match
    ? match[1] === 'Version'
      ? 'Safari'
      : match[1] === 'Edg'
        ? 'Edge'
        : match[1]
    : 'browser';
  return `${name}${match ? ` ${match[2]}` : ''} (lab page)`;
}

async function createEngine(): Promise<Engine | undefined> {
  if (!('gpu' in navigator) || !navigator.gpu) {
    show(
      'no-webgpu',
      `This browser has no WebGPU (navigator.gpu is missing), so the page cannot train. ${NO_WEBGPU_HELP}`,
    );
    return undefined;
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    show(
      'no-webgpu',
      `WebGPU is on, but the browser offered no GPU adapter (blocklisted GPU or driver). ${NO_WEBGPU_HELP}`,
    );
    return undefined;
  }
  const context = await requestGpuContext(
    adapter,
    { backend: 'webgpu', host: hostName() },
    { label: 'sharpness-lab lab', onError: (message) => show('error', `GPU error: ${message}`) },
  );
  const info = context.adapterInfo;
  adapterName = info.description || `${info.vendor} ${info.architecture}`.trim() || 'unknown adapter';
  return Engine.create(context, loadShaderSources());
}

/**
 * Plots redraw at most every 100 ms, and at most a fifth of the time: log points can come faster than
 * a reader can follow, and every redraw takes main-thread time from the controls (on a CPU adapter
 * also from the training itself).
 */
const DRAW_INTERVAL_MS = 100;
const DRAW_SHARE = 0.2;
let lastDraw = 0;
let drawInterval = DRAW_INTERVAL_MS;

function scheduleDraw(): void {
  if (drawScheduled) return;
  drawScheduled = true;
  const wait = Math.max(0, lastDraw + drawInterval - performance.now());
  setTimeout(() => requestAnimationFrame(draw), wait);
}

function draw(): void {
  drawScheduled = false;
  const started = performance.now();
  lastDraw = started;
  if (plots && pendingRows.length > 0) {
    plots.add(pendingRows);
    showCurrent(pendingRows);
  }
  if (plots && pendingParams) plots.setWeights(pendingParams);
  pendingRows = [];
  pendingParams = undefined;
  showStatus();
  drawInterval = Math.max(DRAW_INTERVAL_MS, (performance.now() - started) / DRAW_SHARE);
}

function showStatus(): void {
  if (!run) return;
  const words: Record<RunStatus, string> = {
    running: 'training',
    paused: 'paused',
    done: 'done',
    stopped: 'stopped',
    failed: 'failed',
  };
  const steps = run.config.train.steps;
  const speed = run.stepsPerSecond();
  element('status').textContent =
    `${words[run.status]} · step ${run.lastStep + 1} of ${steps} · ` +
    `${speed > 0 ? Math.round(speed).toLocaleString('en') : '–'} steps/s · ${run.config.seeds} replicas · ${adapterName}`;
  element('pause').textContent = run.status === 'paused' ? 'Resume' : 'Pause';
  element<HTMLButtonElement>('pause').disabled = !run.active;
  element<HTMLButtonElement>('step').disabled = run.status !== 'paused';
}

const listener = {
  logPoint(rows: readonly ResultRow[], _step: number, params: readonly Float32Array[]) {
    pendingRows.push(...rows);
    pendingParams = params;
    scheduleDraw();
  },
  status(status: RunStatus, detail?: string) {
    if (status === 'failed') show('error', `Training failed: ${detail}`);
    // A run that stops or pauses shows where it stands at once; a running one at the next redraw.
    if (status === 'running') scheduleDraw();
    else draw();
  },
};

function plotContainers(): Record<LiveMetric | 'norms', HTMLElement> {
  const containers = { norms: element('plot-norms') } as Record<LiveMetric | 'norms', HTMLElement>;
  for (const metric of LIVE_METRICS) containers[metric] = element(`plot-${metric}`);
  return containers;
}

/** Starts a fresh run of the current state, or continues the current run under it. */
async function apply(mode: 'restart' | 'continue'): Promise<void> {
  if (!engine) return;
  const state = current;
  labConfig(state); // a setting `run` would refuse leaves the current run alone (the caller shows why)
  const previous = run;
  const paused = previous?.status === 'paused';
  if (previous?.active) await previous.stop();
  const resumable = mode === 'continue' && previous && previous.lastStep >= 0;
  // A finished run continues for another `steps` steps.
  const steps =
    resumable && previous.lastStep + 1 >= state.steps ? previous.lastStep + 1 + state.steps : state.steps;
  const config = labConfig({ ...state, steps });
  show('error', undefined);
  if (resumable) {
    continuedAt = previous.lastStep + 1;
    // The segment that ended keeps the closed form of the setting it trained under.
    if (runState && segments.length > 0) segments[segments.length - 1].theory = labTheory(runState);
    segments.push({ from: continuedAt, theory: labTheory(state) });
    run = new LabRun(engine, config, listener, previous, paused);
  } else {
    segments = [{ from: 0, theory: labTheory(state) }];
    continuedAt = undefined;
    // Rows the stopped run measured but the page has not drawn belong to the old plots.
    pendingRows = [];
    pendingParams = undefined;
    plots?.finalize();
    for (const container of Object.values(plotContainers())) container.replaceChildren();
    const width = Math.max(300, element('plot-sharpness').clientWidth - 2);
    plots = await LivePlots.create(config, plotContainers(), width);
    for (const metric of ['sharpness', 'fluctuation', 'lambdaMax', 'lambdaMaxAtMinimum'])
      element(`now-${metric}`).textContent = '';
    run = new LabRun(engine, config, listener);
  }
  runState = state;
  show(
    'note',
    continuedAt === undefined
      ? undefined
      : `Continued from step ${continuedAt} under the new setting: the exported rows hold both settings; config.json is the current setting, which \`sharpness-lab run\` trains from scratch.`,
  );
  showTheory(state);
  showStatus();
}

function queue(mode: 'restart' | 'continue'): Promise<void> {
  applying = applying.then(
    () => apply(mode),
    () => apply(mode),
  );
  applying.catch((error) => show('error', error instanceof Error ? error.message : String(error)));
  return applying;
}

function setUrl(state: LabState): void {
  history.replaceState(null, '', `${location.pathname}?${stateToQuery(state)}`);
}

/** Reads the controls; on success shows the theory and the URL, else names the bad field. */
function takeControls(changed?: EventTarget | null): boolean {
  try {
    current = readControls(changed === input('kappa'));
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    markInvalid(error.field);
    show('error', `${controlLabel(error.field)}: ${error.message.slice(error.field.length + 2)}`);
    return false;
  }
  markInvalid(undefined);
  show('error', undefined);
  showSliderValues(current);
  input('initScale').disabled = current.init !== 'normal';
  input('switchAt').disabled = current.mode !== 'switch';
  input('gdBatchSize').disabled = current.mode === 'sgd';
  showTheory(current);
  setUrl(current);
  return true;
}

function changedFields(a: LabState, b: LabState): (keyof LabState)[] {
  return LAB_FIELDS.filter((field) => JSON.stringify(a[field]) !== JSON.stringify(b[field]));
}

function onChange(target: EventTarget | null): void {
  if (!takeControls(target)) return;
  const before = runState;
  if (!before) {
    void queue('restart');
    return;
  }
  const changed = changedFields(before, current);
  if (changed.length === 0) return;
  void queue(changed.every((field) => CONTINUABLE.has(field)) ? 'continue' : 'restart');
}

// ---------------------------------------------------------------------------------------------------
// Exports

function results() {
  if (!run || !engine) throw new Error('nothing has run yet');
  return experimentResults(run.config, run, {
    adapter: adapterSummary(engine.context.adapterInfo),
    startedAt: run.startedAt,
    wallSeconds: run.wallSeconds(),
  });
}

function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const exports = {
  csv: () => toCsv(results().rows),
  json: () => formatJson(results()),
  config: () => formatJson(labConfig(current)),
};

/** For scripts and the tests: the page's state, run and exports (what the buttons download). */
const api = {
  state: () => current,
  status: () => run?.status ?? (engineState === 'unavailable' ? 'no-webgpu' : 'starting'),
  lastStep: () => run?.lastStep ?? -1,
  stepsPerSecond: () => run?.stepsPerSecond() ?? 0,
  adapter: () => adapterName,
  finished: async () => {
    await applying;
    await run?.finished;
    return run?.status;
  },
  exports,
};

// ---------------------------------------------------------------------------------------------------
// Start

function fillPresets(): void {
  const select = element<HTMLSelectElement>('preset');
  select.add(new Option('(custom: the URL or your edits)', ''));
  for (const preset of LAB_PRESETS) select.add(new Option(preset.label, preset.id));
  select.addEventListener('change', () => {
    const preset = LAB_PRESETS.find((p) => p.id === select.value);
    if (!preset) return;
    current = presetState(preset);
    writeControls(current);
    takeControls();
    void queue('restart');
  });
}

async function main(): Promise<void> {
  (window as unknown as { lab: typeof api }).lab = api;
  fillPresets();
  try {
    current = location.search.length > 1 ? stateFromQuery(location.search, current) : current;
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    show('error', `The link's setting is not valid (${error.message}); showing the default preset instead.`);
  }
  writeControls(current);
  const same = JSON.stringify(current);
  element<HTMLSelectElement>('preset').value =
    LAB_PRESETS.find((preset) => JSON.stringify(presetState(preset)) === same)?.id ?? '';
  showTheory(current);
  setUrl(current);
  const form = element<HTMLFormElement>('controls');
  form.addEventListener('input', (event) => {
    if ((event.target as HTMLElement).id === 'preset') return;
    element<HTMLSelectElement>('preset').value = '';
    takeControls(event.target);
  });
  form.addEventListener('change', (event) => {
    if ((event.target as HTMLElement).id !== 'preset') onChange(event.target);
  });
  form.addEventListener('submit', (event) => event.preventDefault());
  element('pause').addEventListener('click', () => {
    if (run?.status === 'paused') run.resume();
    else run?.pause();
  });
  element('step').addEventListener('click', () => run?.step());
  element('reset').addEventListener('click', () => void queue('restart'));
  element('export-csv').addEventListener('click', () => download('results.csv', exports.csv(), 'text/csv'));
  element('export-json').addEventListener('click', () =>
    download('results.json', exports.json(), 'application/json'),
  );
  element('export-config').addEventListener('click', () =>
    download('config.json', exports.config(), 'application/json'),
  );
  try {
    engine = await createEngine();
  } catch (error) {
    show(
      'no-webgpu',
      `The GPU device could not be set up: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  engineState = engine ? 'ready' : 'unavailable';
  if (!engine) {
    element('status').textContent = 'no WebGPU: theory only';
    element('plots').hidden = true;
    for (const id of ['pause', 'step', 'reset', 'export-csv', 'export-json'])
      element<HTMLButtonElement>(id).disabled = true;
    return;
  }
  await queue('restart');
}

main().catch((error) => show('error', error instanceof Error ? error.message : String(error)));
