/**
 * `sharpness-lab/browser` in a user's own page: the docs/api.md web-page example, bundled by esbuild
 * from the compiled package (dist/, as `npm run build` makes it) with no plugin, served from
 * 127.0.0.1 and opened in Chromium, must measure the Hessian of its model on the page's adapter.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from '../runner/browser/bundle.ts';
import { launchChromium } from '../runner/browser/chromium.ts';
import { chooseGpuMode } from '../runner/browser/host.ts';
import { serveStatic } from '../runner/browser/server.ts';

const test = suite('package: sharpness-lab/browser in a page of your own');
const example = join(REPO_ROOT, 'docs', 'examples', 'web-page');

test('the web-page example bundles with plain esbuild and measures eigenvalues and a trace in Chromium', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-user-page-'));
  const server = await serveStatic(dir);
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    await build({
      entryPoints: [join(example, 'main.js')],
      outfile: join(dir, 'bundle.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'chrome113',
      logLevel: 'silent',
      // What `import 'sharpness-lab/browser'` resolves to in an installed package (exports map).
      alias: { 'sharpness-lab/browser': join(REPO_ROOT, 'dist', 'runner', 'browser', 'index.js') },
    });
    copyFileSync(join(example, 'index.html'), join(dir, 'index.html'));
    chromium = await launchChromium({ gpu: await chooseGpuMode({}) });
    const page = await chromium.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(server.url);
    await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'measuring…', {
      timeout: 120_000,
    });
    const text = await page.$eval('#out', (e) => e.textContent ?? '');
    assert.equal(errors, []);
    assert.match(text, /top-3 eigenvalues -?[\d.e+-]+, -?[\d.e+-]+, -?[\d.e+-]+; Tr H = -?[\d.]+ ± [\d.]+$/);
  } finally {
    await chromium?.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
