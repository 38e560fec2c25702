/**
 * The lab page end to end in headless Chromium (SwiftShader): `sharpness-lab lab` serves it, it finds
 * the adapter and trains a seeded setting from its URL; its exported rows equal the Node engine's run of
 * its exported config (`run` exits 0 on it); the κ slider moves the theory shown to the closed form
 * computed here; the URL round-trips the setting; the static build (`lab --out`, what
 * `npm run build:lab` runs) served by a plain static server gives the same rows. A screenshot of the
 * trained page goes to results/lab-screenshot.png.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../runner/browser/bundle.ts';
import { type Chromium, launchChromium } from '../runner/browser/chromium.ts';
import { serveStatic } from '../runner/browser/server.ts';
import {
  LAB_PRESETS,
  type LabState,
  presetState,
  stateFromQuery,
  stateToQuery,
} from '../runner/lab/state.ts';
import { InputError } from '../src/errors.ts';
import { fromCsv, type ResultRow } from '../src/experiments/results.ts';
import { runCli } from './helpers/cli.ts';

const test = suite('lab page (Chromium)');

/** Parity tolerance of the issue: the page's rows and the Node engine's within 1e-4 relative. */
const RELATIVE = 1e-4;

/** A small seeded setting: D = 2, four replicas, 300 steps logged every 100 (a few seconds here). */
const SETTING: LabState = {
  ...presetState(LAB_PRESETS[0]),
  depth: 2,
  width: 2,
  noise: 1,
  kappa: 11.1111111111,
  learningRate: 0.05,
  batchSize: 10,
  replicas: 4,
  init: 'normal',
  initScale: 0.5,
  mode: 'sgd',
  steps: 300,
  every: 100,
  evaluationSamples: 64,
  seed: 3,
};

const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-lab-'));
let chromium: Chromium | undefined;
let server: ChildProcess | undefined;
let labUrl = '';
let pageRows: ResultRow[] = [];
let settingUrl = '';

test.before(async () => {
  server = spawn(process.execPath, [join(REPO_ROOT, 'runner', 'bin.mjs'), 'lab'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  labUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`lab did not start:\n${output}`)), 120_000);
    const take = (chunk: Buffer) => {
      output += chunk;
      const match = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    server?.stdout?.on('data', take);
    server?.stderr?.on('data', take);
    server?.on('exit', (code) => reject(new Error(`lab exited with ${code}:\n${output}`)));
  });
  chromium = await launchChromium({ gpu: 'swiftshader' });
});

test.after(async () => {
  await chromium?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server?.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

interface OpenPage {
  page: Page;
  /** Console errors and uncaught exceptions so far. */
  errors: string[];
}

async function openLab(url: string): Promise<OpenPage> {
  if (!chromium) throw new Error('no browser');
  const page = await chromium.browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction('window.lab && window.lab.status() !== "starting"', { timeout: 60_000 });
  return { page, errors };
}

/** Waits for the run to finish and returns the page's exported results.csv rows. */
async function trainedRows(page: Page): Promise<ResultRow[]> {
  const status = await page.evaluate(() =>
    (window as unknown as { lab: { finished(): Promise<string> } }).lab.finished(),
  );
  assert.is(status, 'done');
  return fromCsv(
    await page.evaluate(() =>
      (window as unknown as { lab: { exports: { csv(): string } } }).lab.exports.csv(),
    ),
  );
}

function assertSameRows(actual: ResultRow[], expected: ResultRow[], what: string): void {
  assert.is(actual.length, expected.length, `${what}: row count`);
  const key = (r: ResultRow) => `${r.group}|${r.seed}|${r.step}|${r.metric}`;
  const values = new Map(expected.map((r) => [key(r), r.value]));
  for (const row of actual) {
    const value = values.get(key(row));
    assert.ok(value !== undefined, `${what}: row ${key(row)} missing`);
    assert.ok(
      Math.abs(row.value - value) <= RELATIVE * Math.abs(value),
      `${what}: ${key(row)} is ${row.value}, expected ${value}`,
    );
  }
}

/**
 * T* and S* of theory.md for V = I₂, Σ_x = I₂, √Σ_ε = diag(s, s/√κ) (rotations do not change them):
 * G = Σ_ε^{1/2} is diagonal, so its singular values are s and s/√κ with U = I.
 */
function closedForm(depth: number, s: number, kappa: number): { sharpness: number; fluctuation: number } {
  const singular = [s, s / Math.sqrt(kappa)];
  const variances = singular.map((v) => v * v);
  const sigma = singular[0] + singular[1];
  const a = 2;
  const b = variances[0] + variances[1];
  const tau = singular[0] / variances[0] + singular[1] / variances[1];
  const c = ((a * b) / (sigma * sigma)) ** (1 / depth);
  return {
    sharpness: sigma * c * ((depth - 1) * tau + (2 * sigma) / b),
    fluctuation: depth * sigma * sigma * c,
  };
}

test('the URL form of every preset round-trips, and a bad link names its field', () => {
  for (const preset of LAB_PRESETS) {
    const state = presetState(preset);
    assert.equal(stateFromQuery(stateToQuery(state), SETTING), state, preset.id);
  }
  assert.throws(
    () => stateFromQuery('kappa=0.5', SETTING),
    (e: unknown) => e instanceof InputError && e.field === 'kappa',
  );
  assert.throws(
    () => stateFromQuery('learningRat=0.1', SETTING),
    (e: unknown) => e instanceof InputError && e.field === 'learningRat',
  );
});

test('served by `lab`: loads without console errors, finds the adapter, trains; rows equal the CLI run of its exported config', async () => {
  settingUrl = `${labUrl}?${stateToQuery(SETTING)}`;
  const { page, errors } = await openLab(settingUrl);
  const adapter = await page.evaluate(() =>
    (window as unknown as { lab: { adapter(): string } }).lab.adapter(),
  );
  assert.ok(adapter.length > 0, 'the page names its adapter');
  pageRows = await trainedRows(page);
  const measured = pageRows.filter((r) => r.seed !== 'theory');
  // Five metrics × four replicas × four log points (0, the initialisation, and three more), plus the
  // theory rows.
  assert.is(measured.length, 5 * 4 * 4);
  assert.ok(pageRows.some((r) => r.seed === 'theory' && r.metric === 'sharpness'));
  // λ_max* stands beside λ_max at the nearest minimum, never beside λ_max at the iterate.
  const theoryMetrics = new Set(pageRows.filter((r) => r.seed === 'theory').map((r) => r.metric));
  assert.ok(
    theoryMetrics.has('lambdaMaxAtMinimum') && !theoryMetrics.has('lambdaMax'),
    [...theoryMetrics].join(),
  );
  assert.match(
    await page.$eval('#status', (e) => e.textContent ?? ''),
    /done · step 300 of 300 · [\d,]+ steps\/s/,
  );

  const config = await page.evaluate(() =>
    (window as unknown as { lab: { exports: { config(): string } } }).lab.exports.config(),
  );
  writeFileSync(join(dir, 'config.json'), config);
  const cli = await runCli(['run', join(dir, 'config.json'), '--out', join(dir, 'cli')], {
    timeoutMs: 240_000,
  });
  assert.is(cli.code, 0, `run on the exported config failed:\n${cli.stderr}`);
  const nodeRows = fromCsv(readFileSync(join(dir, 'cli', 'lab', 'results.csv'), 'utf8'));
  assertSameRows(pageRows, nodeRows, 'page vs node');

  const json = JSON.parse(
    await page.evaluate(() =>
      (window as unknown as { lab: { exports: { json(): string } } }).lab.exports.json(),
    ),
  );
  assert.is(json.experiment, 'lab');
  assert.is(json.rows.length, pageRows.length);
  assert.equal(json.config, JSON.parse(config));

  mkdirSync(join(REPO_ROOT, 'results'), { recursive: true });
  await page.screenshot({ path: join(REPO_ROOT, 'results', 'lab-screenshot.png'), fullPage: true });
  assert.equal(errors, [], 'console errors');
  await page.close();
});

test('the κ slider moves the theory shown to the closed form; the URL round-trips the new setting', async () => {
  const { page, errors } = await openLab(settingUrl);
  // log10 κ = 3: κ = 1000, as a user drags the slider there.
  await page.$eval('#kappa', (slider) => {
    const input = slider as HTMLInputElement;
    input.value = '3';
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  });
  const expected = closedForm(SETTING.depth, SETTING.noise, 1000);
  const shown = (id: string) => page.$eval(id, (e) => Number(e.textContent));
  const sharpness = await shown('#theory-sharpness');
  const fluctuation = await shown('#theory-fluctuation');
  // Shown with six significant digits.
  assert.ok(
    Math.abs(sharpness - expected.sharpness) <= 5e-6 * expected.sharpness,
    `T* ${sharpness} vs ${expected.sharpness}`,
  );
  assert.ok(
    Math.abs(fluctuation - expected.fluctuation) <= 5e-6 * expected.fluctuation,
    `S* ${fluctuation} vs ${expected.fluctuation}`,
  );
  // The keyboard moves it too (a labelled range input): one step left lowers κ and T*.
  await page.focus('#kappa');
  await page.keyboard.press('ArrowLeft');
  const lowered = await page.evaluate(
    () => (window as unknown as { lab: { state(): LabState } }).lab.state().kappa,
  );
  assert.ok(lowered < 1000 && lowered > 100, `κ after ArrowLeft: ${lowered}`);
  // The state changes on the key event; the theory panel redraws after it: wait for the new T*.
  await page.waitForFunction(
    (previous) => Number(document.querySelector('#theory-sharpness')?.textContent) < previous,
    { timeout: 10_000 },
    sharpness,
  );
  const loweredExpected = closedForm(SETTING.depth, SETTING.noise, lowered).sharpness;
  const loweredShown = await shown('#theory-sharpness');
  assert.ok(
    Math.abs(loweredShown - loweredExpected) <= 5e-6 * loweredExpected,
    `T* after ArrowLeft ${loweredShown} vs ${loweredExpected}`,
  );

  const state = await page.evaluate(() => (window as unknown as { lab: { state(): LabState } }).lab.state());
  const url = await page.evaluate(() => location.href); // page.url() may lag behind history.replaceState
  assert.match(url, /kappa=/);
  await page.evaluate(() => (window as unknown as { lab: { finished(): Promise<string> } }).lab.finished());
  await page.close();
  const reopened = await openLab(url);
  const restored = await reopened.page.evaluate(() =>
    (window as unknown as { lab: { state(): LabState } }).lab.state(),
  );
  assert.equal(restored, state);
  assert.is(await reopened.page.$eval('#depth', (e) => (e as HTMLInputElement).value), String(SETTING.depth));
  await reopened.page.evaluate(() =>
    (window as unknown as { lab: { finished(): Promise<string> } }).lab.finished(),
  );
  assert.equal([...errors, ...reopened.errors], [], 'console errors');
  await reopened.page.close();
});

test('Pause holds the run, Step trains exactly one log interval, Reset starts again from step 0', async () => {
  const { page, errors } = await openLab(`${labUrl}?${stateToQuery({ ...SETTING, steps: 100_000 })}`);
  type Lab = { lab: { status(): string; lastStep(): number } };
  const lastStep = () => page.evaluate(() => (window as unknown as Lab).lab.lastStep());
  await page.waitForFunction('window.lab.lastStep() >= 199', { timeout: 60_000 });
  await page.click('#pause');
  await page.waitForFunction('window.lab.status() === "paused"', { timeout: 30_000 });
  const held = await lastStep();
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.is(await lastStep(), held, 'no step while paused');
  await page.click('#step');
  await page.waitForFunction(`window.lab.lastStep() === ${held + SETTING.every}`, { timeout: 30_000 });
  await page.waitForFunction('window.lab.status() === "paused"', { timeout: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.is(await lastStep(), held + SETTING.every, 'Step trains one log interval, then pauses');
  await page.click('#reset');
  await page.waitForFunction(`window.lab.lastStep() < ${held}`, { timeout: 30_000 });
  assert.equal(errors, [], 'console errors');
  await page.close();
});

test('without WebGPU the page says which browsers work and still shows the theory', async () => {
  if (!chromium) throw new Error('no browser');
  const page = await chromium.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  // A string, not a function: the test's transpiler may wrap arrow functions in helpers the page lacks.
  await page.evaluateOnNewDocument(
    "Object.defineProperty(Navigator.prototype, 'gpu', { get() { return undefined; }, configurable: true });",
  );
  await page.goto(settingUrl);
  await page.waitForFunction(
    () => (window as unknown as { lab?: { status(): string } }).lab?.status() === 'no-webgpu',
    {
      timeout: 30_000,
    },
  );
  const message = await page.$eval('#no-webgpu', (e) =>
    (e as HTMLElement).hidden ? '' : (e.textContent ?? ''),
  );
  assert.match(message, /no WebGPU/);
  assert.match(message, /Chrome or Edge 113/);
  const expected = closedForm(SETTING.depth, SETTING.noise, SETTING.kappa).sharpness;
  const shown = await page.$eval('#theory-sharpness', (e) => Number(e.textContent));
  assert.ok(Math.abs(shown - expected) <= 5e-6 * expected, `T* ${shown} vs ${expected}`);
  assert.equal(errors, []);
  await page.close();
});

test('lab refuses bad flags with exit code 2, naming the flag, and writes nothing', async () => {
  const port = await runCli(['lab', '--port', '70000'], { timeoutMs: 60_000 });
  assert.is(port.code, 2);
  assert.match(port.stderr, /^sharpness-lab: --port: expected an integer port/);
  const occupied = join(dir, 'occupied');
  mkdirSync(occupied);
  writeFileSync(join(occupied, 'notes.txt'), 'mine');
  const out = await runCli(['lab', '--out', occupied], { timeoutMs: 60_000 });
  assert.is(out.code, 2);
  assert.match(out.stderr, /--out: .* is not empty and not a lab build/);
  assert.equal(readdirSync(occupied), ['notes.txt']);
});

test('the static build (lab --out) from a plain static server gives the same rows', async () => {
  const out = join(dir, 'dist-lab');
  const built = await runCli(['lab', '--out', out], { timeoutMs: 120_000 });
  assert.is(built.code, 0, built.stderr);
  const staticServer = await serveStatic(out);
  try {
    const { page, errors } = await openLab(`${staticServer.url}?${stateToQuery(SETTING)}`);
    assertSameRows(await trainedRows(page), pageRows, 'static build vs served');
    assert.equal(errors, [], 'console errors');
    await page.close();
  } finally {
    await staticServer.close();
  }
});

test.run();
