// `run --shard 0/3, 1/3, 2/3` then `merge` through the real CLI equals one unsharded run: the same
// files, the same rows in the same order, training rows and weights bit for bit, measurements to f32
// rounding.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fromCsv, type ResultRow } from '../src/experiments/results.ts';
import { decodeSafetensors } from '../src/models/weights.ts';
import { runCli } from './helpers/cli.ts';
import { deepLinearConfig } from './helpers/configs.ts';

const test = suite('reliability: shards merged equal one run');

const NAME = 'sharded';
const EVALUATION_SAMPLES = 48;
// Three groups × two seeds = six replicas, two per shard: shard 0 trains 'anisotropic', shard 1
// 'intermediate', shard 2 'isotropic' — the reference of both others, so merge must divide across shards.
const CONFIG = deepLinearConfig({
  name: NAME,
  description: 'three noise geometries in three shards',
  steps: 300,
  measure: {
    every: 60,
    evaluationSamples: EVALUATION_SAMPLES,
    metrics: ['loss', 'sharpness', 'lambdaMax', 'fluctuation', 'layerCondition'],
  },
  seeds: 2,
  seed: 5,
  groups: [
    { name: 'anisotropic', reference: 'isotropic', value: 0.3 },
    { name: 'intermediate', reference: 'isotropic', value: 0.6, overrides: { data: { noiseStd: [1, 0.6] } } },
    { name: 'isotropic', reference: 'isotropic', value: 1, overrides: { data: { noiseStd: [1, 1] } } },
  ],
  panels: [
    { name: 'sharpness', kind: 'timeseries', metrics: ['sharpness', 'lambdaMax'], title: 'T' },
    { name: 'relative', kind: 'final-vs-group', metrics: ['sharpness'], relative: true, title: 'T / T(iso)' },
  ],
});

const cli = (args: string[], cwd: string) => runCli(args, { cwd });

/**
 * Curvature and fluctuation are f32 sums over the evaluation rows of depth-2 products, evaluated by
 * matmul variants that may differ with the shard's replica count: by Higham's γₙ bound each differs
 * by at most ≈ n·u relative (u = 2⁻²⁴, n = evaluation rows + layers), twice over for HVPs
 * (forward and backward), and relativeSharpness divides two of them.
 */
const U = 2 ** -24;
const MEASURE_TOLERANCE = 2 * 2 * (EVALUATION_SAMPLES + 2) * U;

test('shards 0/3, 1/3, 2/3 merged give the files of a single run', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-shard-'));
  try {
    writeFileSync(join(work, 'c.json'), JSON.stringify(CONFIG));
    for (const index of [0, 1, 2]) {
      const shard = await cli(['run', 'c.json', '--out', 'sweep', '--shard', `${index}/3`], work);
      assert.is(shard.code, 0, shard.stderr);
      const dir = join(work, 'sweep', NAME, `shard-${index}-of-3`);
      assert.equal(readdirSync(dir).sort(), [
        'config.json',
        'groups.csv',
        'results.csv',
        'results.json',
        'weights.safetensors',
      ]);
      const rows = fromCsv(readFileSync(join(dir, 'results.csv'), 'utf8'));
      // Each shard trains only its own group's two replicas (plus that group's theory rows).
      const expectedGroup = CONFIG.groups[index].name;
      assert.ok(
        rows.every((r) => r.group === expectedGroup),
        `shard ${index} holds only ${expectedGroup}`,
      );
      assert.ok(rows.every((r) => r.metric !== 'relativeSharpness'));
      assert.is(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).shard.index, index);
    }
    // Merging before all shards are there would be refused; now all three are.
    const merged = await cli(['merge', 'sweep'], work);
    assert.is(merged.code, 0, merged.stderr);
    const single = await cli(['run', 'c.json', '--out', 'single'], work);
    assert.is(single.code, 0, single.stderr);

    const mergedDir = join(work, 'sweep', NAME);
    const singleDir = join(work, 'single', NAME);
    const files = (dir: string) =>
      readdirSync(dir)
        .filter((f) => !f.startsWith('shard-'))
        .sort();
    assert.equal(files(mergedDir), files(singleDir));
    assert.ok(existsSync(join(work, 'sweep', 'index.html')));
    assert.is(
      readFileSync(join(mergedDir, 'config.json'), 'utf8'),
      readFileSync(join(singleDir, 'config.json'), 'utf8'),
    );

    const a = fromCsv(readFileSync(join(mergedDir, 'results.csv'), 'utf8'));
    const b = fromCsv(readFileSync(join(singleDir, 'results.csv'), 'utf8'));
    assert.is(a.length, b.length, 'row count');
    const key = (r: ResultRow) => `${r.group}|${r.seed}|${r.step}|${r.metric}`;
    let measured = 0;
    let relative = 0;
    for (let i = 0; i < a.length; i++) {
      assert.is(key(a[i]), key(b[i]), `row ${i} in canonical order`);
      const { metric, seed } = a[i];
      if (metric === 'relativeSharpness') relative++;
      // Replicas train bit-identically in any shard (same counter-keyed streams, per-replica fused
      // kernel): their loss and weights (layer condition numbers) match exactly; so do theory rows.
      if (seed === 'theory' || metric === 'loss' || metric.startsWith('layerCondition')) {
        assert.is(a[i].value, b[i].value, key(a[i]));
        continue;
      }
      measured++;
      const tolerance = (metric === 'relativeSharpness' ? 2 : 1) * MEASURE_TOLERANCE;
      const error = Math.abs(a[i].value - b[i].value) / Math.abs(b[i].value);
      assert.ok(error <= tolerance, `${key(a[i])}: ${a[i].value} vs ${b[i].value} (relative ${error})`);
    }
    // relativeSharpness for every replica of all three groups at each of the 6 log points (step 0, the
    // initialisation, included) (+ theory).
    assert.is(relative, 3 * 2 * 6 + 3 * 2);
    assert.ok(measured > 0);
    // The merged weights.safetensors holds every shard's replicas: the single run's tensors, bit for bit.
    const tensors = (dir: string) =>
      decodeSafetensors(readFileSync(join(dir, 'weights.safetensors')), dir)
        .map((t) => `${t.name} [${t.shape}] ${Array.from(t.values)}`)
        .sort();
    const unsharded = tensors(singleDir);
    assert.is(unsharded.length, 3 * 2 * 2, 'groups × seeds × layers');
    assert.equal(tensors(mergedDir), unsharded);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
