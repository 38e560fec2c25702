import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Tape, type Var } from '../src/autodiff/tape.ts';
import { type LossKind, lossFunction } from '../src/models/losses.ts';
import { buildModel, type ModelSpec } from '../src/models/model.ts';
import type { Tensor } from '../src/tensor/engine.ts';
import { denseHessian } from '../src/theory/hessian.ts';
import { centralGradient, centralHessian, cpuLoss } from './helpers/cpu-models.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { F32_EPS, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('autodiff: gradients and Hessian-vector products of every model');
test.after(destroyTestEngine);

const R = 3; // replicas, each with its own parameters and data
const ROWS = 4;

const SPECS: Record<string, ModelSpec> = {
  'deep linear D=3': { kind: 'deep-linear', inputDim: 3, hidden: [4, 3], outputDim: 2 },
  'MLP tanh': { kind: 'mlp', inputDim: 3, hidden: [5, 4], outputDim: 2, activation: 'tanh' },
  'MLP relu': { kind: 'mlp', inputDim: 3, hidden: [5], outputDim: 3, activation: 'relu' },
  'RNN tanh, T=3': { kind: 'rnn', inputDim: 2, hidden: 3, outputDim: 2, sequenceLength: 3 },
  'Transformer, 2 heads, T=3': {
    kind: 'transformer',
    inputDim: 2,
    modelDim: 4,
    heads: 2,
    mlpHidden: 3,
    outputDim: 2,
    sequenceLength: 3,
  },
};

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** Random f32 parameters, inputs and targets (soft targets for cross-entropy) for R replicas. */
function instance(spec: ModelSpec, loss: LossKind, seed: number) {
  const model = buildModel(spec);
  const random = seededRandom(seed);
  const f32 = (n: number, scale: number) => Float32Array.from(randomArray(random, n, -scale, scale));
  const params = model.parameters.map((p) => f32(R * size(p.shape), 0.7));
  const x = f32(R * ROWS * model.inputFeatures, 1);
  let y = f32(R * ROWS * model.outputDim, 1);
  if (loss === 'cross-entropy') {
    // Rows of positive weights summing to one.
    y = Float32Array.from(y, (v) => Math.exp(2 * v));
    for (let r = 0; r < R * ROWS; r++) {
      const row = y.subarray(r * model.outputDim, (r + 1) * model.outputDim);
      const total = row.reduce((a, b) => a + b, 0);
      row.forEach((v, j) => {
        row[j] = v / total;
      });
    }
  }
  return { model, params, x, y };
}

/** Replica r's slice of each parameter, flattened into one float64 vector (buildModel order). */
function flatten(arrays: ArrayLike<number>[], r: number): Float64Array {
  const parts = arrays.map((a) => {
    const n = a.length / R;
    return Array.from({ length: n }, (_, i) => a[r * n + i]);
  });
  return Float64Array.from(parts.flat());
}

function rowsOf(data: Float32Array, r: number, width: number): Float64Array[] {
  return Array.from({ length: ROWS }, (_, i) =>
    Float64Array.from(data.subarray((r * ROWS + i) * width, (r * ROWS + i + 1) * width)),
  );
}

async function evaluate(spec: ModelSpec, loss: LossKind, seed: number, withHvp: boolean) {
  const engine = await testEngine();
  const inst = instance(spec, loss, seed);
  const { model } = inst;
  const tape = new Tape(engine);
  const paramTensors = model.parameters.map((p, i) => engine.tensor(inst.params[i], p.shape, { batch: R }));
  const params = paramTensors.map((t) => tape.param(t));
  const xT = engine.tensor(inst.x, [ROWS, model.inputFeatures], { batch: R });
  const yT = engine.tensor(inst.y, [ROWS, model.outputDim], { batch: R });
  const lossVar = lossFunction(loss)(tape, model.forward(tape, params, tape.constant(xT)), tape.constant(yT));
  const grads = tape.grad(lossVar, params);
  const vData = model.parameters.map((p, i) =>
    Float32Array.from(randomArray(seededRandom(seed * 31 + i), R * size(p.shape))),
  );
  const vectors: Tensor[] = withHvp
    ? model.parameters.map((p, i) => engine.tensor(vData[i], p.shape, { batch: R }))
    : [];
  const hv: Var[] = withHvp ? tape.hvp(lossVar, params, vectors) : [];
  const lossValues = await lossVar.value.read();
  const gradValues = await Promise.all(grads.map((g) => g.value.read()));
  const hvValues = await Promise.all(hv.map((h) => h.value.read()));
  tape.dispose();
  for (const t of [...paramTensors, ...vectors, xT, yT]) t.dispose();
  const cpu = (r: number) => (theta: Float64Array) =>
    cpuLoss(spec, loss, theta, rowsOf(inst.x, r, model.inputFeatures), rowsOf(inst.y, r, model.outputDim));
  return { inst, lossValues, gradValues, hvValues, vData, cpu };
}

for (const [name, spec] of Object.entries(SPECS)) {
  for (const loss of ['mse', 'cross-entropy'] as const) {
    test(`${name}, ${loss}: loss and gradient match float64 central differences (${R} replicas)`, async () => {
      const { inst, lossValues, gradValues, cpu } = await evaluate(spec, loss, 11, false);
      for (let r = 0; r < R; r++) {
        const theta = flatten(inst.params, r);
        const expectedLoss = cpu(r)(theta);
        assert.ok(
          Math.abs(lossValues[r] - expectedLoss) <= 1e-5 * (1 + Math.abs(expectedLoss)),
          `replica ${r} loss ${lossValues[r]} vs ${expectedLoss}`,
        );
        const expected = centralGradient(cpu(r), theta);
        const got = flatten(gradValues, r);
        // f32 through a few layers of short dot products: a few hundred ulps of the largest entry;
        // the float64 central difference is accurate to ~1e-9 here.
        const bound = 512 * F32_EPS * maxAbs(expected) + 1e-7;
        for (let i = 0; i < expected.length; i++) {
          assert.ok(
            Math.abs(got[i] - expected[i]) <= bound,
            `replica ${r} ∂L/∂θ${i}: ${got[i]} vs ${expected[i]} (bound ${bound.toExponential(2)})`,
          );
        }
      }
    });
  }
}

// ReLU's Hessian is the Gauss–Newton term plus Dirac masses at kinks: finite differences across a
// kink would be meaningless, so HVPs are checked on the smooth models (the relu MLP's HVP is
// covered by the deep linear and tanh cases, which share every op except the mask).
for (const name of ['deep linear D=3', 'MLP tanh', 'RNN tanh, T=3', 'Transformer, 2 heads, T=3']) {
  for (const loss of ['mse', 'cross-entropy'] as const) {
    if (name === 'Transformer, 2 heads, T=3' && loss === 'cross-entropy') continue; // same ops as MSE + softmax, which the RNN case covers
    test(`${name}, ${loss}: Hessian-vector product matches the explicit float64 Hessian (relative 1e-3)`, async () => {
      const spec = SPECS[name];
      const { inst, hvValues, vData, cpu } = await evaluate(spec, loss, 23, true);
      for (let r = 0; r < (name.startsWith('Transformer') ? 1 : R); r++) {
        const H = centralHessian(cpu(r), flatten(inst.params, r));
        const v = flatten(vData, r);
        const expected = H.map((row) => row.reduce((s, h, j) => s + h * v[j], 0));
        const got = flatten(hvValues, r);
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
}

test('deep linear at zero residual: HVP equals the Kronecker-block Hessian of the theory module', async () => {
  // Targets produced by the network itself make every residual zero, so the empirical Hessian is
  // exactly the Gauss–Newton blocks (L_iᵀL_j) ⊗ (R_i Σ̂ R_jᵀ) with Σ̂ = XᵀX / rows.
  const engine = await testEngine();
  const spec = SPECS['deep linear D=3'];
  const inst = instance(spec, 'mse', 31);
  const { model } = inst;
  const tape = new Tape(engine);
  const paramTensors = model.parameters.map((p, i) => engine.tensor(inst.params[i], p.shape, { batch: R }));
  const params = paramTensors.map((t) => tape.param(t));
  const xT = engine.tensor(inst.x, [ROWS, model.inputFeatures], { batch: R });
  const x = tape.constant(xT);
  const target = tape.constant(
    model.forward(
      tape,
      params.map((p) => tape.constant(p.value)),
      x,
    ).value,
  );
  const loss = lossFunction('mse')(tape, model.forward(tape, params, x), target);
  const vData = model.parameters.map((p, i) =>
    Float32Array.from(randomArray(seededRandom(40 + i), R * size(p.shape))),
  );
  const vectors = vData.map((v, i) => engine.tensor(v, model.parameters[i].shape, { batch: R }));
  const hv = await Promise.all(tape.hvp(loss, params, vectors).map((h) => h.value.read()));
  for (let r = 0; r < R; r++) {
    const weights = model.parameters.map((p, i) => {
      const [rows, cols] = p.shape;
      return Array.from({ length: rows }, (_, a) =>
        Array.from({ length: cols }, (_, b) => inst.params[i][r * rows * cols + a * cols + b]),
      );
    });
    const xr = rowsOf(inst.x, r, model.inputFeatures);
    const d = model.inputFeatures;
    const sigma = Array.from({ length: d }, (_, a) =>
      Array.from({ length: d }, (_, b) => xr.reduce((s, row) => s + row[a] * row[b], 0) / ROWS),
    );
    const H = denseHessian(weights, sigma);
    const v = flatten(vData, r);
    const expected = H.map((row) => row.reduce((s, h, j) => s + h * v[j], 0));
    const got = flatten(hv, r);
    const scale = maxAbs(expected);
    for (let i = 0; i < expected.length; i++)
      assert.ok(
        Math.abs(got[i] - expected[i]) <= 1e-3 * scale,
        `replica ${r} (Hv)${i}: ${got[i]} vs ${expected[i]}`,
      );
  }
  tape.dispose();
  for (const t of [...paramTensors, ...vectors, xT]) t.dispose();
});

test('an operand shared by all replicas (batch 1) broadcasts; its gradient sums over replicas', async () => {
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

test('softmax rows sum to one and cross-entropy of a target with itself is its entropy', async () => {
  const engine = await testEngine();
  const tape = new Tape(engine);
  const logits = Float32Array.from(randomArray(seededRandom(5), 2 * 7 * 5, -4, 4));
  const z = tape.constant(engine.tensor(logits, [7, 5], { batch: 2 }));
  const p = tape.softmax(z);
  const probs = await p.value.read();
  for (let r = 0; r < 14; r++) {
    const row = probs.subarray(r * 5, r * 5 + 5);
    assert.ok(Math.abs(Array.from(row).reduce((a, b) => a + b, 0) - 1) < 5 * 5 * F32_EPS, `row ${r}`);
  }
  const ce = await lossFunction('cross-entropy')(tape, z, p).value.read();
  for (let b = 0; b < 2; b++) {
    let entropy = 0;
    for (let r = 0; r < 7; r++) {
      const row = Array.from(probs.subarray((b * 7 + r) * 5, (b * 7 + r + 1) * 5));
      entropy -= row.reduce((s, q) => s + (q > 0 ? q * Math.log(q) : 0), 0) / 7;
    }
    assert.ok(Math.abs(ce[b] - entropy) < 1e-5 * (1 + entropy), `replica ${b}: ${ce[b]} vs ${entropy}`);
  }
  tape.dispose();
  z.value.dispose();
});

test('deferred launches: hvp never launches the inner parameter gradients; a deferred value is computed when read, and not after release', async () => {
  const engine = await testEngine();
  const spec = SPECS['Transformer, 2 heads, T=3'];
  const inst = instance(spec, 'mse', 41);
  const { model } = inst;
  const paramTensors = model.parameters.map((p, i) => engine.tensor(inst.params[i], p.shape, { batch: R }));
  const vectors = model.parameters.map((p, i) =>
    engine.tensor(randomArray(seededRandom(90 + i), R * size(p.shape)), p.shape, { batch: R }),
  );
  const xT = engine.tensor(inst.x, [ROWS, model.inputFeatures], { batch: R });
  const yT = engine.tensor(inst.y, [ROWS, model.outputDim], { batch: R });
  const record = (tape: Tape) => {
    const params = paramTensors.map((t) => tape.param(t));
    const loss = lossFunction('mse')(tape, model.forward(tape, params, tape.constant(xT)), tape.constant(yT));
    return { params, loss };
  };
  const launches = (work: () => void) => {
    const before = engine.scheduler.launches;
    work();
    return engine.scheduler.launches - before;
  };

  // Eager: gradient, then H·v through it.
  const eager = new Tape(engine);
  const e = record(eager);
  let eagerGrads: Var[] = [];
  let eagerHv: Var[] = [];
  const eagerLaunches = launches(() => {
    eagerGrads = eager.grad(e.loss, e.params);
    eagerHv = eager.hvpAt(eagerGrads, e.params, vectors);
  });
  // hvp: the same products with the first pass deferred.
  const lazy = new Tape(engine);
  const l = record(lazy);
  let lazyHv: Var[] = [];
  const lazyLaunches = launches(() => {
    lazyHv = lazy.hvp(l.loss, l.params, vectors);
  });
  assert.ok(lazyLaunches < eagerLaunches, `hvp made ${lazyLaunches} launches, grad + hvpAt ${eagerLaunches}`);
  for (let i = 0; i < eagerHv.length; i++) {
    const [a, b] = [await eagerHv[i].value.read(), await lazyHv[i].value.read()];
    // Same kernels on the same inputs, only launched in another order: identical floats.
    assert.equal(Array.from(b), Array.from(a), `H·v of parameter ${i}`);
  }

  // A deferred gradient: pending until read, then equal to the eager one.
  const mark = lazy.mark();
  const deferredGrads = lazy.deferred(() => lazy.grad(l.loss, l.params));
  assert.ok(
    deferredGrads.some((g) => g.pending),
    'some gradient is still pending',
  );
  const first = deferredGrads[0];
  assert.equal(Array.from(await first.value.read()), Array.from(await eagerGrads[0].value.read()));
  const stillPending = deferredGrads.find((g) => g.pending);
  lazy.release(mark);
  assert.ok(stillPending, 'a gradient nobody read is still pending');
  assert.throws(() => stillPending.value, /released by its tape before it was computed/);
  eager.dispose();
  lazy.dispose();
  for (const t of [...paramTensors, ...vectors, xT, yT]) t.dispose();
});

test('third derivatives through softmax: the gradient of ⟨u, H·v⟩ matches float64 central differences', async () => {
  // φ(x) = Σ_rows ⟨w, softmax(x_row)⟩. H·v passes the fused softmax-VJP kernels; differentiating
  // ⟨u, H·v⟩ once more runs their own VJPs (taped ops), which no second-order test reaches.
  const engine = await testEngine();
  const [rows, len] = [3, 5];
  const random = seededRandom(321);
  const draw = () => Float64Array.from(Float32Array.from(randomArray(random, rows * len, -1, 1)));
  const [x, w, v, u] = [draw(), draw(), draw(), draw()];
  const tape = new Tape(engine);
  const tensor = (a: Float64Array) => engine.tensor(Float32Array.from(a), [rows, len]);
  const X = tape.param(tensor(x));
  const [W, V, U] = [w, v, u].map((a) => tape.constant(tensor(a)));
  const phi = tape.sum(tape.mul(tape.softmax(X), W));
  const [gradient] = tape.grad(phi, [X]);
  const [hv] = tape.hvpAt([gradient], [X], [V.value]);
  const [third] = tape.grad(tape.dot(hv, U), [X]);
  const got = await third.value.read();

  // float64: H·v per row is the derivative of g = s ∘ (w − ⟨w, s⟩) along v.
  const hvOf = (xs: Float64Array) => {
    const out = new Float64Array(rows * len);
    for (let r = 0; r < rows; r++) {
      const at = (a: Float64Array) => a.subarray(r * len, (r + 1) * len);
      const [xr, wr, vr] = [at(xs), at(w), at(v)];
      const top = Math.max(...xr);
      const e = xr.map((t) => Math.exp(t - top));
      const total = e.reduce((a, b) => a + b, 0);
      const sm = e.map((t) => t / total);
      const dotOf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        let acc = 0;
        for (let i = 0; i < len; i++) acc += a[i] * b[i];
        return acc;
      };
      const ds = sm.map((si, i) => si * (vr[i] - dotOf(vr, sm)));
      const ws = dotOf(wr, sm);
      const wds = dotOf(wr, ds);
      for (let i = 0; i < len; i++) out[r * len + i] = ds[i] * (wr[i] - ws) - sm[i] * wds;
    }
    return out;
  };
  const psi = (xs: Float64Array) => hvOf(xs).reduce((acc, h, i) => acc + h * u[i], 0);
  const expected = centralGradient(psi, x);
  // f32 row kernels over a handful of terms of size ≤ 1: a few hundred ulps of the largest entry.
  const bound = 512 * F32_EPS * maxAbs(expected) + 1e-6;
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(got[i] - expected[i]) <= bound, `∂⟨u, Hv⟩/∂x${i}: ${got[i]} vs ${expected[i]}`);
  tape.dispose();
  for (const t of [X, W, V, U]) t.value.dispose();
});

test.run();
