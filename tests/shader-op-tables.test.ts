// The op codes a launch wrapper passes to a shader (and the few other numbers both sides must agree
// on: random streams, the fused kernels' size limits) are written twice: as TypeScript and as WGSL
// `const`s. Nothing else ties them together, so this reads the constants out of the shader source
// and compares them with the TypeScript values, name by name, in both directions.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadShaderSources } from '../runner/node/shaders.ts';
import { STREAM_INPUTS, STREAM_LABEL_NOISE } from '../src/data/source.ts';
import { BINARY_OPS, UNARY_OPS } from '../src/kernels/elementwise.ts';
import { FUSED_MAX_DEPTH, FUSED_MAX_WIDTH, RNN_MAX, TRANSFORMER_MAX } from '../src/kernels/fused.ts';
import { ACTIVATION_CODE } from '../src/kernels/matmul.ts';
import { REDUCE_OPS } from '../src/kernels/reduce.ts';

const test = suite('shader op tables');
const sources = loadShaderSources();

/** Every `const NAME = <n>u;` at the start of a line in the file, optionally only names with a prefix. */
function wgslConstants(file: string, prefix = ''): Map<string, number> {
  const source = sources[file];
  assert.ok(source, `${file} is among the shader sources`);
  const constants = new Map<string, number>();
  for (const match of source.matchAll(/^const\s+([A-Z][A-Z0-9_]*)\s*=\s*(\d+)u\s*;/gm)) {
    if (match[1].startsWith(prefix)) constants.set(match[1], Number(match[2]));
  }
  return constants;
}

/** `reluBackward` → `RELU_BACKWARD`, with an optional prefix (`REDUCE_`). */
function wgslName(key: string, prefix = ''): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Differences between a TypeScript table and the shader's constants, one line each (none: they agree). */
function tableMismatches(file: string, table: Record<string, number>, prefix = ''): string[] {
  const constants = wgslConstants(file, prefix);
  const expected = new Map(Object.entries(table).map(([key, code]) => [wgslName(key, prefix), code]));
  const mismatches: string[] = [];
  for (const [name, code] of expected) {
    if (!constants.has(name)) mismatches.push(`${file} declares no const ${name}`);
    else if (constants.get(name) !== code)
      mismatches.push(`${file}: ${name} = ${constants.get(name)}u, table ${code}`);
  }
  for (const name of constants.keys()) {
    if (!expected.has(name)) mismatches.push(`${file}: const ${name} has no entry in the TypeScript table`);
  }
  return mismatches;
}

test('elementwise.wgsl op constants equal UNARY_OPS and BINARY_OPS', () => {
  assert.equal(tableMismatches('elementwise.wgsl', { ...UNARY_OPS, ...BINARY_OPS }), []);
});

test('reduce.wgsl REDUCE_* constants equal REDUCE_OPS', () => {
  assert.equal(tableMismatches('reduce.wgsl', REDUCE_OPS, 'REDUCE_'), []);
});

test('matmul_common.wgsl ACTIVATION_* constants equal the matmul activation codes', () => {
  assert.equal(tableMismatches('matmul_common.wgsl', ACTIVATION_CODE, 'ACTIVATION_'), []);
});

test('fused_common.wgsl STREAM_* constants equal the Philox streams the general path draws data from', () => {
  const streams = { inputs: STREAM_INPUTS, labelNoise: STREAM_LABEL_NOISE };
  assert.equal(tableMismatches('fused_common.wgsl', streams, 'STREAM_'), []);
});

test("fused_deep_linear.wgsl MAX_* constants equal the fused path's width and depth limits", () => {
  const limits = {
    width: FUSED_MAX_WIDTH,
    depth: FUSED_MAX_DEPTH,
    weights: FUSED_MAX_DEPTH * FUSED_MAX_WIDTH ** 2,
  };
  assert.equal(tableMismatches('fused_deep_linear.wgsl', limits, 'MAX_'), []);
});

test("fused_rnn.wgsl RNN_MAX_* constants equal the fused RNN path's limits", () => {
  assert.equal(tableMismatches('fused_rnn.wgsl', RNN_MAX, 'RNN_MAX_'), []);
});

test("fused_transformer.wgsl TRANSFORMER_MAX_* constants equal the fused Transformer path's limits", () => {
  assert.equal(tableMismatches('fused_transformer.wgsl', TRANSFORMER_MAX, 'TRANSFORMER_MAX_'), []);
});

test('the comparison fails on a changed code and on a constant without a table entry', () => {
  assert.equal(tableMismatches('reduce.wgsl', { ...REDUCE_OPS, max: 7 }, 'REDUCE_'), [
    'reduce.wgsl: REDUCE_MAX = 2u, table 7',
  ]);
  const { sumAbs: _dropped, ...withoutSumAbs } = REDUCE_OPS;
  assert.equal(tableMismatches('reduce.wgsl', withoutSumAbs, 'REDUCE_'), [
    'reduce.wgsl: const REDUCE_SUM_ABS has no entry in the TypeScript table',
  ]);
  assert.equal(tableMismatches('reduce.wgsl', { ...REDUCE_OPS, mean: 5 }, 'REDUCE_'), [
    'reduce.wgsl declares no const REDUCE_MEAN',
  ]);
});

test.run();
