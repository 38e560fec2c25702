/**
 * Every kernel whose launch splits a 1-D index space into a 2-D grid (src/kernels/dispatch.ts grid1d,
 * matmul's flat grid) run just past one row of maxComputeWorkgroupsPerDimension workgroups, so the
 * second dispatch row is used: a row stride in the wrong unit leaves elements of that row unwritten
 * or written twice. Each test checks the elements after the first row (and a few before) against a
 * CPU value. Sizes are the smallest that cross the row limit, to keep the file quick.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tape } from '../src/autodiff/tape.ts';
import { groupSum, replicaDots } from '../src/kernels/curvature-sums.ts';
import { binary } from '../src/kernels/elementwise.ts';
import { gatherRows } from '../src/kernels/gather.ts';
import { KrylovBasis } from '../src/kernels/lanczos.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { philoxBits, philoxNormal, toUnit } from '../src/kernels/philox.ts';
import { reduce } from '../src/kernels/reduce.ts';
import { randomIntegers, randomNormal, randomUniform } from '../src/kernels/rng.ts';
import { stridedCopy, unitVectors } from '../src/kernels/vectors.ts';
import type { Engine } from '../src/tensor/engine.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('2-D dispatch grids past one row');
test.after(destroyTestEngine);

/** Smallest invocation count that needs a second dispatch row for this workgroup size. */
async function pastOneRow(workgroupSize: number): Promise<{ engine: Engine; count: number }> {
  const engine = await testEngine();
  return { engine, count: engine.limits.maxComputeWorkgroupsPerDimension * workgroupSize + 1 };
}

/** Indices to check: a few at the start, around the row boundary, and the tail (the second row). */
function probes(count: number, rowLength: number): number[] {
  const set = new Set<number>();
  for (let i = 0; i < 64; i++) {
    set.add(i);
    set.add(Math.min(count - 1, Math.max(0, rowLength - 32 + i)));
    set.add(count - 1 - i);
  }
  // An even spread over the second half (where the second row lies).
  for (let k = 0; k < 4096; k++) set.add(Math.floor(count / 2 + (k * (count / 2 - 1)) / 4096));
  return [...set].filter((i) => i >= 0 && i < count).sort((a, b) => a - b);
}

/** Half the elements of a grid just past one row lie after the first row's end. */
const ROW = (count: number) => Math.floor(count / 2);

test('rng: uniform, normal and integer draws past one row equal the CPU Philox stream', async () => {
  // One invocation per block of 4 values, 64 per workgroup: replicas of 4096 values (1024 blocks).
  const { engine, count: blocks } = await pastOneRow(64);
  const n = 4096;
  const batch = Math.ceil(blocks / (n / 4));
  const position = { seed: 77, stream: 3, counter: 12 };
  const checked = [0, 1, batch >> 1, batch - 2, batch - 1];
  const uniform = await randomUniform(engine, [n], position, { batch }).read();
  for (const replica of checked) {
    const bits = philoxBits({ ...position, replica }, n);
    for (let i = 0; i < n; i++)
      if (uniform[replica * n + i] !== Math.fround(toUnit(bits[i])))
        assert.unreachable(`uniform replica ${replica} element ${i}: ${uniform[replica * n + i]}`);
  }
  const normal = await randomNormal(engine, [n], position, { batch }).read();
  // The bound of kernels-rng.test.ts: WGSL's sin/cos to 2^-11 absolute, log to a few ulp, r < 6.
  const normalBound = 6 * (2 ** -11 + 2 ** -20);
  for (const replica of checked) {
    const expected = philoxNormal({ ...position, replica }, n);
    for (let i = 0; i < n; i++) {
      if (!(Math.abs(normal[replica * n + i] - expected[i]) < normalBound))
        assert.unreachable(
          `normal replica ${replica} element ${i}: ${normal[replica * n + i]} vs ${expected[i]}`,
        );
    }
  }
  const bound = 1000;
  const integers = await randomIntegers(engine, [n], bound, position, { batch }).read();
  for (const replica of checked) {
    const bits = philoxBits({ ...position, replica }, n);
    for (let i = 0; i < n; i++) {
      const expected = Math.floor((bits[i] * bound) / 2 ** 32);
      if (integers[replica * n + i] !== expected)
        assert.unreachable(
          `integer replica ${replica} element ${i}: ${integers[replica * n + i]} vs ${expected}`,
        );
    }
  }
});

test('elementwise: x + 2y past one row', async () => {
  const { engine, count } = await pastOneRow(256);
  // y is broadcast from a short vector of prime length, so a wrong index shows as a wrong value.
  const period = 251;
  const y = engine.tensor(
    Float32Array.from({ length: period }, (_, i) => i),
    [period],
  );
  const rows = Math.ceil(count / period);
  const xRows = engine.tensor(
    Float32Array.from({ length: rows * period }, (_, i) => i % 1009),
    [rows, period],
  );
  const out = await binary(engine, 'add', xRows, y, { beta: 2 }).read();
  for (const i of probes(rows * period, ROW(count))) {
    const expected = (i % 1009) + 2 * (i % period);
    if (out[i] !== expected) assert.unreachable(`element ${i}: ${out[i]} vs ${expected}`);
  }
});

test('gather: rows past one row of invocations (one element per invocation)', async () => {
  const { engine, count } = await pastOneRow(64);
  const srcRows = 1000;
  const rowLength = 17;
  const src = engine.tensor(
    Float32Array.from({ length: srcRows * rowLength }, (_, i) => i),
    [srcRows, rowLength],
  );
  const picks = Math.ceil(count / rowLength);
  const index = engine.tensor(
    Uint32Array.from({ length: picks }, (_, r) => (r * 7919) % srcRows),
    [picks],
    { dtype: 'u32' },
  );
  const out = await gatherRows(engine, src, index, { chunk: 1 }).read();
  for (const i of probes(picks * rowLength, ROW(count))) {
    const r = Math.floor(i / rowLength);
    const expected = ((r * 7919) % srcRows) * rowLength + (i % rowLength);
    if (out[i] !== expected) assert.unreachable(`element ${i}: ${out[i]} vs ${expected}`);
  }
});

test('reduce (rows): one invocation per output, past one row', async () => {
  const { engine, count } = await pastOneRow(64);
  const x = engine.tensor(
    Float32Array.from({ length: 2 * count }, (_, i) => i % 4099),
    [count, 2],
  );
  const out = await reduce(engine, 'sum', x, { axis: -1, strategy: 'rows' }).read();
  for (const r of probes(count, ROW(count))) {
    const expected = ((2 * r) % 4099) + ((2 * r + 1) % 4099);
    if (out[r] !== expected) assert.unreachable(`output ${r}: ${out[r]} vs ${expected}`);
  }
});

test('reduce (tree): one workgroup per output, past one row of workgroups', async () => {
  const { engine, count } = await pastOneRow(1);
  const x = engine.tensor(
    Float32Array.from({ length: 2 * count }, (_, i) => i % 4099),
    [count, 2],
  );
  const out = await reduce(engine, 'sum', x, { axis: -1, strategy: 'tree' }).read();
  for (const r of probes(count, ROW(count))) {
    const expected = ((2 * r) % 4099) + ((2 * r + 1) % 4099);
    if (out[r] !== expected) assert.unreachable(`output ${r}: ${out[r]} vs ${expected}`);
  }
});

test('matmul (flat4x4): one block per replica, past one row of workgroups', async () => {
  // flat4x4 runs 64-wide workgroups; 1×1·1×1 products make one block per replica.
  const { engine, count: batch } = await pastOneRow(64);
  const a = engine.tensor(
    Float32Array.from({ length: batch }, (_, i) => i % 2003),
    [1, 1],
    { batch },
  );
  const b = engine.tensor([3], [1, 1]);
  const out = await matmul(engine, a, b, { variant: 'flat4x4' }).read();
  for (const r of probes(batch, ROW(batch))) {
    const expected = 3 * (r % 2003);
    if (out[r] !== expected) assert.unreachable(`replica ${r}: ${out[r]} vs ${expected}`);
  }
});

test('tape: softmax row kernel and the sum of gradient contributions, past one row', async () => {
  const { engine, count: rows } = await pastOneRow(64);
  const tape = new Tape(engine);
  // Rows (0, t): softmax = (1, e^t) / (1 + e^t), with t cycling through a few values.
  const logits = Float32Array.from({ length: 2 * rows }, (_, i) => (i % 2 === 0 ? 0 : ((i >> 1) % 5) - 2));
  const x = tape.param(engine.tensor(logits, [rows, 2]));
  const s = await tape.softmax(x).value.read();
  for (const r of probes(rows, ROW(rows))) {
    const t = (r % 5) - 2;
    const expected = Math.exp(t) / (1 + Math.exp(t));
    if (Math.abs(s[2 * r + 1] - expected) > 1e-6)
      assert.unreachable(`row ${r}: ${s[2 * r + 1]} vs ${expected}`);
  }
  tape.dispose();
  // x + x + x sends three same-shaped gradients to x: one sum_n launch of 256-wide workgroups.
  const { count } = await pastOneRow(256);
  const sumTape = new Tape(engine);
  const v = sumTape.param(engine.tensor(new Float32Array(count), [count]));
  const y = sumTape.add(sumTape.add(v, v), v);
  const seed = sumTape.constant(
    engine.tensor(
      Float32Array.from({ length: count }, (_, i) => i % 509),
      [count],
    ),
  );
  const [gradient] = sumTape.grad(y, [v], seed);
  const g = await gradient.value.read();
  for (const i of probes(count, ROW(count))) {
    const expected = 3 * (i % 509);
    if (g[i] !== expected) assert.unreachable(`element ${i}: ${g[i]} vs ${expected}`);
  }
  sumTape.dispose();
});

test('curvature vectors: strided copy and unit vectors past one row', async () => {
  const { engine, count } = await pastOneRow(256);
  const length = 251;
  const batch = Math.ceil(count / length);
  const x = engine.tensor(
    Float32Array.from({ length: 3 * length }, (_, i) => i),
    [length],
    { batch: 3 },
  );
  const out = engine.empty([length], { batch });
  const copied = await stridedCopy(engine, x, out, { length, batch, xMod: 3, alpha: 2 }).read();
  for (const i of probes(length * batch, ROW(count))) {
    const b = Math.floor(i / length);
    const expected = 2 * ((b % 3) * length + (i % length));
    if (copied[i] !== expected) assert.unreachable(`element ${i}: ${copied[i]} vs ${expected}`);
  }
  const n = 4099;
  const replicas = Math.ceil(count / n);
  const units = await unitVectors(engine, n, replicas, 7, 5).read();
  for (const i of probes(n * replicas, ROW(count))) {
    const b = Math.floor(i / n);
    const expected = i % n === 5 + (b % 7) ? 1 : 0;
    if (units[i] !== expected) assert.unreachable(`element ${i}: ${units[i]} vs ${expected}`);
  }
});

test('Krylov basis: projection (rows) and subtraction past one row', async () => {
  const { engine, count } = await pastOneRow(64);
  // Vectors of length 1, one basis row: coef = q·w, then w − q·coef = w(1 − q²).
  const basis = new KrylovBasis(engine, 1, 1, count);
  engine.write(
    basis.rows,
    Float32Array.from({ length: count }, (_, b) => (b % 3) - 1),
  );
  const w = engine.tensor(
    Float32Array.from({ length: count }, (_, b) => (b % 11) + 1),
    [1],
    { batch: count },
  );
  basis.project(w, 1, 0);
  const coef = await basis.coef.read();
  basis.subtract(w, 1, 0);
  const rest = await w.read();
  for (const b of probes(count, ROW(count))) {
    const q = (b % 3) - 1;
    const value = (b % 11) + 1;
    if (coef[2 * b] !== q * value) assert.unreachable(`coef of replica ${b}: ${coef[2 * b]} vs ${q * value}`);
    if (rest[b] !== value * (1 - q * q))
      assert.unreachable(`w of replica ${b}: ${rest[b]} vs ${value * (1 - q * q)}`);
  }
});

test('curvature sums: replica dots and group sums past one row', async () => {
  const { engine, count } = await pastOneRow(64);
  const x = engine.tensor(
    Float32Array.from({ length: count }, (_, b) => b % 13),
    [1],
    { batch: count },
  );
  const out = engine.empty([1], { batch: count });
  const dots = await replicaDots(engine, x, x, out, { length: 1, batch: count }).read();
  const sums = await groupSum(engine, x, engine.empty([1], { batch: count }), {
    length: 1,
    groups: 1,
    replicas: count,
    alpha: 2,
  }).read();
  for (const b of probes(count, ROW(count))) {
    const v = b % 13;
    if (dots[b] !== v * v) assert.unreachable(`dot of replica ${b}: ${dots[b]} vs ${v * v}`);
    if (sums[b] !== 2 * v) assert.unreachable(`group sum of replica ${b}: ${sums[b]} vs ${2 * v}`);
  }
});

test.run();
