import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { philox4x32, philoxBits, philoxNormal, philoxUniform, toUnit } from '../src/kernels/philox.ts';
import { randomIntegers, randomNormal, randomRademacher, randomUniform } from '../src/kernels/rng.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('counter-based RNG');
test.after(destroyTestEngine);

/** Two-sample Kolmogorov–Smirnov statistic. */
function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i], y[j]);
    while (i < x.length && x[i] <= v) i++;
    while (j < y.length && y[j] <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** Critical value of the two-sample KS statistic at level alpha (asymptotic). */
function ksCritical(n: number, m: number, alpha: number): number {
  return Math.sqrt(-0.5 * Math.log(alpha / 2)) * Math.sqrt((n + m) / (n * m));
}

function moments(values: ArrayLike<number>): { mean: number; variance: number } {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i];
  mean /= values.length;
  let variance = 0;
  for (let i = 0; i < values.length; i++) variance += (values[i] - mean) ** 2;
  return { mean, variance: variance / (values.length - 1) };
}

const N = 40_000;
const ALPHA = 1e-4;

test('Philox-4×32-10 CPU reference matches the published known-answer vectors', () => {
  // Random123 kat_vectors: philox4x32_10 with zero and all-ones counter/key.
  assert.equal(philox4x32([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  assert.equal(
    philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]),
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  );
  assert.equal(
    philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  );
});

test('GPU uniform bits equal the CPU reference exactly, for every replica and counter', async () => {
  const engine = await testEngine();
  const position = { seed: 1234, stream: 7, counter: 2 ** 33 + 5 };
  const t = randomUniform(engine, [1001], position, { batch: 3 });
  const got = await t.read();
  for (let replica = 0; replica < 3; replica++) {
    const expected = philoxUniform({ ...position, replica }, 1001);
    for (let i = 0; i < 1001; i++)
      assert.is(got[replica * 1001 + i], Math.fround(expected[i]), `replica ${replica} element ${i}`);
  }
  t.dispose();
});

test('uniform: moments and KS against an independent CPU Philox sample', async () => {
  const engine = await testEngine();
  const t = randomUniform(engine, [N], { seed: 1, stream: 0, counter: 0 }, { low: -1, high: 3 });
  const gpu = await t.read();
  const { mean, variance } = moments(gpu);
  // U(-1, 3): mean 1, variance 16/12; 5 standard errors.
  assert.ok(Math.abs(mean - 1) < 5 * Math.sqrt(16 / 12 / N), `mean ${mean}`);
  assert.ok(
    Math.abs(variance - 16 / 12) < 5 * Math.sqrt((16 ** 2 / 80 - (16 / 12) ** 2) / N),
    `variance ${variance}`,
  );
  const cpu = philoxUniform({ seed: 99, stream: 3, counter: 17, replica: 0 }, N, -1, 3);
  const d = ksTwoSample(gpu, cpu);
  assert.ok(d < ksCritical(N, N, ALPHA), `KS statistic ${d}`);
  t.dispose();
});

test('normal: matches the CPU Box–Muller of the same bits, moments, and KS', async () => {
  const engine = await testEngine();
  const position = { seed: 42, stream: 1, counter: 3 };
  const t = randomNormal(engine, [N], position, { mean: 2, std: 0.5 });
  const gpu = await t.read();
  const same = philoxNormal({ ...position, replica: 0 }, N, 2, 0.5);
  // WGSL bounds sin/cos on [-π, π] to 2^-11 absolute and log to a few ulp: |Δz| ≤ r·(2^-11 + 2^-20)
  // with r ≤ √(2 ln 2^24) < 6, scaled by std = 0.5.
  const bound = 0.5 * 6 * (2 ** -11 + 2 ** -20);
  for (let i = 0; i < N; i++)
    assert.ok(Math.abs(gpu[i] - same[i]) < bound, `element ${i}: ${gpu[i]} vs ${same[i]}`);
  const { mean, variance } = moments(gpu);
  assert.ok(Math.abs(mean - 2) < 5 * Math.sqrt(0.25 / N), `mean ${mean}`);
  assert.ok(Math.abs(variance - 0.25) < 5 * 0.25 * Math.sqrt(2 / N), `variance ${variance}`);
  const independent = philoxNormal({ seed: 7, stream: 9, counter: 0, replica: 0 }, N, 2, 0.5);
  const d = ksTwoSample(gpu, independent);
  assert.ok(d < ksCritical(N, N, ALPHA), `KS statistic ${d}`);
});

test('re-running the same position gives identical streams; other counters differ', async () => {
  const engine = await testEngine();
  const position = { seed: 5, stream: 2, counter: 10 };
  const a = await randomNormal(engine, [257], position, { batch: 2 }).read();
  const b = await randomNormal(engine, [257], position, { batch: 2 }).read();
  assert.equal(Array.from(a), Array.from(b));
  const c = await randomNormal(engine, [257], { ...position, counter: 11 }, { batch: 2 }).read();
  assert.not.equal(Array.from(a), Array.from(c));
  assert.not.equal(Array.from(a.slice(0, 257)), Array.from(a.slice(257)), 'replicas draw different streams');
  // A replica offset reproduces replica 1 of the full batch on its own (shards keep their streams).
  const shard = await randomNormal(engine, [257], { ...position, replicaOffset: 1 }).read();
  assert.equal(Array.from(shard), Array.from(a.slice(257)));
});

test('rademacher is ±1 with mean 0', async () => {
  const engine = await testEngine();
  const got = await randomRademacher(engine, [N], { seed: 3, stream: 0, counter: 0 }).read();
  assert.ok(got.every((v) => v === 1 || v === -1));
  const { mean } = moments(got);
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(N), `mean ${mean}`);
  const bits = philoxBits({ seed: 3, stream: 0, counter: 0, replica: 0 }, 8);
  assert.equal(
    Array.from(got.slice(0, 8)),
    Array.from(bits, (x) => (x >>> 31 === 1 ? 1 : -1)),
  );
});

test('integers are in [0, bound) and uniform (chi-square)', async () => {
  const engine = await testEngine();
  const bound = 37;
  const got = await randomIntegers(engine, [N], bound, { seed: 8, stream: 4, counter: 1 }).read();
  const counts = new Array(bound).fill(0);
  for (const v of got) {
    assert.ok(Number.isInteger(v) && v >= 0 && v < bound, `value ${v}`);
    counts[v]++;
  }
  const expected = N / bound;
  const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  // 36 degrees of freedom: the 0.9999 quantile is about 77.
  assert.ok(chi2 < 77, `chi-square ${chi2}`);
  assert.ok(toUnit(0) > 0 && toUnit(0xffffffff) < 1, 'uniform floats stay inside (0, 1)');
});

test('integers equal ⌊bits · bound / 2³²⌋ exactly (BigInt), for bounds that carry in every partial sum', async () => {
  const engine = await testEngine();
  const n = 4001;
  const position = { seed: 99, stream: 5, counter: 3 };
  const bits = philoxBits({ ...position, replica: 0 }, n);
  // Large halves make the shader's wrapped middle and low sums carry; 37 is the small case.
  for (const bound of [37, 0x8000_0001, 0xcd9e_8d57, 0xffff_ffff]) {
    const got = await randomIntegers(engine, [n], bound, position).read();
    for (let i = 0; i < n; i++) {
      const want = Number((BigInt(bits[i]) * BigInt(bound)) >> 32n);
      if (got[i] !== want) assert.unreachable(`bound ${bound}, element ${i}: ${got[i]} vs ${want}`);
    }
  }
});

test.run();
