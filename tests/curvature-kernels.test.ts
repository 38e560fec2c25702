import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copiesWithinBudget, largestDivisorAtMost, withFittingCopies } from '../src/curvature/copies.ts';
import { InputError, KernelError } from '../src/errors.ts';
import { KrylovBasis, powerStep } from '../src/kernels/lanczos.ts';
import { repeatReplicas, stridedCopy, unitVectors } from '../src/kernels/vectors.ts';
import { MODEL_CASES, quadraticCase } from './helpers/curvature-cases.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { assertClose, dotTolerance, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite(
  'curvature: vector kernels (strided copy, unit vectors, Gram–Schmidt, power step) vs float64',
);
test.after(destroyTestEngine);

const f32 = (values: ArrayLike<number>) => Float32Array.from(values);

test('strided copy: offsets, repeat (xDiv) and tile (xMod) of replicas, scaling', async () => {
  const engine = await testEngine();
  const x = f32(randomArray(seededRandom(1), 3 * 10));
  const src = engine.tensor(x, [10], { batch: 3 });
  // Elements 2..6 of every replica, scaled by −2, into columns 1..5 of a [3 × 7] output.
  const out = engine.tensor(new Float32Array(21), [7], { batch: 3 });
  stridedCopy(engine, src, out, { length: 5, batch: 3, xOffset: 2, outOffset: 1, alpha: -2 });
  const got = await out.read();
  for (let b = 0; b < 3; b++)
    for (let i = 0; i < 7; i++) {
      const want = i >= 1 && i < 6 ? -2 * x[b * 10 + 1 + i] : 0;
      assert.is(got[b * 7 + i], Math.fround(want), `replica ${b} element ${i}`);
    }
  // Repeat: replica r·4 + j is replica r.
  const repeated = repeatReplicas(engine, src, 4);
  assert.is(repeated.batch, 12);
  const rep = await repeated.read();
  for (let b = 0; b < 12; b++)
    for (let i = 0; i < 10; i++) assert.is(rep[b * 10 + i], x[Math.floor(b / 4) * 10 + i]);
  // Tile: replica b reads source replica b mod 3.
  const tiled = engine.empty([10], { batch: 6 });
  stridedCopy(engine, src, tiled, { length: 10, batch: 6, xMod: 3 });
  const tile = await tiled.read();
  for (let b = 0; b < 6; b++) for (let i = 0; i < 10; i++) assert.is(tile[b * 10 + i], x[(b % 3) * 10 + i]);
  assert.throws(
    () => stridedCopy(engine, src, src, { length: 1, batch: 1 }),
    (error: unknown) => error instanceof InputError,
  );
  for (const t of [src, out, repeated, tiled]) t.dispose();
});

test('unit vectors: replica b holds e_{start + b mod copies}, zero past the end', async () => {
  const engine = await testEngine();
  const e = unitVectors(engine, 5, 8, 4, 3);
  const got = await e.read();
  for (let b = 0; b < 8; b++)
    for (let i = 0; i < 5; i++) assert.is(got[b * 5 + i], i === 3 + (b % 4) ? 1 : 0, `replica ${b} [${i}]`);
  e.dispose();
});

for (const n of [37, 700]) {
  test(`Gram–Schmidt sweep (n = ${n}, ${n < 256 ? 'serial' : 'workgroup'} projection): project, subtract, finish, normalize`, async () => {
    const engine = await testEngine();
    const batch = 3;
    const capacity = 6;
    const rows = 4;
    const random = seededRandom(n);
    const Q = f32(randomArray(random, batch * capacity * n));
    const w0 = f32(randomArray(random, batch * n));
    const basis = new KrylovBasis(engine, n, capacity, batch);
    engine.write(basis.rows, Q);
    const w = engine.tensor(w0, [n], { batch });
    // One pass: c = Q_{0..3}ᵀ w, then w − Q c.
    basis.project(w, rows, 0);
    basis.subtract(w, rows, 0);
    const coef = await basis.coef.read();
    const after = (await w.read()) as Float32Array;
    for (let b = 0; b < batch; b++) {
      const q = (j: number, i: number) => Q[(b * capacity + j) * n + i];
      const c = Array.from({ length: rows }, (_, j) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += q(j, i) * w0[b * n + i];
        return s;
      });
      const absolute = (j: number) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += Math.abs(q(j, i) * w0[b * n + i]);
        return s;
      };
      assertClose(
        coef.subarray(b * 2 * capacity, b * 2 * capacity + rows),
        c,
        (j) => dotTolerance(n, absolute(j)),
        `replica ${b} projection`,
      );
      const scale = c.reduce((a, v) => a + Math.abs(v), 0);
      const expected = Array.from(
        { length: n },
        (_, i) => w0[b * n + i] - c.reduce((a, v, j) => a + v * q(j, i), 0),
      );
      assertClose(
        after.subarray(b * n, (b + 1) * n),
        expected,
        () => dotTolerance(rows, scale) + 2 * rows * 2 ** -24 * Math.abs(scale) * 4,
        `replica ${b} subtraction`,
      );
    }
    // finish (j = 3): α = c[3] + c'[3] with the second pass's coefficients, β = ‖w‖, row 4 = w / β.
    basis.project(w, rows, 1);
    const second = await basis.coef.read();
    basis.finish(w, rows - 1);
    const scalars = await basis.scalars.read();
    const rowsAfter = await basis.rows.read();
    for (let b = 0; b < batch; b++) {
      const alpha = second[b * 2 * capacity + 3] + second[b * 2 * capacity + capacity + 3];
      assert.ok(Math.abs(scalars[2 * b] - alpha) <= 1e-6 * Math.abs(alpha) + 1e-7, `α replica ${b}`);
      const v = after.subarray(b * n, (b + 1) * n);
      const beta = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
      assert.ok(Math.abs(scalars[2 * b + 1] - beta) <= dotTolerance(n, beta * beta) / beta, `β replica ${b}`);
      assertClose(
        rowsAfter.subarray((b * capacity + 4) * n, (b * capacity + 5) * n),
        Array.from(v, (x) => x / beta),
        () => 1e-6,
        `replica ${b} row 4`,
      );
    }
    // normalize with a mask: only replica 1 rewrites row 5.
    const mask = engine.tensor([0, 1, 0], [1], { batch, dtype: 'u32' });
    const rowsBefore = rowsAfter.slice();
    basis.normalizeInto(w, 5, mask);
    const masked = await basis.rows.read();
    for (let b = 0; b < batch; b++) {
      const v = after.subarray(b * n, (b + 1) * n);
      const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
      const want =
        b === 1
          ? Array.from(v, (x) => x / norm)
          : rowsBefore.subarray((b * capacity + 5) * n, (b * capacity + 6) * n);
      assertClose(
        masked.subarray((b * capacity + 5) * n, (b * capacity + 6) * n),
        want,
        () => 1e-6,
        `mask ${b}`,
      );
    }
    basis.dispose();
    w.dispose();
    mask.dispose();
  });
}

test('power step: λ = vᵀHv, ‖Hv − λv‖ and ‖Hv‖ per replica, then v ← Hv/‖Hv‖', async () => {
  const engine = await testEngine();
  const n = 50;
  const batch = 2;
  const random = seededRandom(3);
  const raw = randomArray(random, batch * n);
  const v0 = new Float32Array(batch * n);
  for (let b = 0; b < batch; b++) {
    const norm = Math.sqrt(raw.subarray(b * n, (b + 1) * n).reduce((a, x) => a + x * x, 0));
    for (let i = 0; i < n; i++) v0[b * n + i] = raw[b * n + i] / norm;
  }
  const hv0 = f32(randomArray(random, batch * n));
  const v = engine.tensor(v0, [n], { batch });
  const hv = engine.tensor(hv0, [n], { batch });
  const stats = engine.empty([3], { batch });
  powerStep(engine, v, hv, stats);
  const s = await stats.read();
  const next = await v.read();
  for (let b = 0; b < batch; b++) {
    const vb = v0.subarray(b * n, (b + 1) * n);
    const hb = hv0.subarray(b * n, (b + 1) * n);
    const lambda = vb.reduce((a, x, i) => a + x * hb[i], 0);
    const residual = Math.sqrt(hb.reduce((a, h, i) => a + (h - lambda * vb[i]) ** 2, 0));
    const norm = Math.sqrt(hb.reduce((a, h) => a + h * h, 0));
    const tol = dotTolerance(n, norm * norm);
    assertClose([s[3 * b], s[3 * b + 1], s[3 * b + 2]], [lambda, residual, norm], () => tol, `stats ${b}`);
    assertClose(
      next.subarray(b * n, (b + 1) * n),
      Array.from(hb, (h) => h / norm),
      () => 1e-6,
      `v ${b}`,
    );
  }
  for (const t of [v, hv, stats]) t.dispose();
});

test('operator: H·v on parameter tensors equals the flat form; pack/unpack round trip; H·v vs float64', async () => {
  const engine = await testEngine();
  const instance = MODEL_CASES[1].build(engine, 2, 3);
  const op = instance.operator;
  const n = op.size;
  const v = engine.tensor(f32(randomArray(seededRandom(4), 2 * n)), [n], { batch: 2 });
  const parts = op.unpack(v);
  assert.equal(
    parts.map((t) => t.shape),
    op.layout.shapes,
  );
  const back = op.pack(parts, engine.empty([n], { batch: 2 }));
  assert.equal(await back.read(), await v.read());
  const flat = (await op.applyFlat(v).read()) as Float32Array;
  const hv = op.apply(parts);
  const packed = await op.pack(hv, engine.empty([n], { batch: 2 })).read();
  assert.equal(packed, flat, 'the same launches on the same inputs');
  assert.is(op.hvps, 2);
  const reference = await instance.reference();
  const vs = (await v.read()) as Float32Array;
  reference.forEach((H, r) => {
    const want = H.map((row) => row.reduce((a, h, j) => a + h * vs[r * n + j], 0));
    const scale = Math.max(...want.map(Math.abs));
    assertClose(flat.subarray(r * n, (r + 1) * n), want, () => 1e-4 * scale, `replica ${r} H·v`);
  });
  for (const t of [v, back, ...parts, ...hv]) t.dispose();
  instance.dispose();
});

test('probe copies: capped by the memory budget, halved while a launch exceeds the adapter limits', async () => {
  const engine = await testEngine();
  const instance = quadraticCase('n=10', () => Array.from({ length: 10 }, (_, i) => i)).build(engine, 2, 1);
  const op = instance.operator;
  // Per copy: 10 parameters + the per-replica matrix A (100 floats), for 2 replicas.
  assert.is(copiesWithinBudget(op, 32, 2 * 110 * 7), 7);
  assert.is(copiesWithinBudget(op, 32, 1), 1);
  const tried: number[] = [];
  const result = await withFittingCopies(op, 32, async (batched, copies) => {
    tried.push(copies);
    assert.is(batched.batch, 2 * copies);
    if (copies > 8)
      throw new KernelError(
        'matmul',
        `dispatch of ${copies * 5000} workgroups on axis z exceeds maxComputeWorkgroupsPerDimension 65535`,
      );
    return copies;
  });
  assert.is(result, 8);
  assert.equal(tried, [32, 16, 8]);
  // Hutchinson's launches hold a divisor of its block of probes: 12 → 6 → 3 (never 2 of a block of 3).
  assert.equal(
    [largestDivisorAtMost(32, 7), largestDivisorAtMost(12, 5), largestDivisorAtMost(7, 6)],
    [4, 4, 1],
  );
  const triedDivisors: number[] = [];
  await withFittingCopies(
    op,
    12,
    async (_, copies) => {
      triedDivisors.push(copies);
      if (copies > 3) throw new KernelError('matmul', 'exceeds maxComputeWorkgroupsPerDimension');
      return copies;
    },
    { divisorOfWanted: true },
  );
  assert.equal(triedDivisors, [12, 6, 3]);
  // Other errors, and limit errors with one copy, propagate.
  for (const [wanted, error] of [
    [4, new InputError('probes', 'bad')],
    [1, new KernelError('matmul', 'exceeds maxComputeWorkgroupsPerDimension')],
  ] as const) {
    try {
      await withFittingCopies(op, wanted, async () => {
        throw error;
      });
      assert.unreachable();
    } catch (caught) {
      assert.is(caught, error);
    }
  }
  instance.dispose();
});

test.run();
