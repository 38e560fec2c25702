import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileAtomic } from '../runner/node/profile.ts';
import { loadNodeTuning } from '../runner/node/tune-cache.ts';
import {
  checkMatmulConfig,
  MATMUL_VARIANTS,
  type MatmulConfig,
  matmul,
  matmulConfig,
  matmulTuning,
  matmulVariant,
  setMatmulTuning,
} from '../src/kernels/matmul.ts';
import { configLabel, type ShapeClass, tuneMatmul, verifiedWinners } from '../src/kernels/matmul-tuner.ts';
import { adapterKey, mergeTuneCache, type TunedMatmul } from '../src/tune/cache.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { assertClose, dotTolerance, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('tune');
const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-tune-'));
test.after(async () => {
  await destroyTestEngine();
  rmSync(dir, { recursive: true, force: true });
});

const TINY: ShapeClass[] = [
  { name: 'tiny-a', shape: [1, 33, 17, 9], description: 'odd sizes, one replica' },
  { name: 'tiny-b', shape: [6, 8, 8, 8], description: 'six small replicas' },
];
/** The wrong candidate: runs a correct kernel with alpha off by 2⁻⁸, far beyond the f32 bound. */
const WRONG: MatmulConfig = { variant: 'tile4x4', workgroup: [2, 2] };
const same = (x: MatmulConfig, y: MatmulConfig) => configLabel(x) === configLabel(y);

/** float64 C = A·B of the matmul contract, and Σ|aᵢbᵢ| per entry, for the 2(k+2)·u bound. */
function reference([batch, M, K, N]: readonly number[], a: Float32Array, b: Float32Array) {
  const out = new Float64Array(batch * M * N);
  const magnitude = new Float64Array(out.length);
  for (let r = 0; r < batch; r++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let sum = 0;
        let abs = 0;
        for (let k = 0; k < K; k++) {
          const p = a[(r * M + i) * K + k] * b[(r * K + k) * N + j];
          sum += p;
          abs += Math.abs(p);
        }
        out[(r * M + i) * N + j] = sum;
        magnitude[(r * M + i) * N + j] = abs;
      }
  return { out, magnitude };
}

let winners: TunedMatmul<MatmulConfig>[] = [];

test('tune: every candidate is verified before timing; a wrong one is rejected and never cached', async () => {
  const engine = await testEngine();
  const tried: string[] = [];
  const outcomes = await tuneMatmul(engine, {
    shapes: TINY,
    budgetSeconds: 60,
    sampleSeconds: 0.02,
    candidates: (e, shape) => [
      matmulVariant(e, shape[1], shape[3], undefined, shape[0]),
      WRONG,
      { variant: 'tile16x8', workgroup: [1, 2] },
      { variant: 'flat4x4', workgroup: [16, 1] },
    ],
    runCandidate: (e, config, a, b) => {
      tried.push(configLabel(config));
      const alpha = same(config, WRONG) ? 1 + 2 ** -8 : 1;
      return matmul(e, a, b, { variant: config.variant, workgroup: config.workgroup, alpha });
    },
  });
  assert.is(outcomes.length, 2);
  for (const o of outcomes) {
    assert.is(o.skipped, 0, 'the budget covered every candidate');
    assert.is(
      o.candidates.length,
      o.candidates.filter((c) => Number.isFinite(c.errorRatio) || c.error).length,
    );
    const wrong = o.candidates.find((c) => same(c.config, WRONG));
    assert.ok(wrong, 'the wrong candidate was tried');
    assert.ok(wrong.errorRatio > 1 && wrong.error, `rejected: ${wrong.error}`);
    assert.is(wrong.gflops, undefined, 'a rejected candidate is never timed');
    for (const c of o.candidates.filter((c) => !same(c.config, WRONG))) {
      assert.ok(c.errorRatio <= 1, `${configLabel(c.config)} within the f32 bound (ratio ${c.errorRatio})`);
      assert.ok(c.gflops !== undefined && c.gflops > 0, `${configLabel(c.config)} timed`);
    }
    assert.not.ok(same(o.tuned, WRONG), 'the wrong candidate does not win');
    assert.ok(o.tunedGflops >= o.defaultGflops, 'the winner survived the side-by-side timing');
  }
  // The wrong candidate ran exactly once per class: its verification launch, never a timed one.
  assert.is(tried.filter((t) => t === configLabel(WRONG)).length, 2);
  winners = verifiedWinners(outcomes);
  assert.is(winners.length, 2);
  for (const w of winners) assert.not.ok(same(w.tuned, WRONG));
});

test('tune: a shape class whose candidates are all wrong is not cached at all', async () => {
  const engine = await testEngine();
  const outcomes = await tuneMatmul(engine, {
    shapes: [TINY[0]],
    budgetSeconds: 30,
    sampleSeconds: 0.02,
    candidates: () => [WRONG],
    runCandidate: (e, _config, a, b) => matmul(e, a, b, { alpha: 1 + 2 ** -8 }),
  });
  assert.ok(outcomes[0].candidates.every((c) => c.gflops === undefined && c.error));
  assert.equal(verifiedWinners(outcomes), []);
});

test('cache: round-trips through the file, merges per adapter and shape class', async () => {
  const engine = await testEngine();
  assert.ok(winners.length > 0, 'the tune test ran first');
  const info = engine.context.adapterInfo;
  const path = join(dir, 'nested', 'tune.json');
  const file = mergeTuneCache(undefined, info, winners, new Date(0), checkMatmulConfig);
  writeFileAtomic(path, JSON.stringify(file));
  const lines: string[] = [];
  const tuning = loadNodeTuning(engine.context, path, (l) => lines.push(l));
  assert.equal(lines, [], 'no warning for a valid cache');
  assert.ok(tuning);
  assert.equal(JSON.parse(JSON.stringify(tuning.entries)), JSON.parse(JSON.stringify(winners)));
  // A later tune of one class replaces that class and keeps the other; another adapter's entry stays.
  const foreign = { ...info, description: 'another driver 1.0' };
  const merged = mergeTuneCache(
    mergeTuneCache(file, foreign, winners, new Date(0), checkMatmulConfig),
    info,
    [{ ...winners[0], tunedGflops: 123 }],
    new Date(0),
    checkMatmulConfig,
  );
  assert.is(Object.keys(merged.adapters).length, 2);
  const mine = merged.adapters[adapterKey(info)].matmul;
  assert.equal(mine.map((e) => e.shapeClass).sort(), winners.map((w) => w.shapeClass).sort());
  assert.is(mine.find((e) => e.shapeClass === winners[0].shapeClass)?.tunedGflops, 123);
});

/** A hand-written cache whose tuned config differs from the default for [1, 33, 17, 9]. */
function handCache(engine: Awaited<ReturnType<typeof testEngine>>, tuned: MatmulConfig) {
  const byDefault = matmulVariant(engine, 33, 9, undefined, 1);
  return mergeTuneCache(
    undefined,
    engine.context.adapterInfo,
    [
      {
        shapeClass: 'tiny-a',
        shape: [1, 33, 17, 9],
        default: byDefault,
        tuned,
        defaultGflops: 1,
        tunedGflops: 2,
        clock: 'gpu-timestamp',
      },
    ],
    new Date(0),
    checkMatmulConfig,
  );
}

test('engine: matmul dispatch uses the cached config near its shape class, defaults elsewhere; results match float64', async () => {
  const engine = await testEngine();
  const tuned: MatmulConfig = { variant: 'tile4x4', workgroup: [2, 4] };
  const byDefault = matmulVariant(engine, 33, 9, undefined, 1);
  assert.not.ok(same(tuned, byDefault), 'the hand-tuned config is not the default');
  const path = join(dir, 'hand.json');
  writeFileSync(path, JSON.stringify(handCache(engine, tuned)));
  const previous = matmulTuning(engine);
  setMatmulTuning(
    engine,
    loadNodeTuning(engine.context, path, () => assert.unreachable('warning')),
  );
  try {
    assert.equal(matmulConfig(engine, 1, 33, 17, 9), { ...tuned, source: 'tuned' });
    assert.equal(matmulConfig(engine, 1, 40, 20, 12), { ...tuned, source: 'tuned' }, 'within 2× in each dim');
    assert.is(matmulConfig(engine, 1, 33, 17, 40).source, 'default', 'N more than 2× away');
    assert.is(matmulConfig(engine, 1, 33, 17, 9, { variant: 'flat4x4' }).source, 'options', 'options win');

    const random = seededRandom(5);
    const aData = Float32Array.from(randomArray(random, 33 * 17));
    const bData = Float32Array.from(randomArray(random, 17 * 9));
    const a = engine.tensor(aData, [33, 17]);
    const b = engine.tensor(bData, [17, 9]);
    engine.profiler.reset();
    engine.profiler.start();
    const c = matmul(engine, a, b);
    const got = await c.read();
    engine.profiler.stop();
    await engine.profiler.collect();
    const [event] = engine.profiler.events;
    engine.profiler.reset();
    assert.is(event.shader, MATMUL_VARIANTS[tuned.variant].shader, 'the tuned kernel ran');
    assert.is(event.pipeline, 'matmul[WG_X=2,WG_Y=4]', 'with the tuned workgroup');
    assert.equal([...event.workgroups], [Math.ceil(9 / (4 * 2)), Math.ceil(33 / (4 * 4)), 1]);
    const { out, magnitude } = reference([1, 33, 17, 9], aData, bData);
    assertClose(got, out, (i) => dotTolerance(17, magnitude[i]), 'tuned matmul vs float64');
    for (const t of [a, b, c]) t.dispose();
  } finally {
    setMatmulTuning(engine, previous);
  }
});

test('cache: corrupt, invalid or foreign caches are ignored with one warning line, never a throw', async () => {
  const engine = await testEngine();
  const valid = handCache(engine, { variant: 'tile4x4', workgroup: [2, 4] });
  const key = adapterKey(engine.context.adapterInfo);
  const variants: [string, string, RegExp][] = [
    ['truncated JSON', JSON.stringify(valid).slice(0, 40), /could not be read/],
    ['wrong version', JSON.stringify({ ...valid, version: 99 }), /version/],
    [
      'unknown variant',
      JSON.stringify(valid).replace('"tile4x4"', '"tile99"'),
      /unknown matmul variant "tile99"/,
    ],
    [
      'workgroup over the device limits',
      JSON.stringify(valid)
        .replace('[\n', '[')
        .replace(/"workgroup":\[2,4\]/, '"workgroup":[4096,4096]'),
      /exceeds this device's workgroup limits/,
    ],
    [
      'another adapter only',
      JSON.stringify({
        version: 1,
        adapters: {
          [key.replace(/[^|]*$/, ' metal')]: {
            ...valid.adapters[key],
            adapter: { ...valid.adapters[key].adapter, backend: 'metal' },
          },
        },
      }),
      /no entry for this adapter/,
    ],
    ['not an object', '[1, 2, 3]', /expected a JSON object/],
  ];
  for (const [what, text, reason] of variants) {
    const path = join(dir, 'bad.json');
    writeFileSync(path, text);
    const lines: string[] = [];
    const tuning = loadNodeTuning(engine.context, path, (l) => lines.push(l));
    assert.is(tuning, undefined, what);
    assert.is(lines.length, 1, `${what}: one warning line`);
    assert.match(lines[0], /ignoring tuning cache/, what);
    assert.match(lines[0], reason, `${what}: ${lines[0]}`);
    assert.not.match(lines[0], /\n/);
  }
  assert.is(
    loadNodeTuning(engine.context, join(dir, 'absent.json'), () => assert.unreachable()),
    undefined,
    'a missing file is silence',
  );
});

test('CLI: tune --shapes batched-tiny writes a valid cache for this adapter and prints the table', () => {
  const path = join(dir, 'cli', 'tune.json');
  const result = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'runner/cli.ts',
      'tune',
      '--shapes',
      'batched-tiny',
      '--budget',
      '3',
      '--cache',
      path,
    ],
    { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } },
  );
  assert.is(result.status, 0, result.stderr);
  assert.match(
    result.stdout,
    /shape class\s+\[b, M, K, N\]\s+default\s+GFLOP\/s\s+tuned\s+GFLOP\/s\s+speedup/,
  );
  assert.match(result.stdout, /batched-tiny\s+\[64, 10, 2, 2\]/);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.is(file.version, 1);
  const entries = Object.values(file.adapters) as { matmul: TunedMatmul[] }[];
  assert.is(entries.length, 1);
  assert.equal(
    entries[0].matmul.map((e) => e.shapeClass),
    ['batched-tiny'],
  );
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'runner/cli.ts', 'tune', '--shapes', 'nope'], {
    encoding: 'utf8',
  });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--shapes.*unknown shape class 'nope'/);
});

test.run();
