import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tape, type Var } from '../src/autodiff/tape.ts';
import { deepLinearForward, mlpForward, mseLoss } from '../src/models/layers.ts';
import type { Tensor } from '../src/tensor/engine.ts';
import { denseHessian } from '../src/theory/index.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { F32_EPS, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('autodiff: gradients and Hessian-vector products');
test.after(destroyTestEngine);

const R = 3; // replicas, each with its own parameters and data
const ROWS = 5;

type Shape = [number, number];

/** Float64 loss of one replica: ½ mean over rows of ‖f(x) − y‖² for a model given flat parameters. */
type CpuLoss = (theta: Float64Array) => number;

function matVecRows(w: Float64Array, offset: number, [out, inp]: Shape, h: Float64Array[]): Float64Array[] {
  return h.map((row) => {
    const r = new Float64Array(out);
    for (let i = 0; i < out; i++) for (let k = 0; k < inp; k++) r[i] += w[offset + i * inp + k] * row[k];
    return r;
  });
}

function cpuDeepLinear(shapes: Shape[], x: Float64Array[], y: Float64Array[]): CpuLoss {
  return (theta) => {
    let h = x;
    let offset = 0;
    for (const s of shapes) {
      h = matVecRows(theta, offset, s, h);
      offset += s[0] * s[1];
    }
    return (
      h.reduce((sum, row, r) => sum + row.reduce((a, v, j) => a + (v - y[r][j]) ** 2, 0), 0) / (2 * x.length)
    );
  };
}

/** Parameters ordered W_1, b_1, W_2, b_2, … (weights row-major). */
function cpuMlp(shapes: Shape[], activation: 'relu' | 'tanh', x: Float64Array[], y: Float64Array[]): CpuLoss {
  const act = activation === 'relu' ? (v: number) => Math.max(v, 0) : Math.tanh;
  return (theta) => {
    let h = x;
    let offset = 0;
    shapes.forEach((s, layer) => {
      h = matVecRows(theta, offset, s, h);
      offset += s[0] * s[1];
      const bias = theta.subarray(offset, offset + s[0]);
      offset += s[0];
      h = h.map((row) => row.map((v, i) => (layer === shapes.length - 1 ? v + bias[i] : act(v + bias[i]))));
    });
    return (
      h.reduce((sum, row, r) => sum + row.reduce((a, v, j) => a + (v - y[r][j]) ** 2, 0), 0) / (2 * x.length)
    );
  };
}

function centralGradient(loss: CpuLoss, theta: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(theta.length);
  for (let i = 0; i < theta.length; i++) {
    const p = Float64Array.from(theta);
    const m = Float64Array.from(theta);
    p[i] += h;
    m[i] -= h;
    g[i] = (loss(p) - loss(m)) / (2 * h);
  }
  return g;
}

/** Dense Hessian by second central differences in float64 (truncation O(h²), rounding O(u/h²)). */
function centralHessian(loss: CpuLoss, theta: Float64Array, h = 1e-4): Float64Array[] {
  const n = theta.length;
  const at = (i: number, si: number, j: number, sj: number) => {
    const t = Float64Array.from(theta);
    t[i] += si * h;
    t[j] += sj * h;
    return loss(t);
  };
  const H = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const value = (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) + at(i, -1, j, -1)) / (4 * h * h);
      H[i][j] = value;
      H[j][i] = value;
    }
  }
  return H;
}

interface Problem {
  shapes: Shape[];
  /** Parameter tensors' per-replica shapes in order. */
  paramShapes: number[][];
  build(tape: Tape, x: Var, params: Var[]): Var;
  cpu(x: Float64Array[], y: Float64Array[]): CpuLoss;
}

const deepLinear: Problem = {
  shapes: [
    [4, 3],
    [3, 4],
    [2, 3],
  ],
  paramShapes: [
    [4, 3],
    [3, 4],
    [2, 3],
  ],
  build: (tape, x, params) => deepLinearForward(tape, x, params),
  cpu(x, y) {
    return cpuDeepLinear(this.shapes, x, y);
  },
};

function mlp(activation: 'relu' | 'tanh'): Problem {
  const shapes: Shape[] = [
    [5, 3],
    [4, 5],
    [2, 4],
  ];
  return {
    shapes,
    paramShapes: shapes.flatMap(([o, i]) => [[o, i], [o]]),
    build: (tape, x, params) =>
      mlpForward(
        tape,
        x,
        { weights: params.filter((_, i) => i % 2 === 0), biases: params.filter((_, i) => i % 2 === 1) },
        activation,
      ),
    cpu: (x, y) => cpuMlp(shapes, activation, x, y),
  };
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Random f32-representable parameters, inputs and targets for R replicas. */
function instance(problem: Problem, seed: number) {
  const random = seededRandom(seed);
  const f32 = (n: number, scale: number) => Float32Array.from(randomArray(random, n, -scale, scale));
  const din = problem.shapes[0][1];
  const dout = problem.shapes[problem.shapes.length - 1][0];
  const params = problem.paramShapes.map((s) => f32(R * size(s), 0.8));
  const x = f32(R * ROWS * din, 1);
  const y = f32(R * ROWS * dout, 1);
  return { params, x, y, din, dout };
}

function replicaSlice(data: Float32Array, replica: number, perReplica: number): Float64Array {
  return Float64Array.from(data.subarray(replica * perReplica, (replica + 1) * perReplica));
}

function rows(data: Float64Array, width: number): Float64Array[] {
  return Array.from({ length: data.length / width }, (_, r) => data.subarray(r * width, (r + 1) * width));
}

async function runProblem(problem: Problem, seed: number, withHvp: boolean) {
  const engine = await testEngine();
  const inst = instance(problem, seed);
  const tape = new Tape(engine);
  const paramTensors = problem.paramShapes.map((s, i) => engine.tensor(inst.params[i], s, { batch: R }));
  const params = paramTensors.map((t) => tape.param(t));
  const x = tape.constant(engine.tensor(inst.x, [ROWS, inst.din], { batch: R }));
  const y = tape.constant(engine.tensor(inst.y, [ROWS, inst.dout], { batch: R }));
  const loss = mseLoss(tape, problem.build(tape, x, params), y);
  const grads = tape.grad(loss, params);
  const vectors: Tensor[] = [];
  const vData = problem.paramShapes.map((s) =>
    Float32Array.from(randomArray(seededRandom(seed + 1000 + s.length), R * size(s))),
  );
  let hv: Var[] = [];
  if (withHvp) {
    for (const [i, v] of vData.entries())
      vectors.push(engine.tensor(v, problem.paramShapes[i], { batch: R }));
    hv = tape.hvp(loss, params, vectors);
  }
  const lossValues = await loss.value.read();
  const gradValues = await Promise.all(grads.map((g) => g.value.read()));
  const hvValues = await Promise.all(hv.map((h) => h.value.read()));
  tape.dispose();
  for (const t of [...paramTensors, ...vectors, x.value, y.value]) t.dispose();
  return { inst, lossValues, gradValues, hvValues, vData };
}

/** Flattens replica r of per-parameter arrays into one float64 vector. */
function flatten(problem: Problem, arrays: ArrayLike<number>[], r: number): Float64Array {
  const parts = problem.paramShapes.map((s, i) => replicaSlice(Float32Array.from(arrays[i]), r, size(s)));
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

const PROBLEMS: [string, Problem][] = [
  ['deep linear D=3', deepLinear],
  ['MLP tanh', mlp('tanh')],
  ['MLP relu', mlp('relu')],
];

for (const [name, problem] of PROBLEMS) {
  test(`${name}: loss and gradient match float64 central differences (${R} replicas)`, async () => {
    const { inst, lossValues, gradValues } = await runProblem(problem, 11, false);
    for (let r = 0; r < R; r++) {
      const cpu = problem.cpu(
        rows(replicaSlice(inst.x, r, ROWS * inst.din), inst.din),
        rows(replicaSlice(inst.y, r, ROWS * inst.dout), inst.dout),
      );
      const theta = flatten(problem, inst.params, r);
      const expectedLoss = cpu(theta);
      assert.ok(
        Math.abs(lossValues[r] - expectedLoss) <= 1e-5 * Math.abs(expectedLoss),
        `replica ${r} loss ${lossValues[r]} vs ${expectedLoss}`,
      );
      const expected = centralGradient(cpu, theta);
      const got = flatten(problem, gradValues, r);
      // f32 through a few layers of short dot products: a few hundred ulps of the largest entry;
      // the float64 central difference is accurate to ~1e-9 here.
      const bound = 512 * F32_EPS * maxAbs(expected) + 1e-8;
      for (let i = 0; i < expected.length; i++) {
        assert.ok(
          Math.abs(got[i] - expected[i]) <= bound,
          `replica ${r} ∂L/∂θ${i}: ${got[i]} vs ${expected[i]} (bound ${bound.toExponential(2)})`,
        );
      }
    }
  });
}

for (const [name, problem] of PROBLEMS.slice(0, 2)) {
  test(`${name}: Hessian-vector product matches the explicit float64 Hessian (relative 1e-3)`, async () => {
    const { inst, hvValues, vData } = await runProblem(problem, 23, true);
    for (let r = 0; r < R; r++) {
      const cpu = problem.cpu(
        rows(replicaSlice(inst.x, r, ROWS * inst.din), inst.din),
        rows(replicaSlice(inst.y, r, ROWS * inst.dout), inst.dout),
      );
      const H = centralHessian(cpu, flatten(problem, inst.params, r));
      const v = flatten(problem, vData, r);
      const expected = H.map((row) => row.reduce((s, h, j) => s + h * v[j], 0));
      const got = flatten(problem, hvValues, r);
      const scale = maxAbs(expected);
      for (let i = 0; i < expected.length; i++) {
        assert.ok(
          Math.abs(got[i] - expected[i]) <= 1e-3 * scale,
          `replica ${r} (Hv)${i}: ${got[i]} vs ${expected[i]}`,
        );
      }
    }
  });
}

test('deep linear at zero residual: HVP equals the Kronecker-block Hessian of the theory module', async () => {
  // Targets produced by the network itself make every residual zero, so the empirical Hessian is
  // exactly the Gauss–Newton blocks (L_iᵀL_j) ⊗ (R_i Σ̂ R_jᵀ) with Σ̂ = XᵀX / rows.
  const engine = await testEngine();
  const problem = deepLinear;
  const inst = instance(problem, 31);
  const tape = new Tape(engine);
  const paramTensors = problem.paramShapes.map((s, i) => engine.tensor(inst.params[i], s, { batch: R }));
  const params = paramTensors.map((t) => tape.param(t));
  const x = tape.constant(engine.tensor(inst.x, [ROWS, inst.din], { batch: R }));
  const target = tape.constant(
    deepLinearForward(
      tape,
      x,
      params.map((p) => tape.constant(p.value)),
    ).value,
  );
  const loss = mseLoss(tape, deepLinearForward(tape, x, params), target);
  const vData = problem.paramShapes.map((s, i) =>
    Float32Array.from(randomArray(seededRandom(40 + i), R * size(s))),
  );
  const vectors = vData.map((v, i) => engine.tensor(v, problem.paramShapes[i], { batch: R }));
  const hv = await Promise.all(tape.hvp(loss, params, vectors).map((h) => h.value.read()));
  for (let r = 0; r < R; r++) {
    const weights = problem.paramShapes.map((s, i) =>
      rows(replicaSlice(inst.params[i], r, size(s)), s[1]).map((row) => Array.from(row)),
    );
    const xr = rows(replicaSlice(inst.x, r, ROWS * inst.din), inst.din);
    const sigma = Array.from({ length: inst.din }, (_, a) =>
      Array.from({ length: inst.din }, (_, b) => xr.reduce((s, row) => s + row[a] * row[b], 0) / ROWS),
    );
    const H = denseHessian(weights, sigma);
    const v = flatten(problem, vData, r);
    const expected = H.map((row) => row.reduce((s, h, j) => s + h * v[j], 0));
    const got = flatten(problem, hv, r);
    const scale = maxAbs(expected);
    for (let i = 0; i < expected.length; i++)
      assert.ok(
        Math.abs(got[i] - expected[i]) <= 1e-3 * scale,
        `replica ${r} (Hv)${i}: ${got[i]} vs ${expected[i]}`,
      );
  }
  tape.dispose();
  for (const t of [...paramTensors, ...vectors, x.value]) t.dispose();
});

test('a data batch shared by all replicas (batch 1) broadcasts; its gradient sums over replicas', async () => {
  const engine = await testEngine();
  const tape = new Tape(engine);
  const random = seededRandom(77);
  const w = Float32Array.from(randomArray(random, R * 6));
  const xs = Float32Array.from(randomArray(random, 4 * 3));
  const W = tape.param(engine.tensor(w, [2, 3], { batch: R }));
  const X = tape.param(engine.tensor(xs, [4, 3]));
  // L_r = Σ (X W_rᵀ) ⇒ ∂L_r/∂X[i, k] = Σ_j W_r[j, k]; summed over replicas for the shared X.
  const loss = tape.sum(tape.matmul(X, W, { transposeB: true }));
  const [gx] = tape.grad(loss, [X]);
  assert.is(gx.batch, 1);
  const got = await gx.value.read();
  for (let i = 0; i < 4; i++) {
    for (let k = 0; k < 3; k++) {
      let expected = 0;
      for (let r = 0; r < R; r++) for (let j = 0; j < 2; j++) expected += w[r * 6 + j * 3 + k];
      assert.ok(Math.abs(got[i * 3 + k] - expected) < 1e-5, `∂/∂X[${i},${k}]`);
    }
  }
  tape.dispose();
  W.value.dispose();
  X.value.dispose();
});

test('mismatched widths fail before any GPU work, naming the layer', async () => {
  const engine = await testEngine();
  const tape = new Tape(engine);
  const launches = engine.scheduler.launches;
  const x = tape.constant(engine.empty([5, 3]));
  const w1 = tape.param(engine.empty([4, 3]));
  const w2 = tape.param(engine.empty([2, 5]));
  assert.throws(
    () => deepLinearForward(tape, x, [w1, w2]),
    /weights\[1\]: expects 5 inputs, the layer below gives 4/,
  );
  assert.is(engine.scheduler.launches, launches + 1, 'only the first layer was launched');
  tape.dispose();
  for (const v of [x, w1, w2]) v.value.dispose();
});

test.run();
