/**
 * The browser host's parts that need no browser: the static server (127.0.0.1 only, no path
 * traversal), finding Chromium, its flags, the JSON codec between Node and the page, and the bundle
 * guard that keeps `node:*` out of the page.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bundlePage, cachedPageBundle } from '../runner/browser/bundle.ts';
import { chromiumArgs, findChromium, findPuppeteerChrome } from '../runner/browser/chromium.ts';
import { decodeJson, encodeJson } from '../runner/browser/protocol.ts';
import { resolveRequestPath, serveStatic } from '../runner/browser/server.ts';

const test = suite('browser host parts (no browser)');

const scratch = mkdtempSync(join(tmpdir(), 'sharpness-lab-units-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

/** A raw GET (node:http sends the path as given, unlike fetch, which normalises `..`). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the static server serves only its folder, on 127.0.0.1, and closes', async () => {
  const root = join(scratch, 'site');
  mkdirSync(join(root, 'chunks'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html>');
  writeFileSync(join(root, 'chunks', 'a.js'), 'export {}');
  writeFileSync(join(scratch, 'secret.txt'), 'secret');
  symlinkSync(join(scratch, 'secret.txt'), join(root, 'link.txt'));
  const server = await serveStatic(root);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  try {
    const index = await get(server.port, '/');
    assert.is(index.status, 200);
    assert.is(index.body, '<!doctype html>');
    assert.is((await get(server.port, '/chunks/a.js')).status, 200);
    for (const path of [
      '/../secret.txt',
      '/chunks/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/chunks/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/..%5csecret.txt',
      `/${join(scratch, 'secret.txt')}`,
      '//etc/passwd',
      '/link.txt',
      '/missing.js',
      '/chunks',
      '/%zz',
    ]) {
      const response = await get(server.port, path);
      assert.ok(response.status >= 400, `${path} gave ${response.status}`);
      assert.not.match(response.body, /secret/, path);
    }
  } finally {
    await server.close();
  }
  await get(server.port, '/').then(
    () => assert.unreachable('the server still answers after close()'),
    () => {},
  );
});

test('request paths are resolved segment by segment inside the root', () => {
  const root = join(scratch, 'site');
  assert.equal(resolveRequestPath(root, '/?x=1'), { file: join(root, 'index.html') });
  assert.equal((resolveRequestPath(root, '/a/../b') as { status: number }).status, 403);
  assert.equal((resolveRequestPath(root, '/C:/x') as { status: number }).status, 403);
  assert.equal((resolveRequestPath(root, '/a\0b') as { status: number }).status, 400);
});

test('Chromium is found from CHROME_PATH, PUPPETEER_EXECUTABLE_PATH, the system, then Puppeteer', () => {
  const fake = join(scratch, 'fake-chrome');
  writeFileSync(fake, '#!/bin/sh\n');
  chmodSync(fake, 0o755);
  assert.equal(findChromium({ CHROME_PATH: fake }, 'linux'), { path: fake, source: 'CHROME_PATH' });
  assert.equal(findChromium({ PUPPETEER_EXECUTABLE_PATH: fake }, 'linux'), {
    path: fake,
    source: 'PUPPETEER_EXECUTABLE_PATH',
  });
  assert.throws(
    () => findChromium({ CHROME_PATH: join(scratch, 'nope') }, 'linux'),
    /CHROME_PATH=.* is not an executable/,
  );
  // Puppeteer's cache: the newest build wins.
  const cache = join(scratch, 'puppeteer');
  for (const build of ['linux-119.0.6045.105', 'linux-131.0.6778.85']) {
    mkdirSync(join(cache, 'chrome', build, 'chrome-linux64'), { recursive: true });
    const binary = join(cache, 'chrome', build, 'chrome-linux64', 'chrome');
    writeFileSync(binary, '#!/bin/sh\n');
    chmodSync(binary, 0o755);
  }
  assert.is(
    findPuppeteerChrome({ PUPPETEER_CACHE_DIR: cache }, 'linux'),
    join(cache, 'chrome', 'linux-131.0.6778.85', 'chrome-linux64', 'chrome'),
  );
  assert.throws(
    () => findChromium({ PUPPETEER_CACHE_DIR: join(scratch, 'empty') }, 'aix'),
    /No Chromium or Chrome found/,
  );
});

test('flags: WebGPU on, background networking off; SwiftShader or Vulkan/ANGLE', () => {
  const swiftshader = chromiumArgs('swiftshader', 'linux');
  for (const flag of [
    '--enable-unsafe-webgpu',
    '--enable-webgpu-developer-features',
    '--use-webgpu-adapter=swiftshader',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
    '--no-sandbox',
  ])
    assert.ok(swiftshader.includes(flag), flag);
  assert.not.ok(swiftshader.some((f) => f.includes('angle') || f.includes('Vulkan')));
  const hardware = chromiumArgs('hardware', 'linux');
  assert.ok(hardware.includes('--use-angle=vulkan') && hardware.includes('--enable-features=Vulkan'));
  assert.not.ok(hardware.includes('--use-webgpu-adapter=swiftshader'));
  assert.not.ok(chromiumArgs('hardware', 'darwin').some((f) => f.includes('angle') || f === '--no-sandbox'));
});

test('the codec keeps NaN, ±Infinity and typed arrays (f32 bit-exact)', () => {
  const f32 = Float32Array.from([0.1, -1e-30, 3.4e38, 1 / 3]);
  const value = {
    a: [Number.NaN, Number.POSITIVE_INFINITY, -Infinity, 1.5],
    f32,
    u32: Uint32Array.from([7]),
  };
  const back = decodeJson(encodeJson(value)) as typeof value;
  assert.ok(Number.isNaN(back.a[0]));
  assert.equal(back.a.slice(1), [Number.POSITIVE_INFINITY, -Infinity, 1.5]);
  assert.instance(back.f32, Float32Array);
  assert.equal(Array.from(back.f32), Array.from(f32));
  assert.instance(back.u32, Uint32Array);
  assert.is(decodeJson(encodeJson(undefined)), null);
});

test('a page that imports node:* does not bundle, and the error names the importer', async () => {
  const entry = join(scratch, 'bad-page.ts');
  writeFileSync(entry, "import { readFileSync } from 'node:fs';\nconsole.log(readFileSync);\n");
  const outdir = join(scratch, 'bad-out');
  mkdirSync(outdir);
  try {
    await bundlePage({ entry, outdir });
    assert.unreachable('bundled a page importing node:fs');
  } catch (error) {
    assert.match((error as Error).message, /bundling the page failed/);
    assert.match(
      (error as Error).message,
      /'node:fs' is a Node module: .*bad-page\.ts cannot run in the page/,
    );
  }
});

test('the page bundle is reused while its inputs are unchanged, rebuilt when one changes', async () => {
  const cacheDir = join(scratch, 'cache');
  const entry = join(scratch, 'cached-page.ts');
  const helper = join(scratch, 'cached-helper.ts');
  writeFileSync(helper, 'export const answer = 41;\n');
  writeFileSync(entry, "import { answer } from './cached-helper.ts';\nconsole.log(answer);\n");
  // Inputs edited within a second of a build are not cached (they may have changed mid-build).
  const past = new Date(Date.now() - 10_000);
  for (const file of [entry, helper]) utimesSync(file, past, past);
  const first = await cachedPageBundle({ entry, cacheDir });
  assert.is(first.cached, false);
  assert.is(first.temporary, false);
  assert.ok(first.inputs.includes(helper), first.inputs.join());
  const again = await cachedPageBundle({ entry, cacheDir });
  assert.is(again.cached, true);
  assert.is(again.outdir, first.outdir);
  assert.match(readFileSync(join(again.outdir, 'page.js'), 'utf8'), /41/);
  writeFileSync(helper, 'export const answer = 42;\n');
  utimesSync(helper, past, past);
  const changed = await cachedPageBundle({ entry, cacheDir });
  assert.is(changed.cached, false);
  assert.is.not(changed.outdir, first.outdir);
  assert.match(readFileSync(join(changed.outdir, 'page.js'), 'utf8'), /42/);
  assert.ok(existsSync(first.outdir), 'older entries stay for browsers that may still serve them');
});

test.run();
