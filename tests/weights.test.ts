/**
 * Weights as safetensors: round trip, an independent reader (python3 + numpy, reading the format
 * with struct/json only) and an independent writer, bad files, and `run` writing weights.safetensors
 * that `run --init-from` loads back.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../src/errors.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { checkInitialWeights } from '../src/experiments/executor.ts';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../src/models/weights.ts';
import { runCli } from './helpers/cli.ts';
import { deepLinearConfig } from './helpers/configs.ts';
import { hasNumpy, python } from './helpers/python.ts';

const test = suite('weights: safetensors, run writes them, --init-from loads them');
const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-weights-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const TENSORS: NamedTensor[] = [
  { name: 'iso/0/W1', shape: [3, 2], values: Float32Array.from([1.5, -2, 0.1, 1e-30, 3e30, -0]) },
  { name: 'iso/0/b1', shape: [3], values: Float32Array.from([0, 1, -1]) },
  { name: 'aniso/12/W2', shape: [1, 3], values: Float32Array.from([Math.PI, Math.E, -Math.SQRT2]) },
];

test('encode → decode gives the same names, shapes and values; the layout follows the spec', () => {
  const bytes = encodeSafetensors(TENSORS, { experiment: 'x' });
  const decoded = decodeSafetensors(bytes, 'w.safetensors');
  assert.equal(decoded.map((t) => t.name).sort(), TENSORS.map((t) => t.name).sort());
  for (const t of TENSORS) {
    const got = decoded.find((d) => d.name === t.name);
    assert.equal(got?.shape, t.shape);
    assert.equal(Array.from(got?.values ?? []), Array.from(t.values), t.name);
  }
  // 8-byte little-endian header length, a multiple of 8; offsets tile the data exactly.
  const view = new DataView(bytes.buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  assert.is(headerLength % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  assert.equal(header.__metadata__, { experiment: 'x' });
  const spans = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([, e]) => (e as { data_offsets: [number, number] }).data_offsets)
    .sort((a, b) => a[0] - b[0]);
  assert.is(spans[0][0], 0);
  for (let i = 1; i < spans.length; i++) assert.is(spans[i][0], spans[i - 1][1]);
  assert.is(spans.at(-1)?.[1], bytes.length - 8 - headerLength);
});

test('numpy reads our file, and we read a file numpy writes (F32 and F64), by the spec alone', () => {
  if (!hasNumpy) {
    console.log('  (python3 with numpy not found: the round trip above covers the format)');
    return;
  }
  writeFileSync(join(dir, 'ours.safetensors'), encodeSafetensors(TENSORS));
  const read = JSON.parse(
    python(
      dir,
      `
import json, struct, numpy as np
b = open('ours.safetensors', 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
out = {}
for name, e in h.items():
    s, t = e['data_offsets']
    a = np.frombuffer(b[8 + n + s:8 + n + t], dtype='<f4').reshape(e['shape'])
    out[name] = {'dtype': e['dtype'], 'shape': list(a.shape), 'values': [float(v) for v in a.ravel()]}
print(json.dumps(out))
`,
    ),
  );
  for (const t of TENSORS) {
    assert.equal(read[t.name].dtype, 'F32');
    assert.equal(read[t.name].shape, t.shape);
    assert.equal(read[t.name].values, Array.from(t.values), t.name);
  }
  python(
    dir,
    `
import json, struct, numpy as np
a = (np.arange(6, dtype=np.float64).reshape(2, 3) / 3 - 0.5)
b = np.array([1.25, -4.5], dtype=np.float32)
header = {'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
          'a': {'dtype': 'F64', 'shape': [2, 3], 'data_offsets': [8, 56]},
          '__metadata__': {'by': 'numpy'}}
h = json.dumps(header).encode()
open('theirs.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + b.tobytes() + a.astype('<f8').tobytes())
`,
  );
  const theirs = decodeSafetensors(readFileSync(join(dir, 'theirs.safetensors')), 'theirs.safetensors');
  const a = theirs.find((t) => t.name === 'a');
  assert.equal(a?.shape, [2, 3]);
  assert.equal(
    Array.from(a?.values ?? []),
    [0, 1, 2, 3, 4, 5].map((i) => Math.fround(i / 3 - 0.5)),
  );
  assert.equal(Array.from(theirs.find((t) => t.name === 'b')?.values ?? []), [1.25, -4.5]);
});

test('bad weight files are refused naming the file and the tensor', () => {
  const refusal = (bytes: Uint8Array) => {
    try {
      decodeSafetensors(bytes, 'bad.safetensors');
    } catch (error) {
      assert.instance(error, InputError);
      return (error as Error).message;
    }
    return 'accepted';
  };
  const file = (header: unknown, dataBytes: number) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const bytes = new Uint8Array(8 + json.length + dataBytes);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    return bytes;
  };
  assert.match(refusal(new Uint8Array(4)), /^bad\.safetensors: is not a safetensors file \(shorter/);
  assert.match(refusal(file({}, 0).slice(0, 9)), /its header length 2 exceeds/);
  assert.match(
    refusal(Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7b, 0x7d])),
    /its header is not JSON/,
  );
  assert.match(
    refusal(file({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8)),
    /^bad\.safetensors: w: has dtype "I64"; this reader takes F32 and F64/,
  );
  assert.match(
    refusal(file({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8)),
    /^bad\.safetensors: w: data_offsets \[0,8\] do not hold shape \[3\] of F32/,
  );
  assert.match(
    refusal(file({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8)),
    /within the 8 data bytes/,
  );
});

/** Two groups × 2 seeds of a 2-[2]-2 deep linear net (fused path); `fields` override the base. */
function config(name: string, fields: Record<string, unknown> = {}) {
  return {
    ...deepLinearConfig({
      name,
      description: 'weights round trip',
      steps: 40,
      measure: { every: 20, evaluationSamples: 50, metrics: ['loss'] },
      seeds: 2,
      seed: 5,
      groups: [{ name: 'iso' }, { name: 'aniso', overrides: { data: { noiseStd: [1, 0.1] } } }],
      panels: [],
    }),
    ...fields,
  };
}

test('run writes every replica as group/seed/W…, --init-from starts from them, a mismatch is refused', async () => {
  writeFileSync(join(dir, 'first.json'), JSON.stringify(config('first')));
  const out = join(dir, 'out');
  const first = await runCli(['run', join(dir, 'first.json'), '--out', out]);
  assert.is(first.code, 0, first.stderr);
  const weightsFile = join(out, 'first', 'weights.safetensors');
  const written = decodeSafetensors(readFileSync(weightsFile), weightsFile);
  const names = ['iso', 'aniso'].flatMap((g) =>
    [0, 1].flatMap((s) => ['W1', 'W2'].map((w) => `${g}/${s}/${w}`)),
  );
  assert.equal(written.map((t) => t.name).sort(), [...names].sort());
  assert.ok(written.every((t) => t.shape.join() === '2,2' && t.values.some((v) => v !== 0)));

  // One step at a learning rate far below float32 resolution leaves the loaded weights bit for bit.
  const frozen = config('second');
  frozen.train = { ...frozen.train, learningRate: 1e-20, steps: 1 };
  frozen.measure = { ...frozen.measure, every: 1 };
  writeFileSync(join(dir, 'second.json'), JSON.stringify(frozen));
  const second = await runCli(['run', join(dir, 'second.json'), '--out', out, '--init-from', weightsFile]);
  assert.is(second.code, 0, second.stderr);
  const secondFile = join(out, 'second', 'weights.safetensors');
  const loaded = decodeSafetensors(readFileSync(secondFile), secondFile);
  for (const t of written)
    assert.equal(
      Array.from(loaded.find((l) => l.name === t.name)?.values ?? []),
      Array.from(t.values),
      t.name,
    );

  // A group the file does not have: refused naming the file and the tensor, before any GPU work (the
  // check run makes before it starts the engine; an InputError exits 2 with nothing written).
  try {
    checkInitialWeights(
      prepareExperiment(config('third', { groups: [{ name: 'other' }] })),
      written,
      weightsFile,
    );
    assert.unreachable('a file without the group was accepted');
  } catch (error) {
    assert.instance(error, InputError);
    assert.match((error as Error).message, /weights\.safetensors: has no tensor 'other\/0\/W1'/);
  }
});

test.run();
