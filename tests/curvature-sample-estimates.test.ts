import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SampleSource } from '../src/curvature/operator.ts';
import {
  batchMean,
  chunkSamples,
  EvaluationChunks,
  measureSampleEstimates,
  type SampleEstimate,
  type SampleMeasurement,
} from '../src/curvature/sample-estimates.ts';
import { buildModel, type ModelSpec } from '../src/models/model.ts';
import type { Engine, Tensor } from '../src/tensor/engine.ts';
import { modelLoss } from './helpers/curvature-cases.ts';
import { eigenvalues } from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { seededRandom } from './helpers/reference.ts';

const test = suite(
  'curvature: sample estimates streamed in chunks (Tr H, λ_max, S, loss, ‖∇L‖) agree with float64 population values within their reported standard errors',
);
test.after(destroyTestEngine);

/**
 * A 2 → 3 → 1 tanh student on a fixed tanh teacher with Gaussian label noise: the per-sample gradient
 * and Hessian are analytic, so the population values come from a float64 Monte Carlo far larger than
 * the GPU's evaluation set. Parameters in buildModel order: W1 [3, 2], b1 [3], W2 [1, 3], b2 [1].
 */
const SPEC: ModelSpec = { kind: 'mlp', inputDim: 2, hidden: [3], outputDim: 1, activation: 'tanh' };
const HIDDEN = 3;
const N_PARAMS = 13;
const THETA = [0.9, -0.6, 0.4, 1.1, -0.8, 0.3, 0.2, -0.1, 0.3, 1.2, -0.7, 0.9, 0.1];
const NOISE = 0.5;
const teacher = (x0: number, x1: number) =>
  1.5 * Math.tanh(x0 - 0.5 * x1) - 0.8 * Math.tanh(0.7 * x0 + x1 + 0.3);

/** Standard normals from a seeded uniform stream (Box–Muller). */
function normals(random: () => number, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - random()));
    const angle = 2 * Math.PI * random();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** Rows (x0, x1, y) of the teacher's distribution from a seeded stream. */
function drawRows(key: number, rows: number): { x: Float64Array; y: Float64Array } {
  const z = normals(seededRandom(key), 3 * rows);
  const x = new Float64Array(2 * rows);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    x[2 * i] = z[3 * i];
    x[2 * i + 1] = z[3 * i + 1];
    y[i] = teacher(x[2 * i], x[2 * i + 1]) + NOISE * z[3 * i + 2];
  }
  return { x, y };
}

/** The same distribution on the GPU: fresh rows per (seed, chunk, global replica). */
function teacherSource(engine: Engine): SampleSource {
  return {
    sample({ seed, step, rows, replicas, replicaOffset = 0 }) {
      const x = new Float32Array(replicas * rows * 2);
      const y = new Float32Array(replicas * rows);
      for (let r = 0; r < replicas; r++) {
        const drawn = drawRows(1_000_003 * seed + 7919 * step + r + replicaOffset, rows);
        x.set(drawn.x, r * rows * 2);
        y.set(drawn.y, r * rows);
      }
      return {
        x: engine.tensor(x, [rows, 2], { batch: replicas }),
        y: engine.tensor(y, [rows, 1], { batch: replicas }),
      };
    },
  };
}

/**
 * ℓ, ∇ℓ and ∇²ℓ = J Jᵀ + (f − y) ∇²f of one sample in float64, into preallocated buffers (the
 * Monte Carlo calls it a million times). Returns ℓ.
 */
function sampleCurvature(x0: number, x1: number, y: number, gradient: Float64Array, H: Float64Array): number {
  const xt = [x0, x1, 1];
  const t = [0, 0, 0];
  let f = THETA[12];
  for (let j = 0; j < HIDDEN; j++) {
    t[j] = Math.tanh(THETA[2 * j] * x0 + THETA[2 * j + 1] * x1 + THETA[6 + j]);
    f += THETA[9 + j] * t[j];
  }
  const residual = f - y;
  // J = ∂f/∂θ; the index of input weight k (k = 2: the bias) of hidden unit j.
  const inWeight = (j: number, k: number) => (k < 2 ? 2 * j + k : 6 + j);
  for (let j = 0; j < HIDDEN; j++) {
    const s = 1 - t[j] * t[j];
    for (let k = 0; k < 3; k++) gradient[inWeight(j, k)] = THETA[9 + j] * s * xt[k];
    gradient[9 + j] = t[j];
  }
  gradient[12] = 1;
  for (let a = 0; a < N_PARAMS; a++)
    for (let b = 0; b < N_PARAMS; b++) H[a * N_PARAMS + b] = gradient[a] * gradient[b];
  for (let j = 0; j < HIDDEN; j++) {
    const s = 1 - t[j] * t[j];
    for (let k = 0; k < 3; k++) {
      const a = inWeight(j, k);
      for (let l = 0; l < 3; l++)
        H[a * N_PARAMS + inWeight(j, l)] += residual * THETA[9 + j] * -2 * t[j] * s * xt[k] * xt[l];
      H[a * N_PARAMS + 9 + j] += residual * s * xt[k];
      H[(9 + j) * N_PARAMS + a] += residual * s * xt[k];
    }
  }
  for (let a = 0; a < N_PARAMS; a++) gradient[a] *= residual;
  return 0.5 * residual * residual;
}

interface Population {
  trace: number;
  lambdaMax: number;
  fluctuation: number;
  loss: number;
  gradientNorm: number;
  /** Their Monte Carlo standard errors. */
  error: Record<'trace' | 'lambdaMax' | 'fluctuation' | 'loss' | 'gradientNorm', number>;
}

/** Float64 Monte Carlo over M fresh samples: every value with its own s.e. (two passes). */
function population(M: number): Population {
  const { x, y } = drawRows(424_242, M);
  const meanH = new Float64Array(N_PARAMS * N_PARAMS);
  const meanG = new Float64Array(N_PARAMS);
  const gradient = new Float64Array(N_PARAMS);
  const H = new Float64Array(N_PARAMS * N_PARAMS);
  // Sums of v and v² of Tr H_i, ‖∇ℓ_i‖², ℓ_i; then of u ᵀ H_i u and ĝ · ∇ℓ_i (first-order errors of
  // λ_max and ‖∇L‖).
  const sums = { trace: [0, 0], fluctuation: [0, 0], loss: [0, 0], lambdaMax: [0, 0], gradientNorm: [0, 0] };
  const add = (key: keyof typeof sums, v: number) => {
    sums[key][0] += v;
    sums[key][1] += v * v;
  };
  for (let i = 0; i < M; i++) {
    add('loss', sampleCurvature(x[2 * i], x[2 * i + 1], y[i], gradient, H));
    let trace = 0;
    let squared = 0;
    for (let a = 0; a < N_PARAMS; a++) {
      trace += H[a * N_PARAMS + a];
      squared += gradient[a] * gradient[a];
      meanG[a] += gradient[a] / M;
    }
    for (let e = 0; e < H.length; e++) meanH[e] += H[e] / M;
    add('trace', trace);
    add('fluctuation', squared);
  }
  const rows = Array.from({ length: N_PARAMS }, (_, a) =>
    Array.from(meanH.subarray(a * N_PARAMS, (a + 1) * N_PARAMS)),
  );
  const top = Math.max(...eigenvalues(rows));
  const u = topEigenvector(rows, top);
  const norm = Math.sqrt(meanG.reduce((s, v) => s + v * v, 0));
  for (let i = 0; i < M; i++) {
    sampleCurvature(x[2 * i], x[2 * i + 1], y[i], gradient, H);
    let q = 0;
    let p = 0;
    for (let a = 0; a < N_PARAMS; a++) {
      let row = 0;
      for (let b = 0; b < N_PARAMS; b++) row += H[a * N_PARAMS + b] * u[b];
      q += u[a] * row;
      p += (gradient[a] * meanG[a]) / norm;
    }
    add('lambdaMax', q);
    add('gradientNorm', p);
  }
  const error = (key: keyof typeof sums) => Math.sqrt((sums[key][1] / M - (sums[key][0] / M) ** 2) / M);
  return {
    trace: sums.trace[0] / M,
    lambdaMax: top,
    fluctuation: sums.fluctuation[0] / M,
    loss: sums.loss[0] / M,
    gradientNorm: norm,
    error: {
      trace: error('trace'),
      lambdaMax: error('lambdaMax'),
      fluctuation: error('fluctuation'),
      loss: error('loss'),
      gradientNorm: error('gradientNorm'),
    },
  };
}

/** The unit eigenvector of a symmetric matrix for a known simple eigenvalue (inverse iteration). */
function topEigenvector(rows: number[][], lambda: number): number[] {
  const n = rows.length;
  let v = new Array<number>(n).fill(1);
  for (let it = 0; it < 30; it++) {
    // Solve (A − (λ + δ) I) w = v by Gaussian elimination.
    const A = rows.map((r, i) => [...r.map((a, j) => a - (i === j ? lambda * (1 + 1e-9) + 1e-12 : 0)), v[i]]);
    for (let c = 0; c < n; c++) {
      let p = c;
      for (let r = c + 1; r < n; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
      [A[c], A[p]] = [A[p], A[c]];
      for (let r = c + 1; r < n; r++) {
        const f = A[r][c] / A[c][c];
        for (let k = c; k <= n; k++) A[r][k] -= f * A[c][k];
      }
    }
    const w = new Array<number>(n).fill(0);
    for (let r = n - 1; r >= 0; r--) {
      let s = A[r][n];
      for (let k = r + 1; k < n; k++) s -= A[r][k] * w[k];
      w[r] = s / A[r][r];
    }
    const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
    v = w.map((x) => x / norm);
  }
  return v;
}

const R = 16;
const SAMPLES = 2048;
const CHUNK = 256;
let reference: Population | undefined;

async function measure(
  engine: Engine,
  options: {
    denseMaxParameters?: number;
    exactTraceMaxParameters?: number;
    probes?: number;
    holdTapes?: boolean;
  },
  chunkSamples = CHUNK,
): Promise<SampleMeasurement> {
  const model = buildModel(SPEC);
  // Every replica at the same parameters, each with its own evaluation set: R independent repeats.
  const params: Tensor[] = [];
  let offset = 0;
  for (const p of model.parameters) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const one = THETA.slice(offset, offset + size);
    offset += size;
    params.push(
      engine.tensor(
        Float32Array.from({ length: R * size }, (_, i) => one[i % size]),
        p.shape,
        { batch: R },
      ),
    );
  }
  const set = EvaluationChunks.create(engine, {
    params,
    loss: modelLoss(model, 'mse'),
    source: teacherSource(engine),
    samples: SAMPLES,
    chunkSamples,
    seed: 5,
  });
  try {
    return await measureSampleEstimates(set, {
      trace: true,
      lambdaMax: true,
      top: 2,
      fluctuation: true,
      loss: true,
      gradientNorm: true,
      seed: 3,
      lanczosSteps: N_PARAMS,
      ...options,
    });
  } finally {
    set.dispose();
    for (const p of params) p.dispose();
  }
}

type Key = 'trace' | 'lambdaMax' | 'fluctuation' | 'loss' | 'gradientNorm';

/**
 * The reported s.e. (root mean square over the R identically distributed replicas) agrees with the
 * spread of their R independent estimates to within sampling error (the sample standard deviation of
 * 16 values is good to about ±18 %, each batch-means s.e. of 8 chunks to about ±27 %), and every
 * replica lies within 4.5 of those standard errors of the float64 population value (combined with the
 * reference's own): a correct s.e. fails either check about once in 10⁴ draws, a wrong one by a factor
 * of 2 (√K, a missing term) fails the first.
 */
function checkEstimate(name: Key, got: SampleEstimate, want: Population) {
  const se = got.standardError;
  se.forEach((s, r) => {
    assert.ok(Number.isFinite(s) && s > 0, `${name}: replica ${r} s.e. ${s}`);
  });
  const mean = got.value.reduce((a, b) => a + b, 0) / R;
  const spread = Math.sqrt(got.value.reduce((a, v) => a + (v - mean) ** 2, 0) / (R - 1));
  const reported = Math.sqrt(se.reduce((a, s) => a + s * s, 0) / R);
  const ratio = spread / reported;
  assert.ok(
    ratio > 0.5 && ratio < 1.7,
    `${name}: spread of ${R} repeats ${spread} vs reported s.e. ${reported} (ratio ${ratio})`,
  );
  const tolerance = 4.5 * Math.hypot(reported, want.error[name]);
  got.value.forEach((v, r) => {
    assert.ok(
      Math.abs(v - want[name]) < tolerance,
      `${name}: replica ${r} ${v} (s.e. ${se[r]}) vs population ${want[name]} ± ${want.error[name]}`,
    );
  });
}

function checkAll(got: SampleMeasurement, chunks = SAMPLES / CHUNK) {
  reference ??= population(100_000);
  assert.is(got.samples, SAMPLES);
  assert.is(got.chunks, chunks);
  for (const name of ['trace', 'lambdaMax', 'fluctuation', 'loss', 'gradientNorm'] as const)
    checkEstimate(name, got[name]!, reference);
  // top[0] is λ_max; top[1] the next eigenvalue, below it.
  assert.equal(got.top![0].value, got.lambdaMax!.value);
  got.top![1].value.forEach((v, r) => {
    assert.ok(v < got.lambdaMax!.value[r]);
  });
}

test('small model, chunks batched as replicas: dense chunk Hessians, their mean eigen-solved in float64', async () => {
  const engine = await testEngine();
  const got = await measure(engine, {});
  assert.equal(got.methods, { trace: 'dense', lambdaMax: 'dense' });
  assert.is(got.eigenvalues?.length, R);
  checkAll(got);
});

test('chunks of unequal size, one at a time: dense chunk Hessians and per-sample gradients in one readback', async () => {
  const engine = await testEngine();
  // 6 chunks of 300 and one of 248.
  checkAll(await measure(engine, {}, 300), 7);
});

for (const hold of [true, false])
  test(`Hutchinson per chunk (probe noise in the s.e.) and Lanczos on the mean Hessian, ${hold ? 'on all samples at once, chunks batched as replicas' : 'each H·v summed over chunks taped one at a time'}`, async () => {
    const engine = await testEngine();
    const got = await measure(engine, {
      denseMaxParameters: 1,
      exactTraceMaxParameters: 1,
      probes: 16,
      holdTapes: hold,
    });
    assert.equal(got.methods, { trace: 'hutchinson', lambdaMax: 'lanczos' });
    checkAll(got);
  });

test('evaluation data on the device: none between uses, one chunk inside withChunk, one copy for the batched forms', async () => {
  const engine = await testEngine();
  const live = () => engine.pool.stats().liveBytes;
  const model = buildModel(SPEC);
  const params = model.parameters.map((p) =>
    engine.tensor(new Float32Array(R * p.shape.reduce((a, b) => a * b, 1)), p.shape, { batch: R }),
  );
  const source = teacherSource(engine);
  /** Bytes a draw of `rows` rows holds (the pool's own rounding included). */
  const drawBytes = (rows: number) => {
    const before = live();
    const data = source.sample({ seed: 1, step: 0, rows, replicas: R });
    const bytes = live() - before;
    for (const t of Object.values(data)) t.dispose();
    return bytes;
  };
  for (const chunkSamples of [CHUNK, 300]) {
    const start = live();
    const set = EvaluationChunks.create(engine, {
      params,
      loss: modelLoss(model, 'mse'),
      source,
      samples: SAMPLES,
      chunkSamples,
      seed: 5,
    });
    try {
      assert.is(live(), start, `${chunkSamples}-row chunks: no data held between uses`);
      for (let k = 0; k < set.chunks.length; k++)
        await set.withChunk(k, () => {
          assert.is(live() - start, drawBytes(set.chunks[k].samples), `chunk ${k}: its own rows only`);
        });
      assert.is(live(), start, 'freed after use');
      const stacked = set.stack();
      stacked?.dispose();
      const batched = live();
      if (stacked) assert.is(batched - start, drawBytes(SAMPLES), 'the stacked data: one copy of all N');
      set.concatenated();
      // Equal chunks: the concatenated set is a view of the stacked one; unequal: one copy of all N.
      assert.is(live(), stacked ? batched : start + drawBytes(SAMPLES), 'one copy of the set');
    } finally {
      set.dispose();
    }
    assert.is(live(), start, 'everything freed with the set');
  }
  for (const p of params) p.dispose();
});

test('batch means: equal chunks give s/√K; one chunk has no standard error', () => {
  const values = [1, 2, 4, 5];
  const { mean, standardError } = batchMean(values, [0.25, 0.25, 0.25, 0.25]);
  assert.is(mean, 3);
  // s² = (4 + 1 + 1 + 4) / 3
  assert.ok(Math.abs(standardError - Math.sqrt(10 / 3 / 4)) < 1e-12);
  assert.ok(Number.isNaN(batchMean([7], [1]).standardError));
});

test('chunk size: N over the chunks asked for, fewer rows when one chunk would exceed the memory budget', () => {
  assert.is(chunkSamples(200, 8, 4, 10), 25);
  assert.is(chunkSamples(201, 8, 4, 10), 26);
  assert.is(chunkSamples(3, 8, 1, 1), 1);
  // 2²² floats over 64 replicas × 1024 floats a row: 64 rows.
  assert.is(chunkSamples(1_000_000, 8, 64, 1024), 64);
});

test.run();
