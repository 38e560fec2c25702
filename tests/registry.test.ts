import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadShaderSources } from '../runner/node/shaders.ts';
import { KernelError } from '../src/errors.ts';
import { expandIncludes } from '../src/gpu/shader/include.ts';
import { packUniforms, reflectShader } from '../src/gpu/shader/reflect.ts';
import { compileShader, KernelRegistry, shaderSupported } from '../src/gpu/shader/registry.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('kernel registry');
test.after(destroyTestEngine);

test('matmul.wgsl reflects to the bindings, order and uniform offsets written in the shader', () => {
  const source = expandIncludes('matmul.wgsl', loadShaderSources()).code;
  const shader = reflectShader('matmul.wgsl', source);
  const entry = shader.entries.get('main');
  assert.ok(entry);
  assert.equal(
    entry.bindings.map((b) => [b.name, b.binding, b.kind, b.elementType]),
    [
      ['a', 0, 'read-only-storage', 'f32'],
      ['b', 1, 'read-only-storage', 'f32'],
      ['bias', 2, 'read-only-storage', 'f32'],
      ['c', 3, 'storage', 'f32'],
      ['params', 4, 'uniform', 'Params'],
    ],
  );
  // Sixteen 4-byte scalars in declaration order, as WGSL lays them out.
  const names = [
    'M',
    'N',
    'K',
    'aBatch',
    'aRow',
    'aCol',
    'bBatch',
    'bRow',
    'bCol',
    'biasBatch',
    'biasRow',
    'hasBias',
    'activation',
    'alpha',
    'beta',
    'batch',
  ];
  assert.equal(
    entry.uniform?.members.map((m) => [m.name, m.offset]),
    names.map((n, i) => [n, 4 * i]),
  );
  assert.equal(entry.uniform?.size, 64);
  assert.equal(shader.overrides.map((o) => o.name).sort(), ['WG_X', 'WG_Y']);
});

test('vector members follow WGSL alignment; packing writes typed values at those offsets', () => {
  const shader = reflectShader(
    'test.wgsl',
    `struct P { a: u32, v: vec2<f32>, w: vec3<i32>, s: f32 }
     @group(0) @binding(0) var<uniform> p: P;
     @group(0) @binding(1) var<storage, read_write> o: array<f32>;
     @compute @workgroup_size(1) fn main() { o[0] = p.v.x + f32(p.w.y) + p.s + f32(p.a); }`,
  );
  const layout = shader.entries.get('main')?.uniform;
  assert.ok(layout);
  assert.equal(
    layout.members.map((m) => [m.name, m.offset, m.components]),
    [
      ['a', 0, 1],
      ['v', 8, 2],
      ['w', 16, 3],
      ['s', 28, 1],
    ],
  );
  const bytes = new DataView(packUniforms('test', layout, { a: 7, v: [0.5, -1], w: [1, -2, 3], s: 2.5 }));
  assert.is(bytes.getUint32(0, true), 7);
  assert.is(bytes.getFloat32(12, true), -1);
  assert.is(bytes.getInt32(20, true), -2);
  assert.is(bytes.getFloat32(28, true), 2.5);
  assert.throws(() => packUniforms('test', layout, { a: 1, v: [0, 0], w: [0, 0, 0] }), /'p.s' was not given/);
  assert.throws(
    () => packUniforms('test', layout, { a: 1, v: [0, 0], w: [0, 0, 0], s: 0, extra: 1 }),
    /no field 'extra'/,
  );
  assert.throws(
    () => packUniforms('test', layout, { a: -1, v: [0, 0], w: [0, 0, 0], s: 0 }),
    /does not fit u32/,
  );
});

test('a WGSL syntax error reports file, line and column', async () => {
  const engine = await testEngine();
  const broken =
    'struct P { n: u32 }\n@group(0) @binding(0) var<uniform> p: P;\n@compute @workgroup_size(1)\nfn main() {\n  let x = p.n +;\n}\n';
  let message = '';
  try {
    await compileShader(engine.device, 'broken.wgsl', broken);
  } catch (error) {
    assert.instance(error, KernelError);
    message = (error as Error).message;
  }
  assert.match(message, /shaders\/broken\.wgsl:5:\d+: error/);
  assert.match(message, /let x = p\.n \+;/);
});

test('an error inside an included file points at that file and line', async () => {
  const engine = await testEngine();
  const library = { 'lib.wgsl': 'fn helper() -> f32 {\n  return 1.0\n}\n' };
  const main = '//!include lib.wgsl\n@compute @workgroup_size(1) fn main() { _ = helper(); }\n';
  try {
    await compileShader(engine.device, 'main.wgsl', main, library);
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match(
      (error as Error).message,
      /shaders\/lib\.wgsl:[23]:\d+: error.*\(included from shaders\/main\.wgsl\)/,
    );
  }
  assert.throws(
    () => expandIncludes('a.wgsl', { 'a.wgsl': '//!include b.wgsl', 'b.wgsl': '//!include a.wgsl' }),
    /include cycle: a\.wgsl → b\.wgsl → a\.wgsl/,
  );
});

test('a shader whose `enable` names a feature the device lacks is not compiled (and start-up does not fail)', async () => {
  const engine = await testEngine();
  const body = '@compute @workgroup_size(1) fn main() {}';
  // 'chromium_experimental_nothing' is no WebGPU feature: no device has it.
  const registry = await KernelRegistry.create(engine.device, {
    'plain.wgsl': body,
    'missing.wgsl': `enable chromium_experimental_nothing;\n${body}`,
  });
  assert.ok(registry.reflection('plain.wgsl').entries.has('main'));
  assert.throws(() => registry.reflection('missing.wgsl'), /no such shader/);
  assert.is(shaderSupported(engine.device, `enable f16;\n${body}`), engine.device.features.has('shader-f16'));
  assert.is(
    shaderSupported(engine.device, `enable subgroups;\n${body}`),
    engine.device.features.has('subgroups'),
  );
});

test('registry start-up fails on a broken shader and names it', async () => {
  const engine = await testEngine();
  const sources = { 'ok.wgsl': '@compute @workgroup_size(1) fn main() {}', 'bad.wgsl': 'fn main( {' };
  try {
    await KernelRegistry.create(engine.device, sources);
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match((error as Error).message, /bad\.wgsl:1:/);
  }
});

test('a //!fragment compiles inside its includers, with their alias; its errors point into it; an orphan, or an included file without the mark, is refused', async () => {
  const engine = await testEngine();
  const fragment = '//!fragment: needs Scalar\nfn twice(x: Scalar) -> Scalar {\n  return x + x;\n}\n';
  const main = (type: string) =>
    `alias Scalar = ${type};\n//!include frag.wgsl\n@compute @workgroup_size(1) fn main() { _ = twice(Scalar(1)); }\n`;
  const registry = await KernelRegistry.create(engine.device, {
    'frag.wgsl': fragment,
    'f32.wgsl': main('f32'),
    'i32.wgsl': main('i32'),
  });
  assert.ok(registry.reflection('f32.wgsl').entries.has('main'));
  assert.throws(() => registry.reflection('frag.wgsl'), /no such shader/);

  const broken = fragment.replace('x + x', 'x + ');
  try {
    await KernelRegistry.create(engine.device, { 'frag.wgsl': broken, 'f32.wgsl': main('f32') });
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match(
      (error as Error).message,
      /shaders\/frag\.wgsl:[34]:\d+: error.*\(included from shaders\/f32\.wgsl\)/,
    );
  }
  try {
    await KernelRegistry.create(engine.device, {
      'frag.wgsl': fragment,
      'ok.wgsl': '@compute @workgroup_size(1) fn main() {}',
    });
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match((error as Error).message, /frag\.wgsl.*no shader includes/);
  }
  try {
    await KernelRegistry.create(engine.device, {
      'frag.wgsl': fragment.replace('//!fragment: needs Scalar\n', ''),
      'f32.wgsl': main('f32'),
    });
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match((error as Error).message, /frag\.wgsl.*included by f32\.wgsl.*\/\/!fragment/);
  }
});

test('pipelines are cached by (shader, entry, constants); unknown overrides are refused', async () => {
  const engine = await testEngine();
  const before = engine.registry.pipelineCount;
  const p1 = engine.registry.pipeline('matmul', 'matmul.wgsl', 'main', { WG_X: 4, WG_Y: 4 });
  const p2 = engine.registry.pipeline('matmul', 'matmul.wgsl', 'main', { WG_Y: 4, WG_X: 4 });
  const p3 = engine.registry.pipeline('matmul', 'matmul.wgsl', 'main', { WG_X: 8, WG_Y: 4 });
  assert.is(p1, p2);
  assert.is.not(p1, p3);
  assert.is(engine.registry.pipelineCount, before + 2);
  assert.throws(
    () => engine.registry.pipeline('matmul', 'matmul.wgsl', 'main', { TILE: 4 }),
    /no override 'TILE'/,
  );
  assert.throws(() => engine.registry.pipeline('x', 'nope.wgsl', 'main'), /not loaded/);
  await engine.registry.checkPipelines();
});

test('invalid override values surface as a named pipeline error', async () => {
  const engine = await testEngine();
  // 4096 invocations per workgroup is above every adapter's limit.
  engine.registry.pipeline('matmul', 'matmul.wgsl', 'main', { WG_X: 64, WG_Y: 64 });
  try {
    await engine.registry.checkPipelines();
    assert.unreachable('should have thrown');
  } catch (error) {
    assert.match((error as Error).message, /kernel 'matmul': pipeline creation failed/);
  }
});

test('a dispatch beyond maxComputeWorkgroupsPerDimension is refused before encoding', async () => {
  const engine = await testEngine();
  const t = engine.empty([4]);
  const max = engine.limits.maxComputeWorkgroupsPerDimension;
  assert.throws(
    () =>
      engine.launch({
        kernel: 'gather',
        shader: 'gather.wgsl',
        buffers: { src: { tensor: t }, index: { tensor: t }, out: { tensor: t } },
        uniforms: { rows: 1, rowLength: 1, srcRows: 1, total: 1, srcBatch: 0, indexBatch: 0, rowStride: 1 },
        workgroups: [max + 1],
      }),
    /exceeds maxComputeWorkgroupsPerDimension/,
  );
  t.dispose();
});

test('the scheduler batches launches into one submit per flush and the pool reuses buffers', async () => {
  const engine = await testEngine();
  const { unary } = await import('../src/kernels/elementwise.ts');
  engine.flush();
  const submits = engine.scheduler.submits;
  const x = engine.tensor([1, 2, 3, 4], [4]);
  let y = x;
  for (let i = 0; i < 20; i++) {
    const next = unary(engine, 'affine', y, { alpha: 1, beta: 1 });
    if (y !== x) y.dispose();
    y = next;
  }
  assert.is(engine.scheduler.pending, 20);
  const got = await y.read();
  assert.equal(Array.from(got), [21, 22, 23, 24]);
  assert.is(engine.scheduler.submits, submits + 1, 'twenty launches and a readback in one submit');
  const stats = engine.pool.stats();
  assert.ok(stats.reuses >= 18, `pool reused ${stats.reuses} buffers`);
  x.dispose();
  y.dispose();
});

test('concatReplicas lays the replicas of its parts end to end, ordered after earlier launches; mismatched parts are refused', async () => {
  const engine = await testEngine();
  const { unary } = await import('../src/kernels/elementwise.ts');
  const a = engine.tensor([1, 2, 3, 4], [2], { batch: 2 });
  const b = engine.tensor([5, 6], [2]);
  // Written by a launch still in the open pass: the copy must see its result.
  const doubled = unary(engine, 'affine', b, { alpha: 2, beta: 0 });
  const joined = engine.concatReplicas([a, doubled], { label: 'joined' });
  assert.is(joined.batch, 3);
  assert.equal([...joined.shape], [2]);
  assert.equal(Array.from(await joined.read()), [1, 2, 3, 4, 10, 12]);
  const other = engine.tensor([1, 2, 3], [3]);
  assert.throws(() => engine.concatReplicas([a, other]), /concatReplicas\[1\]/);
  for (const t of [a, b, doubled, joined, other]) t.dispose();
});

test.run();
