import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spectralDensity } from '../src/curvature/density.ts';
import { gradientFluctuation } from '../src/curvature/fluctuation.ts';
import { powerIteration, topEigenvalues } from '../src/curvature/lanczos.ts';
import { measureCurvature } from '../src/curvature/measure.ts';
import { HessianOperator } from '../src/curvature/operator.ts';
import { randomVectors } from '../src/curvature/probes.ts';
import { hessianTrace } from '../src/curvature/trace.ts';
import { InputError } from '../src/errors.ts';
import type { Tensor } from '../src/tensor/engine.ts';
import { centralGradient } from './helpers/cpu-models.ts';
import { type CurvatureInstance, FUSED_MODEL_CASES, MODEL_CASES } from './helpers/curvature-cases.ts';
import { eigenvalues, F32_EPS, spectralNorm } from './helpers/curvature-reference.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { shadersLaunched } from './helpers/launches.ts';

const test = suite(
  'curvature: one measurement round (measureCurvature) and probe streams of shards (replicaOffset)',
);
test.after(destroyTestEngine);

const R = 2;

/** Each Hv entry is a length-n f32 dot product: error ≤ n·u·‖H‖ per entry (γ_n bound, ‖v‖∞ = 1). */
function entryTolerance(H: number[][]): number {
  return 4 * H.length * F32_EPS * spectralNorm(eigenvalues(H)) + 1e-6;
}

/** Float64 per-sample gradients of every replica by central differences. */
function sampleGradients(instance: CurvatureInstance): number[][][] {
  const cpu = instance.cpu!;
  return Array.from({ length: R }, (_, r) => {
    const theta = cpu.theta(r);
    return Array.from({ length: cpu.samples }, (_, s) =>
      Array.from(centralGradient((t) => cpu.sampleLoss(r, s, t), theta)),
    );
  });
}

const squaredNorm = (g: readonly number[]) => g.reduce((a, v) => a + v * v, 0);

/** f32 gradients to a few hundred ulps of their largest entry (as in the autodiff tests). */
function gradientError(g: readonly number[]): number {
  return 512 * F32_EPS * Math.max(...g.map(Math.abs)) * Math.sqrt(g.length) + 1e-9;
}

for (const c of [...MODEL_CASES, ...FUSED_MODEL_CASES]) {
  test(`${c.name}: the dense round's trace, λ_max and fluctuation match float64 Hessians and gradients`, async () => {
    const engine = await testEngine();
    const instance = c.build(engine, R, 41);
    try {
      const n = instance.operator.size;
      const request = { trace: true, lambdaMax: true, fluctuation: true };
      await measureCurvature(instance.operator, request); // first use creates cached index and bias tensors
      const submits = engine.scheduler.submits;
      const got = await measureCurvature(instance.operator, request);
      // Hessian columns and per-sample gradients go back in one readback (one submit).
      assert.is(engine.scheduler.submits - submits, 1, 'one submit for the whole round');
      assert.equal(got.methods, { trace: 'dense', lambdaMax: 'dense' });
      const reference = await instance.reference();
      const gradients = sampleGradients(instance);
      reference.forEach((H, r) => {
        const tol = entryTolerance(H);
        const trace = H.reduce((s, row, i) => s + row[i], 0);
        const top = Math.max(...eigenvalues(H));
        assert.ok(
          Math.abs(got.trace![r] - trace) <= n * tol,
          `replica ${r}: trace ${got.trace![r]} vs ${trace}`,
        );
        // Weyl: |λ(H + E) − λ(H)| ≤ ‖E‖₂ ≤ n·max|E_ij|.
        assert.ok(
          Math.abs(got.lambdaMax![r] - top) <= n * tol,
          `replica ${r}: λ_max ${got.lambdaMax![r]} vs ${top}`,
        );
        const norms = gradients[r].map(squaredNorm);
        const S = norms.reduce((a, b) => a + b, 0) / norms.length;
        const bound =
          gradients[r].reduce((a, g) => a + 2 * Math.sqrt(squaredNorm(g)) * gradientError(g), 0) /
          norms.length;
        assert.ok(
          Math.abs(got.fluctuation![r] - S) <= bound,
          `replica ${r}: S ${got.fluctuation![r]} vs ${S}`,
        );
      });
    } finally {
      instance.dispose();
    }
  });
}

test('fused H·v: the dense round launches the fused kernel and no matmul; H·v by applyFlat, apply and applyBlock (inside atPoint and out) matches the float64 Hessian', async () => {
  const engine = await testEngine();
  for (const c of FUSED_MODEL_CASES) {
    const instance = c.build(engine, R, 45);
    const { operator } = instance;
    try {
      const shaders = await shadersLaunched(engine, () =>
        measureCurvature(operator, { trace: true, lambdaMax: true }),
      );
      assert.ok(shaders.has('fused_hvp_narrow.wgsl'), `${c.name}: ${[...shaders]}`);
      assert.not.ok(
        shaders.has('matmul.wgsl') || shaders.has('matmul_flat.wgsl'),
        `${c.name}: ${[...shaders]}`,
      );
      const reference = await instance.reference();
      const n = operator.size;
      const v = Array.from({ length: R * n }, (_, i) => Math.sin(1.7 * i + 0.3));
      const want = reference.map((H, r) => H.map((row) => row.reduce((s, h, j) => s + h * v[r * n + j], 0)));
      const check = (got: ArrayLike<number>, how: string, offset = 0, length = n) =>
        reference.forEach((H, r) => {
          const tol = n * entryTolerance(H);
          for (let i = 0; i < length; i++)
            assert.ok(
              Math.abs(got[r * length + i] - want[r][offset + i]) <= tol,
              `${c.name} ${how}, replica ${r}, entry ${offset + i}: ${got[r * length + i]} vs ${want[r][offset + i]}`,
            );
        });
      const flat = engine.tensor(v, [n], { batch: R });
      const outside = operator.applyFlat(flat);
      check(await outside.read(), 'applyFlat');
      const inside = await operator.atPoint(async () => operator.applyFlat(flat));
      check(await inside.read(), 'applyFlat at a point');
      const parts = operator.unpack(flat);
      const products = operator.apply(parts);
      const packed = operator.pack(products, engine.empty([n], { batch: R }));
      check(await packed.read(), 'apply');
      const { offsets, sizes } = operator.layout;
      const last = offsets.length - 1;
      const block = operator.applyBlock(last, parts[last]);
      // H_pp v_p of the last parameter: the float64 block times v's block.
      const blockWant = reference.map((H, r) =>
        Array.from({ length: sizes[last] }, (_, i) =>
          H[offsets[last] + i]
            .slice(offsets[last])
            .reduce((s, h, j) => s + (j < sizes[last] ? h * v[r * n + offsets[last] + j] : 0), 0),
        ),
      );
      const gotBlock = await block.read();
      reference.forEach((H, r) => {
        for (let i = 0; i < sizes[last]; i++)
          assert.ok(
            Math.abs(gotBlock[r * sizes[last] + i] - blockWant[r][i]) <= n * entryTolerance(H),
            `${c.name} applyBlock, replica ${r}, entry ${i}: ${gotBlock[r * sizes[last] + i]} vs ${blockWant[r][i]}`,
          );
      });
      for (const t of [flat, outside, inside, packed, block, ...parts, ...products]) t.dispose();
    } finally {
      instance.dispose();
    }
  }
});

test('‖ḡ‖² (summed from the per-sample gradients, or from a pass of the mean loss when they come in chunks) equals the float64 gradient of the mean loss', async () => {
  const engine = await testEngine();
  for (const c of MODEL_CASES.slice(0, 2)) {
    const instance = c.build(engine, R, 43);
    try {
      const gradients = sampleGradients(instance);
      for (const samplesPerLaunch of [5, instance.cpu!.samples]) {
        const result = await gradientFluctuation(instance.operator, { samplesPerLaunch });
        gradients.forEach((gs, r) => {
          const mean = gs[0].map((_, k) => gs.reduce((a, g) => a + g[k], 0) / gs.length);
          const want = squaredNorm(mean);
          const delta = Math.max(...gs.map(gradientError));
          const bound = (2 * Math.sqrt(want) + delta) * delta;
          assert.ok(
            Math.abs(result.meanGradientSquared[r] - want) <= bound,
            `${c.name}, ${samplesPerLaunch} per launch, replica ${r}: ‖ḡ‖² ${result.meanGradientSquared[r]} vs ${want}`,
          );
        });
      }
    } finally {
      instance.dispose();
    }
  }
});

test('without a dense Hessian: exact diagonal trace, Lanczos λ_max, Hutchinson within its standard error', async () => {
  const engine = await testEngine();
  const instance = MODEL_CASES[1].build(engine, R, 47);
  try {
    const n = instance.operator.size;
    const reference = await instance.reference();
    const exact = await measureCurvature(instance.operator, {
      trace: true,
      lambdaMax: true,
      denseMaxParameters: 1,
      lanczosSteps: n,
      seed: 2,
    });
    assert.equal(exact.methods, { trace: 'exact', lambdaMax: 'lanczos' });
    const probes = 256;
    const hutchinson = await measureCurvature(instance.operator, {
      trace: true,
      denseMaxParameters: 1,
      exactTraceMaxParameters: 1,
      probes,
      seed: 3,
    });
    assert.equal(hutchinson.methods, { trace: 'hutchinson' });
    reference.forEach((H, r) => {
      const tol = entryTolerance(H);
      const trace = H.reduce((s, row, i) => s + row[i], 0);
      const spectrum = eigenvalues(H);
      assert.ok(Math.abs(exact.trace![r] - trace) <= n * tol, `replica ${r}: exact trace`);
      // A full Krylov space (n steps) gives the eigenvalues; Lanczos' own tolerance is 1e-4 relative.
      const top = Math.max(...spectrum);
      assert.ok(
        Math.abs(exact.lambdaMax![r] - top) <= n * tol + 1e-4 * spectralNorm(spectrum),
        `replica ${r}: λ_max ${exact.lambdaMax![r]} vs ${top}`,
      );
      // Rademacher probes: Var zᵀHz = 2 Σ_{i≠j} H_ij².
      let offDiagonal = 0;
      H.forEach((row, i) => {
        row.forEach((v, j) => {
          if (i !== j) offDiagonal += v * v;
        });
      });
      const standardError = Math.sqrt((2 * offDiagonal) / probes);
      assert.ok(
        Math.abs(hutchinson.trace![r] - trace) <= 5 * standardError + n * tol,
        `replica ${r}: Hutchinson ${hutchinson.trace![r]} vs ${trace} (SE ${standardError})`,
      );
    });
  } finally {
    instance.dispose();
  }
});

test('H·v at a taped point (forward and gradient reused) equals a fresh H·v and frees its tensors', async () => {
  const engine = await testEngine();
  const instance = MODEL_CASES[MODEL_CASES.length - 1].build(engine, R, 59);
  const { operator } = instance;
  const vectors = [1, 2, 3].map((counter) =>
    randomVectors(operator, 'normal', { seed: 9, stream: 99, counter }),
  );
  try {
    const fresh: Float32Array[] = [];
    for (const v of vectors) {
      const hv = operator.applyFlat(v);
      fresh.push((await hv.read()) as Float32Array);
      hv.dispose();
    }
    const hvps = operator.hvps;
    await operator.atPoint(async () => {
      // The first backward is taped deferred: the first H·v makes the values of it that the second
      // pass reads and the point keeps them; from then on each H·v frees what it made.
      let live = 0;
      for (const [i, v] of vectors.entries()) {
        const hv = operator.applyFlat(v);
        const got = await hv.read();
        hv.dispose();
        if (i === 0) live = engine.pool.stats().liveBytes;
        else
          assert.is(
            engine.pool.stats().liveBytes,
            live,
            `vector ${i}: the second reverse pass freed its tensors`,
          );
        const scale = Math.max(...Array.from(fresh[i], Math.abs));
        got.forEach((value, k) => {
          assert.ok(
            Math.abs(value - fresh[i][k]) <= 1e-6 * scale,
            `vector ${i} entry ${k}: ${value} vs ${fresh[i][k]}`,
          );
        });
      }
    });
    assert.is(operator.hvps - hvps, vectors.length);
  } finally {
    for (const v of vectors) v.dispose();
    instance.dispose();
  }
});

test('a request for more top eigenvalues than parameters (or not a count) is refused by name before any launch', async () => {
  const engine = await testEngine();
  const instance = MODEL_CASES[0].build(engine, R, 61);
  try {
    const n = instance.operator.size;
    // Dense route (n within the dense limit) and the Lanczos route (dense limit 1).
    for (const route of [{}, { denseMaxParameters: 1, exactTraceMaxParameters: 1 }])
      for (const top of [n + 1, -1, 1.5]) {
        const launches = engine.scheduler.launches;
        const hvps = instance.operator.hvps;
        try {
          await measureCurvature(instance.operator, { lambdaMax: true, top, ...route });
          assert.unreachable(`top = ${top} was accepted`);
        } catch (error) {
          assert.instance(error, InputError);
          assert.is((error as InputError).field, 'top');
          assert.match((error as Error).message, `[0, ${n}]`);
        }
        assert.is(engine.scheduler.launches, launches, `top = ${top}: no launch`);
        assert.is(instance.operator.hvps, hvps, `top = ${top}: no H·v`);
      }
    // n itself is allowed: the whole spectrum.
    const all = await measureCurvature(instance.operator, { top: n });
    assert.is(all.top![0].length, n);
  } finally {
    instance.dispose();
  }
});

/** An operator over replicas [first, first + count) of another (parameters and data copied). */
async function slice(operator: HessianOperator, first: number, count: number): Promise<HessianOperator> {
  const engine = operator.engine;
  const part = async (t: Tensor) => {
    const all = await t.read();
    return engine.tensor(all.subarray(first * t.size, (first + count) * t.size), t.shape, { batch: count });
  };
  const params = await Promise.all(operator.params.map(part));
  const data: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(operator.data)) data[name] = await part(t);
  return HessianOperator.create(engine, { params, loss: operator.loss, evaluation: { data } });
}

test('a shard with replicaOffset k draws the probes of replicas k, k + 1 of the whole run', async () => {
  const engine = await testEngine();
  const whole = MODEL_CASES[0].build(engine, 4, 53);
  const k = 1;
  const shard = await slice(whole.operator, k, 2);
  try {
    const close = (a: number, b: number, what: string) =>
      assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: shard ${a}, whole ${b}`);
    const runs = [
      async (op: HessianOperator, replicaOffset?: number) =>
        (await hessianTrace(op, { probes: 6, probesPerLaunch: 3, seed: 4, replicaOffset })).samples,
      async (op: HessianOperator, replicaOffset?: number) =>
        (await topEigenvalues(op, 2, { maxSteps: 8, seed: 5, replicaOffset })).history,
      async (op: HessianOperator, replicaOffset?: number) =>
        (await powerIteration(op, { maxIterations: 5, seed: 6, replicaOffset })).history,
      async (op: HessianOperator, replicaOffset?: number) =>
        (await spectralDensity(op, { runs: 2, steps: 6, seed: 7, replicaOffset })).nodes,
      async (op: HessianOperator, replicaOffset?: number) =>
        (
          await measureCurvature(op, {
            trace: true,
            lambdaMax: true,
            denseMaxParameters: 1,
            exactTraceMaxParameters: 1,
            probes: 4,
            lanczosSteps: 6,
            seed: 8,
            replicaOffset,
          })
        ).trace!.map((t) => [t]),
    ];
    for (const [index, run] of runs.entries()) {
      const all = await run(whole.operator);
      const mine = await run(shard, k);
      const unkeyed = await run(shard);
      for (let r = 0; r < 2; r++) {
        assert.is(mine[r].length, all[k + r].length, `run ${index} replica ${r}: lengths`);
        mine[r].forEach((v, i) => {
          close(v, all[k + r][i], `run ${index} replica ${r} value ${i}`);
        });
      }
      // Control: without the offset replica 0 of the shard draws replica 0's probes, not replica k's.
      const differs = unkeyed[0].some(
        (v, i) => Math.abs(v - all[k][i]) > 1e-3 * Math.max(1, Math.abs(all[k][i])),
      );
      assert.ok(differs, `run ${index}: the offset changes the probes`);
    }
  } finally {
    shard.dispose();
    for (const t of [...shard.params, ...Object.values(shard.data)]) t.dispose();
    whole.dispose();
  }
});

test.run();
