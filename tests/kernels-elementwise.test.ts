import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accumulate, type BinaryOp, binary, fill, type UnaryOp, unary } from '../src/kernels/elementwise.ts';
import { gatherRows } from '../src/kernels/gather.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { assertClose, F32_EPS, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('elementwise and gather');
test.after(destroyTestEngine);

const f32 = (values: ArrayLike<number>) => Float32Array.from(values);

// Reference maps in float64; tolerances: exact ops a half ulp (rounding of the result), transcendental
// ones a few ulp of the result (WGSL's precision for exp/log/tanh on f32 is a few ulp plus an absolute floor).
interface UnarySpec {
  f: (x: number) => number;
  ulps: number;
  absolute?: number;
  domain?: [number, number];
  /** Size of the terms the result is computed from (cancellation makes the result itself too small). */
  magnitude?: (x: number) => number;
}

const UNARY: Record<UnaryOp, UnarySpec> = {
  affine: { f: (x) => 1.5 * x - 0.25, ulps: 2, magnitude: (x) => Math.abs(1.5 * x) + 0.25 },
  relu: { f: (x) => Math.max(x, 0), ulps: 0 },
  step: { f: (x) => (x > 0 ? 1 : 0), ulps: 0 },
  tanh: { f: Math.tanh, ulps: 8, absolute: 1e-6 },
  exp: { f: Math.exp, ulps: 8 },
  log: { f: Math.log, ulps: 8, absolute: 1e-6, domain: [0.01, 4] },
  sqrt: { f: Math.sqrt, ulps: 4, domain: [0, 4] },
  square: { f: (x) => x * x, ulps: 1 },
  abs: { f: Math.abs, ulps: 0 },
  sign: { f: Math.sign, ulps: 0 },
  reciprocal: { f: (x) => 1 / x, ulps: 4, domain: [0.1, 3] },
  fill: { f: () => -0.25, ulps: 0 },
  sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)), ulps: 16, absolute: 1e-6 },
};

for (const [op, spec] of Object.entries(UNARY) as [UnaryOp, UnarySpec][]) {
  test(`unary ${op} on batch 7 of [17, 3]`, async () => {
    const engine = await testEngine();
    const [low, high] = spec.domain ?? [-3, 3];
    const x = f32(randomArray(seededRandom(op.length * 31), 7 * 51, low, high));
    const tx = engine.tensor(x, [17, 3], { batch: 7 });
    const out = unary(engine, op, tx, { alpha: 1.5, beta: -0.25 });
    const got = await out.read();
    const expected = Array.from(x, spec.f);
    const magnitude = (i: number) => (spec.magnitude ? spec.magnitude(x[i]) : Math.abs(expected[i]));
    assertClose(
      got,
      expected,
      (i) => spec.ulps * F32_EPS * 2 * magnitude(i) + (spec.absolute ?? 0),
      `unary ${op}`,
    );
    tx.dispose();
    out.dispose();
  });
}

const BINARY: Record<BinaryOp, (x: number, y: number) => number> = {
  add: (x, y) => 2 * x - 0.5 * y,
  mul: (x, y) => 2 * x * y,
  div: (x, y) => (2 * x) / y,
  max: Math.max,
  min: Math.min,
  reluBackward: (x, y) => (y > 0 ? x : 0),
  tanhBackward: (x, y) => x * (1 - y * y),
  greater: (x, y) => (x > y ? 1 : 0),
};

/** Broadcasting cases: [x shape, x batch, y shape, y batch]. */
const SHAPES: [number[], number, number[], number][] = [
  [[17, 3], 7, [17, 3], 7],
  [[17, 3], 7, [3], 1],
  [[17, 3], 1, [17, 1], 7],
  [[5, 4, 3], 7, [4, 3], 7],
  [[64], 7, [1], 1],
];

for (const [op, f] of Object.entries(BINARY) as [BinaryOp, (x: number, y: number) => number][]) {
  for (const [xs, xb, ys, yb] of SHAPES) {
    test(`binary ${op}: [${xs}]×${xb} with [${ys}]×${yb}`, async () => {
      const engine = await testEngine();
      const random = seededRandom(op.length * 7 + xs.length);
      const nx = xs.reduce((a, b) => a * b, 1);
      const ny = ys.reduce((a, b) => a * b, 1);
      const x = f32(randomArray(random, nx * xb, -2, 2));
      // Keep divisors away from zero so the relative error bound is meaningful.
      const y = f32(
        Array.from(randomArray(random, ny * yb, -2, 2), (v) =>
          op === 'div' ? Math.sign(v) * (0.25 + Math.abs(v)) : v,
        ),
      );
      const tx = engine.tensor(x, xs, { batch: xb });
      const ty = engine.tensor(y, ys, { batch: yb });
      const out = binary(engine, op, tx, ty, { alpha: 2, beta: -0.5 });
      const batch = Math.max(xb, yb);
      const n = nx; // every case broadcasts y into x's shape
      const expected: number[] = [];
      const yPad = [...Array(xs.length - ys.length).fill(1), ...ys];
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < n; i++) {
          // Unravel i in x's shape, then ravel into y's (size-1 dims broadcast).
          let rest = i;
          let yi = 0;
          let yStride = 1;
          for (let d = xs.length - 1; d >= 0; d--) {
            const coordinate = rest % xs[d];
            rest = Math.floor(rest / xs[d]);
            if (yPad[d] !== 1) yi += coordinate * yStride;
            yStride *= yPad[d];
          }
          expected.push(f(x[(xb === 1 ? 0 : b * nx) + i], y[(yb === 1 ? 0 : b * ny) + yi]));
        }
      }
      assert.equal(out.batch, batch);
      const got = await out.read();
      assertClose(got, expected, (i) => 4 * F32_EPS * (Math.abs(expected[i]) + 4), `binary ${op}`);
      for (const t of [tx, ty, out]) t.dispose();
    });
  }
}

test('accumulate updates in place with broadcasting (an SGD step)', async () => {
  const engine = await testEngine();
  const w = f32(randomArray(seededRandom(5), 7 * 12));
  const g = f32(randomArray(seededRandom(6), 12));
  const tw = engine.tensor(w, [3, 4], { batch: 7 });
  const tg = engine.tensor(g, [3, 4]);
  accumulate(engine, tw, tg, 1, -0.1);
  const got = await tw.read();
  assertClose(
    got,
    Array.from(w, (v, i) => v - 0.1 * g[i % 12]),
    (i) => 4 * F32_EPS * (Math.abs(w[i]) + 1),
    'accumulate',
  );
  fill(engine, tw, 3.5);
  assert.ok(Array.from(await tw.read()).every((v) => v === 3.5));
  tw.dispose();
  tg.dispose();
});

test('binary into an output that aliases an input is refused', async () => {
  const engine = await testEngine();
  const t = engine.empty([4]);
  assert.throws(() => binary(engine, 'add', t, t, { out: t }), /aliases input x/);
  t.dispose();
});

test('shapes that do not broadcast are input errors naming the operand', async () => {
  const engine = await testEngine();
  const a = engine.empty([3, 4]);
  const b = engine.empty([5]);
  assert.throws(() => binary(engine, 'add', a, b), /do not broadcast/);
  const c = engine.empty([4], { batch: 3 });
  const d = engine.empty([4], { batch: 5 });
  assert.throws(() => binary(engine, 'add', c, d), /replica batches 3 and 5/);
  for (const t of [a, b, c, d]) t.dispose();
});

test('gather rows by u32 index, per replica and shared', async () => {
  const engine = await testEngine();
  const rows = 129;
  // Rows copied in one piece (3), in two unequal pieces (17: 9 + 8), in four (50: 13 × 3 + 11).
  for (const width of [3, 17, 50]) await gatherCase(engine, rows, width);
});

async function gatherCase(engine: Awaited<ReturnType<typeof testEngine>>, rows: number, width: number) {
  const src = f32(randomArray(seededRandom(7), 3 * rows * width));
  const random = seededRandom(8);
  const index = Uint32Array.from({ length: 3 * 64 }, () => Math.floor(random() * rows));
  const tsrc = engine.tensor(src, [rows, width], { batch: 3 });
  const tindex = engine.tensor(index, [64], { batch: 3, dtype: 'u32' });
  const out = gatherRows(engine, tsrc, tindex);
  assert.equal([...out.shape], [64, width]);
  const got = await out.read();
  const expected: number[] = [];
  for (let b = 0; b < 3; b++)
    for (let r = 0; r < 64; r++)
      for (let c = 0; c < width; c++) expected.push(src[(b * rows + index[b * 64 + r]) * width + c]);
  assert.equal(Array.from(got), expected);
  const shared = engine.tensor(index.slice(0, 64), [64], { dtype: 'u32' });
  const out2 = gatherRows(engine, tsrc, shared);
  const got2 = await out2.read();
  const expectedShared: number[] = [];
  for (let b = 0; b < 3; b++)
    for (let r = 0; r < 64; r++)
      for (let c = 0; c < width; c++) expectedShared.push(src[(b * rows + index[r]) * width + c]);
  assert.equal(Array.from(got2), expectedShared, 'every replica uses the shared indices');
  for (const t of [tsrc, tindex, out, shared, out2]) t.dispose();
}

test.run();
