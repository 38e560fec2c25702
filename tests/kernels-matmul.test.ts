import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadShaderSources } from '../runner/node/shaders.ts';
import { InputError, KernelError } from '../src/errors.ts';
import { expandIncludes } from '../src/gpu/shader/include.ts';
import { reflectShader } from '../src/gpu/shader/reflect.ts';
import {
  type Activation,
  MATMUL_VARIANTS,
  type MatmulVariant,
  matmul,
  matmulVariant,
  matmulVariantAvailable,
  SWIFTSHADER_SUBGROUP,
} from '../src/kernels/matmul.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { assertClose, dotTolerance, F32_EPS, randomArray, seededRandom } from './helpers/reference.ts';

const test = suite('matmul');
test.after(destroyTestEngine);

const SIZES = [1, 3, 17, 64, 129, 257];

interface Case {
  batchA: number;
  batchB: number;
  M: number;
  K: number;
  N: number;
  transposeA: boolean;
  transposeB: boolean;
  alpha?: number;
  beta?: number;
  bias?: 'shared' | 'per-replica';
  /** A whole [M, N] addend instead of a bias. */
  addend?: 'shared' | 'per-replica';
  activation?: Activation;
  /** Kernel variant to force; undefined runs the one matmul picks for this adapter. */
  variant?: MatmulVariant;
}

/** float64 reference of the kernel's contract, on f32-rounded inputs; also returns Σ|a·b| per output. */
function reference(
  c: Case,
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array | undefined,
  bias: Float32Array | undefined,
  addend: Float32Array | undefined,
) {
  const batch = Math.max(c.batchA, c.batchB);
  const out = new Float64Array(batch * c.M * c.N);
  const magnitude = new Float64Array(out.length);
  for (let r = 0; r < batch; r++) {
    const aBase = c.batchA === 1 ? 0 : r * c.M * c.K;
    const bBase = c.batchB === 1 ? 0 : r * c.K * c.N;
    for (let i = 0; i < c.M; i++) {
      for (let j = 0; j < c.N; j++) {
        let sum = 0;
        let abs = 0;
        for (let k = 0; k < c.K; k++) {
          const av = a[aBase + (c.transposeA ? k * c.M + i : i * c.K + k)];
          const bv = b[bBase + (c.transposeB ? j * c.K + k : k * c.N + j)];
          sum += av * bv;
          abs += Math.abs(av * bv);
        }
        const o = (r * c.M + i) * c.N + j;
        let value = (c.alpha ?? 1) * sum;
        abs *= Math.abs(c.alpha ?? 1);
        if (c0 && c.beta) {
          value += c.beta * c0[o];
          abs += Math.abs(c.beta * c0[o]);
        }
        if (bias) {
          const bv = bias[(c.bias === 'per-replica' ? r * c.N : 0) + j];
          value += bv;
          abs += Math.abs(bv);
        }
        if (addend) {
          const dv = addend[(c.addend === 'per-replica' ? r * c.M * c.N : 0) + i * c.N + j];
          value += dv;
          abs += Math.abs(dv);
        }
        if (c.activation === 'relu') value = Math.max(0, value);
        if (c.activation === 'tanh') value = Math.tanh(value);
        out[o] = value;
        magnitude[o] = abs;
      }
    }
  }
  return { out, magnitude };
}

async function check(c: Case, seed: number): Promise<void> {
  const engine = await testEngine();
  // The subgroup kernel runs only on SwiftShader with subgroups (elsewhere matmul refuses it, below).
  if (c.variant && !matmulVariantAvailable(engine, c.variant)) return;
  const random = seededRandom(seed);
  const batch = Math.max(c.batchA, c.batchB);
  const a = Float32Array.from(randomArray(random, c.batchA * c.M * c.K));
  const b = Float32Array.from(randomArray(random, c.batchB * c.K * c.N));
  const c0 = c.beta ? Float32Array.from(randomArray(random, batch * c.M * c.N)) : undefined;
  const biasBatch = c.bias === 'per-replica' ? batch : 1;
  const bias = c.bias ? Float32Array.from(randomArray(random, biasBatch * c.N)) : undefined;
  const addendBatch = c.addend === 'per-replica' ? batch : 1;
  const addend = c.addend ? Float32Array.from(randomArray(random, addendBatch * c.M * c.N)) : undefined;
  const ta = engine.tensor(a, c.transposeA ? [c.K, c.M] : [c.M, c.K], { batch: c.batchA });
  const tb = engine.tensor(b, c.transposeB ? [c.N, c.K] : [c.K, c.N], { batch: c.batchB });
  const tout = c0 ? engine.tensor(c0, [c.M, c.N], { batch }) : undefined;
  const tbias = bias ? engine.tensor(bias, [c.N], { batch: biasBatch }) : undefined;
  const taddend = addend ? engine.tensor(addend, [c.M, c.N], { batch: addendBatch }) : undefined;
  const result = matmul(engine, ta, tb, {
    transposeA: c.transposeA,
    transposeB: c.transposeB,
    alpha: c.alpha,
    beta: c.beta,
    out: tout,
    bias: tbias,
    addend: taddend,
    activation: c.activation,
    variant: c.variant,
  });
  const got = await result.read();
  const { out, magnitude } = reference(c, a, b, c0, bias, addend);
  // tanh and relu are 1-Lipschitz; tanh adds a few ulp of its own.
  const extra = c.activation === 'tanh' ? 8 * F32_EPS : 0;
  assertClose(got, out, (i) => dotTolerance(c.K, magnitude[i]) + extra, `matmul ${JSON.stringify(c)}`);
  for (const t of [ta, tb, tout, tbias, taddend, result]) t?.dispose();
}

// Every variant runs every case: each size appears in every role (a cyclic design over M, K, N), for
// all transposes and batches, plus broadcasting, alpha/beta, bias and activations.
let seed = 1;
for (const [v, variant] of (Object.keys(MATMUL_VARIANTS) as MatmulVariant[]).entries()) {
  const offset = 100 * v;
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      for (const batch of [1, 7]) {
        for (let s = 0; s < SIZES.length; s++) {
          const [M, K, N] = [SIZES[s], SIZES[(s + 2) % SIZES.length], SIZES[(s + 4) % SIZES.length]];
          if (M * K * N * batch > 2_000_000) continue; // keep the float64 reference fast
          const c: Case = { batchA: batch, batchB: batch, M, K, N, transposeA, transposeB, variant };
          const caseSeed = seed++;
          test(`${variant}: M=${M} K=${K} N=${N} batch=${batch} ${transposeA ? 'Aᵀ' : 'A'}${transposeB ? 'Bᵀ' : 'B'}`, () =>
            check(c, caseSeed));
        }
      }
    }
  }

  test(`${variant}: largest sizes in every role (257×129×257, batch 1, AᵀBᵀ)`, () =>
    check(
      { batchA: 1, batchB: 1, M: 257, K: 129, N: 257, transposeA: true, transposeB: true, variant },
      900 + offset,
    ));

  test(`${variant}: broadcast: A shared by 7 replicas of B`, () =>
    check(
      { batchA: 1, batchB: 7, M: 17, K: 64, N: 3, transposeA: false, transposeB: true, variant },
      901 + offset,
    ));
  test(`${variant}: broadcast: B shared by 7 replicas of A`, () =>
    check(
      { batchA: 7, batchB: 1, M: 129, K: 3, N: 17, transposeA: true, transposeB: false, variant },
      902 + offset,
    ));
  test(`${variant}: alpha, beta accumulate into C`, () =>
    check(
      {
        batchA: 7,
        batchB: 7,
        M: 17,
        K: 17,
        N: 64,
        transposeA: false,
        transposeB: false,
        alpha: -0.5,
        beta: 0.75,
        variant,
      },
      903 + offset,
    ));
  test(`${variant}: fused shared bias and relu`, () =>
    check(
      {
        batchA: 7,
        batchB: 1,
        M: 64,
        K: 17,
        N: 3,
        transposeA: false,
        transposeB: true,
        bias: 'shared',
        activation: 'relu',
        variant,
      },
      904 + offset,
    ));
  test(`${variant}: fused per-replica bias and tanh`, () =>
    check(
      {
        batchA: 7,
        batchB: 7,
        M: 3,
        K: 129,
        N: 17,
        transposeA: true,
        transposeB: false,
        bias: 'per-replica',
        activation: 'tanh',
        variant,
      },
      905 + offset,
    ));
  test(`${variant}: fused per-replica [M, N] addend (gradient contributions summed in the product)`, () =>
    check(
      {
        batchA: 7,
        batchB: 7,
        M: 17,
        K: 33,
        N: 5,
        transposeA: true,
        transposeB: false,
        addend: 'per-replica',
        variant,
      },
      906 + offset,
    ));
  test(`${variant}: fused shared addend with relu, B shared`, () =>
    check(
      {
        batchA: 7,
        batchB: 1,
        M: 64,
        K: 3,
        N: 17,
        transposeA: false,
        transposeB: true,
        addend: 'shared',
        activation: 'relu',
        variant,
      },
      907 + offset,
    ));
}

test('every variant reflects to the same bindings and uniforms as matmul.wgsl (and the tiled ones to its overrides)', () => {
  const sources = loadShaderSources();
  const describe = (file: string) => {
    const shader = reflectShader(file, expandIncludes(file, sources).code);
    const entry = shader.entries.get('main');
    assert.ok(entry, `${file} has an entry 'main'`);
    return {
      bindings: entry.bindings.map((b) => [b.name, b.binding, b.kind, b.elementType]),
      uniform: entry.uniform?.members.map((m) => [m.name, m.offset]),
      overrides: shader.overrides.map((o) => o.name).sort(),
    };
  };
  const base = describe('matmul.wgsl');
  assert.is(base.bindings.length, 5, 'the includes are expanded');
  for (const { shader } of Object.values(MATMUL_VARIANTS)) {
    const variant = describe(shader);
    assert.equal(variant.bindings, base.bindings, shader);
    assert.equal(variant.uniform, base.uniform, shader);
    // The flattened kernel has a one-dimensional workgroup (WG) instead of WG_X × WG_Y.
    assert.equal(variant.overrides, shader === 'matmul_flat.wgsl' ? ['WG'] : base.overrides, shader);
  }
});

test('matmulVariant: 16×8 on SwiftShader unless M < 16, workgroups fitted to the result', async () => {
  const engine = await testEngine();
  if (engine.context.adapterInfo.architecture !== 'swiftshader') {
    assert.equal(matmulVariant(engine, 512, 512), { variant: 'tile4x4', workgroup: [8, 8] });
    return;
  }
  // Results wider than 16 columns take the subgroup form of the 16×8 kernel where subgroups exist.
  const wide = matmulVariantAvailable(engine, 'subgroup16x8') ? 'subgroup16x8' : 'tile16x8';
  assert.equal(matmulVariant(engine, 512, 512), { variant: wide, workgroup: [8, 4] });
  assert.equal(matmulVariant(engine, 64, 4096), { variant: wide, workgroup: [8, 4] });
  assert.equal(matmulVariant(engine, 32, 32), { variant: wide, workgroup: [4, 2] });
  assert.equal(matmulVariant(engine, 64, 20), { variant: wide, workgroup: [4, 4] });
  assert.equal(matmulVariant(engine, 64, 16), { variant: 'tile16x8', workgroup: [2, 4] });
  assert.equal(matmulVariant(engine, 4096, 3), { variant: 'tile16x8', workgroup: [1, 4] });
  assert.equal(matmulVariant(engine, 3, 17), { variant: 'tile4x4', workgroup: [8, 1] });
  assert.equal(matmulVariant(engine, 3, 17, 'tile16x8'), { variant: 'tile16x8', workgroup: [4, 1] });
  if (wide === 'subgroup16x8') {
    // Forced onto a narrow result, its workgroup is still a whole subgroup wide.
    assert.equal(matmulVariant(engine, 3, 5, 'subgroup16x8'), { variant: 'subgroup16x8', workgroup: [4, 1] });
  }
});

test('subgroup16x8: bit for bit the 16×8 kernel (same products, same order), edges and N, K < 4 included', async () => {
  const engine = await testEngine();
  if (!matmulVariantAvailable(engine, 'subgroup16x8')) {
    const a = engine.empty([4, 4]);
    assert.throws(
      () => matmul(engine, a, a, { variant: 'subgroup16x8' }),
      /needs SwiftShader with the subgroups/,
    );
    a.dispose();
    return;
  }
  const random = seededRandom(4242);
  // [batch, M, K, N, Aᵀ, Bᵀ, workgroup]: partial row and column blocks, K odd and < 4, N < 4 (WG_X
  // padded to a subgroup), wider workgroups, rows past the last workgroup row.
  const cases: [number, number, number, number, boolean, boolean, [number, number]?][] = [
    [3, 37, 21, 45, false, false],
    [2, 16, 1, 3, true, false],
    [2, 19, 3, 2, false, true],
    [1, 70, 5, 130, true, true],
    [4, 33, 8, 24, false, false, [8, 1]],
    [1, 50, 7, 9, true, true, [4, 4]],
  ];
  for (const [batch, M, K, N, transposeA, transposeB, workgroup] of cases) {
    const a = engine.tensor(randomArray(random, batch * M * K), transposeA ? [K, M] : [M, K], { batch });
    const b = engine.tensor(randomArray(random, batch * K * N), transposeB ? [N, K] : [K, N], { batch });
    const options = { transposeA, transposeB };
    const plain = await matmul(engine, a, b, { ...options, variant: 'tile16x8' }).read();
    const shared = await matmul(engine, a, b, { ...options, variant: 'subgroup16x8', workgroup }).read();
    assert.equal(Array.from(shared), Array.from(plain), `${batch}×${M}×${K}×${N}`);
    for (const t of [a, b]) t.dispose();
  }
  const a = engine.empty([32, 32]);
  assert.throws(
    () => matmul(engine, a, a, { variant: 'subgroup16x8', workgroup: [SWIFTSHADER_SUBGROUP + 2, 1] }),
    (error: unknown) => error instanceof InputError && /multiple of 4/.test(String(error)),
  );
  a.dispose();
});

test('an unknown variant is an input error', async () => {
  const engine = await testEngine();
  const a = engine.empty([4, 4]);
  assert.throws(
    () => matmul(engine, a, a, { variant: 'tile99' as MatmulVariant }),
    (error: unknown) => error instanceof InputError && /unknown variant 'tile99'/.test(String(error)),
  );
  a.dispose();
});

test('mismatched inner dimensions are an input error before any launch', async () => {
  const engine = await testEngine();
  const a = engine.empty([3, 4]);
  const b = engine.empty([5, 2]);
  assert.throws(() => matmul(engine, a, b), /inner dimensions differ/);
  a.dispose();
  b.dispose();
});

test('a bad addend is an input error before any launch: wrong shape, with a bias, or the output itself', async () => {
  const engine = await testEngine();
  const a = engine.empty([3, 4]);
  const b = engine.empty([4, 2]);
  const wrong = engine.empty([3, 3]);
  const out = engine.empty([3, 2]);
  const bias = engine.empty([2]);
  const launches = engine.scheduler.launches;
  assert.throws(() => matmul(engine, a, b, { addend: wrong }), /matmul\.addend.*expected \[3, 2\]/);
  assert.throws(() => matmul(engine, a, b, { addend: out, bias }), /bias or an addend, not both/);
  assert.throws(() => matmul(engine, a, b, { addend: out, out }), /shares memory with `out`/);
  assert.is(engine.scheduler.launches, launches, 'nothing was launched');
  for (const t of [a, b, wrong, out, bias]) t.dispose();
});

test('an output buffer too small for the shapes names kernel, binding and sizes', async () => {
  const engine = await testEngine();
  const a = engine.empty([64, 64]);
  const b = engine.empty([64, 64]);
  const small = engine.empty([8, 8]);
  // Bypass matmul()'s own shape check to exercise the registry's per-binding size check.
  let message = '';
  try {
    engine.launch({
      kernel: 'matmul',
      shader: 'matmul.wgsl',
      buffers: {
        a: { tensor: a },
        b: { tensor: b },
        bias: { tensor: a },
        c: { tensor: small, minBytes: 64 * 64 * 4 },
      },
      uniforms: {},
      workgroups: [2, 2, 1],
    });
  } catch (error) {
    assert.instance(error, KernelError);
    message = (error as Error).message;
  }
  assert.match(message, /kernel 'matmul'/);
  assert.match(message, /binding 'c'/);
  assert.match(message, /16384 bytes/);
  assert.match(message, /has 256/);
  for (const t of [a, b, small]) t.dispose();
});

test.run();
