import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fromCsv } from '../src/experiments/results.ts';
import { deepLinearConfig } from './helpers/configs.ts';

const test = suite('run --backend browser: same experiment, same results as the node backend');

const CONFIG = deepLinearConfig({
  name: 'parity',
  description: 'the same seeded experiment on both hosts',
  steps: 300,
  measure: { every: 100, evaluationSamples: 64, metrics: ['loss', 'sharpness', 'lambdaMax', 'fluctuation'] },
  seeds: 2,
  seed: 3,
  groups: [{ name: 'anisotropic' }, { name: 'isotropic', overrides: { data: { noiseStd: [1, 1] } } }],
  panels: [
    { name: 'curvature', kind: 'timeseries', metrics: ['sharpness', 'fluctuation'], title: 'T and S' },
  ],
});

const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-parity-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function run(backend: 'node' | 'browser'): ReturnType<typeof fromCsv> {
  const out = join(dir, backend);
  const result = spawnSync(
    process.execPath,
    [
      'runner/bin.mjs',
      'run',
      join(dir, 'config.json'),
      '--out',
      out,
      ...(backend === 'browser' ? ['--backend', 'browser'] : []),
    ],
    {
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  assert.is(result.status, 0, `${backend} run failed:\n${result.stderr}`);
  assert.match(result.stdout, /parity: \d+ rows/);
  return fromCsv(readFileSync(join(out, 'parity', 'results.csv'), 'utf8'));
}

test('results.csv agrees within 1e-4 relative, row for row, and the same files are written', () => {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
  const node = run('node');
  const browser = run('browser');
  assert.is(browser.length, node.length);
  const key = (r: (typeof node)[number]) => `${r.group}|${r.seed}|${r.step}|${r.metric}`;
  const expected = new Map(node.map((r) => [key(r), r.value]));
  for (const row of browser) {
    const value = expected.get(key(row));
    assert.ok(value !== undefined, `row ${key(row)} only in the browser run`);
    assert.ok(
      Math.abs(row.value - value) <= 1e-4 * Math.abs(value),
      `${key(row)}: node ${value}, browser ${row.value}`,
    );
  }
  for (const file of ['config.json', 'results.json', 'curvature.svg', 'report.html']) {
    readFileSync(join(dir, 'browser', 'parity', file));
  }
  const results = JSON.parse(readFileSync(join(dir, 'browser', 'parity', 'results.json'), 'utf8'));
  assert.match(results.adapter, /puppeteer/, 'the report names the browser host');
});

test.run();
