/**
 * A report as a reader opens it: a small real run (two groups, one switching from SGD to GD) written
 * by the report writer, served from 127.0.0.1 and loaded in headless Chromium. No console errors, every figure
 * loaded with its caption, the config collapsed, and each SVG carrying its axis titles and the
 * labelled switch rule.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { launchChromium } from '../runner/browser/chromium.ts';
import { writeExperimentReport } from '../runner/node/report.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { runExperiment } from '../src/experiments/executor.ts';
import { metricLabel } from '../src/experiments/plots.ts';
import { canonicalRowOrder } from '../src/experiments/results.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('report in Chromium');
const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-report-browser-'));
test.after(async () => {
  rmSync(work, { recursive: true, force: true });
  await destroyTestEngine();
});

const CONFIG = deepLinearConfig({
  name: 'report-browser',
  description: 'SGD throughout vs SGD then GD on a depth-2 linear network',
  steps: 400,
  measure: { every: 100, evaluationSamples: 32, metrics: ['loss', 'sharpness', 'fluctuation'] },
  seeds: 2,
  seed: 5,
  groups: [
    { name: 'sgd', value: 0 },
    { name: 'then-gd', value: 1, overrides: { train: { switchToGdAt: 200, gdBatchSize: 100 } } },
  ],
  panels: [
    { name: 'curves', kind: 'timeseries', metrics: ['sharpness', 'fluctuation'], title: 'T and S' },
    { name: 'final', kind: 'final-vs-group', metrics: ['sharpness'], title: 'final T', x: 'GD (0 or 1)' },
  ],
});

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

function serve(root: string): Promise<Server> {
  const server = createServer((request, response) => {
    try {
      const path = join(root, decodeURIComponent((request.url ?? '/').split('?')[0]));
      const body = readFileSync(path);
      response.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'text/plain' });
      response.end(body);
    } catch {
      response.writeHead(404);
      response.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('the report loads without errors, every figure with a caption, the config collapsed, axes titled', async () => {
  const config = prepareExperiment(CONFIG);
  const { rows, divergences, definitions } = await runExperiment(await testEngine(), config);
  const root = join(work, 'out');
  await writeExperimentReport(root, {
    experiment: config.name,
    adapter: 'SwiftShader (test)',
    startedAt: new Date().toISOString(),
    wallSeconds: 1,
    config,
    rows: canonicalRowOrder(config, rows),
    divergences: divergences.map(({ group, replica, step, loss }) => ({ group, replica, step, loss })),
    definitions,
  });
  const server = await serve(root);
  const chromium = await launchChromium({ gpu: 'swiftshader' });
  try {
    const page = await chromium.browser.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(String(error)));
    const address = server.address() as { port: number };
    await page.goto(`http://127.0.0.1:${address.port}/report-browser/report.html`, {
      waitUntil: 'networkidle0',
    });
    const seen = await page.evaluate(() => ({
      figures: Array.from(document.querySelectorAll('figure')).map((f) => ({
        id: f.id,
        loaded: (f.querySelector('img') as HTMLImageElement).naturalWidth > 0,
        caption: f.querySelector('figcaption')?.textContent ?? '',
      })),
      details: document.querySelector('details.config') !== null,
      open: (document.querySelector('details.config') as HTMLDetailsElement | null)?.open,
      // Closed, the details element is as tall as its summary line.
      configHeight: (document.querySelector('details.config') as HTMLElement | null)?.offsetHeight,
      summaryHeight: (document.querySelector('details.config summary') as HTMLElement | null)?.offsetHeight,
    }));
    assert.equal(errors, [], 'no console errors');
    assert.equal(
      seen.figures.map((f) => f.id),
      ['curves', 'final'],
    );
    for (const f of seen.figures) {
      assert.ok(f.loaded, `${f.id}: image loaded`);
      assert.ok(f.caption.includes('±'), `${f.id}: a caption with values and errors: ${f.caption}`);
    }
    assert.ok(
      seen.details && seen.open === false && seen.configHeight === seen.summaryHeight,
      `config collapsed (${seen.configHeight} px, summary ${seen.summaryHeight} px)`,
    );
    const curves = readFileSync(join(root, 'report-browser', 'curves.svg'), 'utf8');
    for (const title of [metricLabel('sharpness'), metricLabel('fluctuation'), 'training step'])
      assert.ok(curves.includes(title.replace(/&/g, '&amp;')), `curves: axis title '${title}'`);
    assert.ok(curves.includes('SGD → GD at step 200'), 'the switch is a labelled rule');
    const final = readFileSync(join(root, 'report-browser', 'final.svg'), 'utf8');
    assert.ok(
      final.includes('GD (0 or 1)') && final.includes(metricLabel('sharpness')),
      'final: axis titles',
    );
  } finally {
    await chromium.close();
    server.close();
  }
});

test.run();
