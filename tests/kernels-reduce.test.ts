import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dot, norm, type ReduceOp, reduce } from '../src/kernels/reduce.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { assertClose, dotTolerance, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('reductions');
test.after(destroyTestEngine);

function referenceReduce(
  op: ReduceOp,
  x: Float32Array,
  batch: number,
  shape: number[],
  axis: number | undefined,
) {
  const size = shape.reduce((a, b) => a * b, 1);
  const [outer, len, inner] =
    axis === undefined
      ? [1, size, 1]
      : [
          shape.slice(0, axis).reduce((a, b) => a * b, 1),
          shape[axis],
          shape.slice(axis + 1).reduce((a, b) => a * b, 1),
        ];
  const values: number[] = [];
  const magnitudes: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let acc = op === 'max' ? -Infinity : op === 'min' ? Infinity : 0;
        let magnitude = 0;
        for (let k = 0; k < len; k++) {
          const v = x[b * size + (o * len + k) * inner + j];
          if (op === 'max') acc = Math.max(acc, v);
          else if (op === 'min') acc = Math.min(acc, v);
          else if (op === 'sumSquares') acc += v * v;
          else if (op === 'sumAbs') acc += Math.abs(v);
          else acc += v;
          magnitude += op === 'sumSquares' ? v * v : Math.abs(v);
        }
        values.push(op === 'mean' ? acc / len : acc);
        magnitudes.push(op === 'mean' ? magnitude / len : magnitude);
      }
    }
  }
  return { values, magnitudes, len };
}

const OPS: ReduceOp[] = ['sum', 'mean', 'sumSquares', 'max', 'min', 'sumAbs'];
const CASES: { shape: number[]; batch: number; axis?: number }[] = [
  { shape: [257], batch: 1 },
  { shape: [3, 129], batch: 7, axis: 1 },
  { shape: [129, 3], batch: 7, axis: 0 },
  { shape: [17, 64, 3], batch: 1, axis: 1 },
  { shape: [64, 257], batch: 7 },
  { shape: [1], batch: 7 },
];

for (const op of OPS) {
  for (const c of CASES) {
    for (const strategy of ['rows', 'tree'] as const) {
      test(`${op} over axis ${c.axis ?? 'all'} of [${c.shape}] × ${c.batch} (${strategy})`, async () => {
        const engine = await testEngine();
        const size = c.shape.reduce((a, b) => a * b, 1);
        const x = Float32Array.from(randomArray(seededRandom(size + c.batch), size * c.batch, -2, 2));
        const tx = engine.tensor(x, c.shape, { batch: c.batch });
        const out = reduce(engine, op, tx, { axis: c.axis, strategy });
        const got = await out.read();
        const { values, magnitudes, len } = referenceReduce(op, x, c.batch, c.shape, c.axis);
        assert.is(got.length, values.length);
        // Summation error grows with the length: γ_len on Σ|terms|; extrema are exact.
        assertClose(
          got,
          values,
          (i) => (op === 'max' || op === 'min' ? 0 : dotTolerance(len, magnitudes[i])),
          `${op}`,
        );
        tx.dispose();
        out.dispose();
      });
    }
  }
}

test('dot and norm per replica, with a shared operand', async () => {
  const engine = await testEngine();
  const n = 1000;
  const x = Float32Array.from(randomArray(seededRandom(11), 7 * n));
  const y = Float32Array.from(randomArray(seededRandom(12), n));
  const tx = engine.tensor(x, [n], { batch: 7 });
  const ty = engine.tensor(y, [n]);
  const d = await dot(engine, tx, ty).read();
  const nr = await norm(engine, tx).read();
  for (let b = 0; b < 7; b++) {
    let s = 0;
    let m = 0;
    let q = 0;
    for (let i = 0; i < n; i++) {
      s += x[b * n + i] * y[i];
      m += Math.abs(x[b * n + i] * y[i]);
      q += x[b * n + i] ** 2;
    }
    assertClose([d[b]], [s], () => dotTolerance(n, m), `dot replica ${b}`);
    // sqrt halves the relative error of the sum of squares and adds one rounding.
    assertClose(
      [nr[b]],
      [Math.sqrt(q)],
      () => dotTolerance(n, q) / (2 * Math.sqrt(q)) + 2 ** -23 * Math.sqrt(q),
      `norm replica ${b}`,
    );
  }
  tx.dispose();
  ty.dispose();
});

test('a bad axis is an input error', async () => {
  const engine = await testEngine();
  const t = engine.empty([3, 4]);
  assert.throws(() => reduce(engine, 'sum', t, { axis: 2 }), /reduce.axis/);
  t.dispose();
});

test.run();
