/**
 * The user's own data: the .npy reader against files numpy writes (when python3 with numpy is here)
 * and against bytes built from the format spec; CSV columns; every bad-file class refused before any
 * GPU work naming the file and the row or field; and `run` of a config on file data.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadDataFiles, readCsvFile, readNpyFile } from '../runner/node/data-files.ts';
import { ArrayDataset, checkTable } from '../src/data/arrays.ts';
import { parseNpy } from '../src/data/npy.ts';
import { InputError } from '../src/errors.ts';
import { prepareExperiment } from '../src/experiments/config.ts';
import { runCli } from './helpers/cli.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';
import { hasNumpy, python } from './helpers/python.ts';

const test = suite('data files: .npy, CSV, file data in configs');
test.after(destroyTestEngine);

const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-data-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** .npy bytes built from the format spec (numpy.lib.format), independent of the reader. */
function npyBytes(
  descr: string,
  shape: number[],
  values: number[],
  options: { version?: 1 | 2; fortran?: boolean } = {},
) {
  const version = options.version ?? 1;
  const dict = `{'descr': '${descr}', 'fortran_order': ${options.fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const prefix = version === 1 ? 10 : 12;
  // Header padded with spaces so the data starts on a 64-byte boundary, ending in '\n'.
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = `${dict}${' '.repeat(total - prefix - dict.length - 1)}\n`;
  const itemBytes = descr.endsWith('8') ? 8 : 4;
  const bytes = new Uint8Array(total + values.length * itemBytes);
  bytes.set([0x93, ...Array.from('NUMPY', (c) => c.charCodeAt(0)), version, 0]);
  const view = new DataView(bytes.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  bytes.set(
    Array.from(header, (c) => c.charCodeAt(0)),
    prefix,
  );
  const littleEndian = !descr.startsWith('>');
  values.forEach((v, i) => {
    if (itemBytes === 8) view.setFloat64(total + 8 * i, v, littleEndian);
    else if (descr.includes('f')) view.setFloat32(total + 4 * i, v, littleEndian);
    else view.setInt32(total + 4 * i, v, littleEndian);
  });
  return bytes;
}

test('.npy from spec bytes: float32/float64, versions 1.0 and 2.0, C and Fortran order', () => {
  const values = [1.5, -2, 3.25, 1e-3, 7, -0.5];
  for (const version of [1, 2] as const) {
    const f4 = parseNpy(npyBytes('<f4', [3, 2], values, { version }), 'f4.npy');
    assert.equal(f4.shape, [3, 2]);
    assert.is(f4.dtype, 'float32');
    assert.equal(Array.from(f4.values), values.map(Math.fround));
    const f8 = parseNpy(npyBytes('<f8', [6], values, { version }), 'f8.npy');
    assert.equal(Array.from(f8.values), values);
  }
  // Column-major bytes of the 3×2 matrix [[1.5, -2], [3.25, 1e-3], [7, -0.5]].
  const fortran = parseNpy(
    npyBytes('<f8', [3, 2], [1.5, 3.25, 7, -2, 1e-3, -0.5], { fortran: true }),
    'f.npy',
  );
  assert.equal(Array.from(fortran.values), values);
});

test('.npy files written by numpy (versions 1.0, 2.0, 3.0; C and Fortran order) read back exactly', () => {
  if (!hasNumpy) {
    console.log('  (python3 with numpy not found: the spec-bytes test above covers the reader)');
    return;
  }
  python(
    dir,
    `
import numpy as np
from numpy.lib import format as f
a = np.arange(12, dtype=np.float64).reshape(4, 3) / 7 - 0.3
np.save('c32.npy', a.astype(np.float32))
np.save('c64.npy', a)
np.save('t64.npy', a.T)  # a transpose is saved in Fortran order
with open('v2.npy', 'wb') as h: f.write_array(h, a.astype(np.float32), version=(2, 0))
with open('v3.npy', 'wb') as h: f.write_array(h, a, version=(3, 0))
np.save('vec.npy', a[:, 0].copy())
`,
  );
  const expected = Array.from({ length: 12 }, (_, i) => i / 7 - 0.3);
  const transposed = Array.from({ length: 12 }, (_, k) => expected[(k % 4) * 3 + Math.floor(k / 4)]);
  for (const [file, shape, values] of [
    ['c32.npy', [4, 3], expected.map(Math.fround)],
    ['c64.npy', [4, 3], expected],
    ['t64.npy', [3, 4], transposed],
    ['v2.npy', [4, 3], expected.map(Math.fround)],
    ['v3.npy', [4, 3], expected],
    ['vec.npy', [4], [0, 3, 6, 9].map((i) => expected[i])],
  ] as const) {
    const read = readNpyFile(join(dir, file));
    assert.equal(read.shape, shape, file);
    assert.equal(Array.from(read.values), values, file);
  }
});

/** The InputError message `f` throws (fails when it does not throw one). */
function refusal(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    if (error instanceof InputError) return error.message;
    throw error;
  }
  assert.unreachable('accepted');
  return '';
}

test('bad .npy files are refused naming the file and what is wrong', () => {
  const bad = (name: string, bytes: Uint8Array) => {
    writeFileSync(join(dir, name), bytes);
    return refusal(() => readNpyFile(join(dir, name)));
  };
  assert.match(bad('magic.npy', new TextEncoder().encode('x,y\n1,2\n')), /magic\.npy: is not a \.npy file/);
  assert.match(bad('int.npy', npyBytes('<i4', [2], [1, 2])), /int\.npy: has dtype '<i4'.*float32 or float64/);
  assert.match(bad('big.npy', npyBytes('>f4', [2], [1, 2])), /big\.npy: has dtype '>f4'.*big-endian/);
  const truncated = npyBytes('<f8', [3, 2], [1, 2, 3, 4, 5, 6]).slice(0, -8);
  assert.match(
    bad('short.npy', truncated),
    /short\.npy: holds 40 bytes of data but shape \(3, 2\) of float64 needs 48/,
  );
  assert.match(
    refusal(() => readNpyFile(join(dir, 'missing.npy'))),
    /missing\.npy: cannot read the data file \(no such file\)/,
  );
  assert.match(
    refusal(() => checkTable(parseNpy(npyBytes('<f4', [2, 2], [1, Number.NaN, 3, 4]), 'nan.npy'), 'nan.npy')),
    /^nan\.npy: row 0, column 1 is NaN/,
  );
  assert.match(
    refusal(() =>
      checkTable(
        parseNpy(npyBytes('<f8', [2, 2], [1, 2, 3, Number.POSITIVE_INFINITY]), 'inf.npy'),
        'inf.npy',
      ),
    ),
    /^inf\.npy: row 1, column 1 is Infinity/,
  );
  assert.match(
    refusal(() => checkTable(parseNpy(npyBytes('<f8', [1, 2], [1, 1e300]), 'huge.npy'), 'huge.npy')),
    /beyond float32's range/,
  );
  assert.match(
    refusal(() => checkTable({ values: new Float32Array(8), shape: [2, 2, 2] }, 'cube.npy')),
    /cube\.npy: must be a 1-D or 2-D array/,
  );
});

test('CSV: columns by name or index, the rest as inputs; bad rows named by line and column', () => {
  writeFileSync(join(dir, 'd.csv'), 'a,b,t\n1,2,3\n4,5.5,6\n\n-7,8e-1,9\n');
  const { x, y } = readCsvFile(join(dir, 'd.csv'), { yColumns: ['t'] });
  assert.equal(x, { values: Float64Array.from([1, 2, 4, 5.5, -7, 0.8]), shape: [3, 2] });
  assert.equal(y, { values: Float64Array.from([3, 6, 9]), shape: [3, 1] });
  writeFileSync(join(dir, 'plain.csv'), '1,2,3\n4,5,6\n');
  const plain = readCsvFile(join(dir, 'plain.csv'), { header: false, xColumns: [2, 0], yColumns: [1] });
  assert.equal(Array.from(plain.x.values), [3, 1, 6, 4]);
  assert.equal(Array.from(plain.y.values), [2, 5]);

  const bad = (name: string, text: string, columns = { yColumns: ['t'] as (string | number)[] }) => {
    writeFileSync(join(dir, name), text);
    return refusal(() => readCsvFile(join(dir, name), columns));
  };
  assert.match(bad('wide.csv', 'a,t\n1,2\n3,4,5\n'), /wide\.csv: line 3 has 3 fields, the header has 2/);
  assert.match(
    bad('word.csv', 'a,t\n1,2\n3,x\n'),
    /word\.csv: line 3, column 't': "x" is not a finite number/,
  );
  assert.match(bad('nan.csv', 'a,t\n1,NaN\n'), /nan\.csv: line 2, column 't': "NaN" is not a finite number/);
  assert.match(
    bad('empty-cell.csv', 'a,t\n,2\n'),
    /empty-cell\.csv: line 2, column 'a': "" is not a finite number/,
  );
  assert.match(
    bad('name.csv', 'a,b\n1,2\n'),
    /data\.yColumns\[0\]: no column 't' in .*name\.csv \(columns: a, b\)/,
  );
  assert.match(bad('quote.csv', 'a,t\n"1,2\n'), /quote\.csv: is not valid CSV/);
  assert.match(bad('only-header.csv', 'a,t\n'), /only-header\.csv: has no data rows/);
});

/** A small file-data config (model 2 → 1) with the given data block. */
function fileConfig(data: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: 'my-data',
    description: 'a user dataset',
    model: { kind: 'mlp', inputDim: 2, hidden: [3], outputDim: 1, activation: 'tanh' },
    loss: 'mse',
    data,
    init: { kind: 'kaiming' },
    train: { learningRate: 0.05, batchSize: 8, steps: 20, optimizer: { kind: 'adam' } },
    measure: { every: 10, evaluationSamples: 64, metrics: ['loss', 'sharpness'] },
    seeds: 2,
    seed: 0,
    groups: [{ name: 'clean' }, { name: 'noisy', overrides: { data: { noiseStd: [0.5] } } }],
    panels: [],
    ...extra,
  };
}

test('file data in a config: shape mismatches between x, y and the model are refused naming the file', () => {
  const rows = 20;
  const x = Array.from({ length: rows * 2 }, (_, i) => Math.sin(i));
  writeFileSync(join(dir, 'x.npy'), npyBytes('<f4', [rows, 2], x));
  writeFileSync(
    join(dir, 'y.npy'),
    npyBytes(
      '<f8',
      [rows],
      x.filter((_, i) => i % 2 === 0),
    ),
  );
  writeFileSync(join(dir, 'y-short.npy'), npyBytes('<f8', [rows - 1], x.slice(0, rows - 1)));
  writeFileSync(join(dir, 'y-wide.npy'), npyBytes('<f8', [rows, 2], x));
  const load = (data: Record<string, unknown>, extra = {}) =>
    loadDataFiles(prepareExperiment(fileConfig({ kind: 'file', ...data }, extra)), dir);
  const ok = load({ x: 'x.npy', y: 'y.npy' });
  assert.ok(ok);
  const loaded = ok?.(1);
  assert.ok(loaded);
  assert.is(checkTable(loaded.y, 'y').columns, 1);
  assert.match(
    refusal(() => load({ x: 'x.npy', y: 'y-short.npy' })),
    /y-short\.npy: has 19 rows but .*x\.npy has 20/,
  );
  assert.match(
    refusal(() => load({ x: 'x.npy', y: 'y-wide.npy' })),
    /y-wide\.npy: has 2 target columns but the model gives 1/,
  );
  assert.match(
    refusal(() => load({ x: 'y.npy', y: 'y.npy' })),
    /y\.npy: has 1 input columns but the model reads 2/,
  );
  assert.match(
    refusal(() =>
      load({ x: 'x.npy', y: 'y.npy' }, { train: { learningRate: 0.1, batchSize: 50, steps: 20 } }),
    ),
    /train\.batchSize: 50 is larger than the training set \(20 rows/,
  );
  // Schema: one form of file data, the CSV form with its target columns.
  assert.match(
    refusal(() => prepareExperiment(fileConfig({ kind: 'file', x: 'x.npy' }))),
    /^data\.y: missing/,
  );
  assert.match(
    refusal(() => prepareExperiment(fileConfig({ kind: 'file', csv: 'd.csv' }))),
    /^data\.yColumns: missing/,
  );
  assert.match(
    refusal(() => prepareExperiment(fileConfig({ kind: 'file', x: 'x.npy', y: 'y.npy', yColumns: ['t'] }))),
    /^data\.yColumns: only meaningful with csv/,
  );
});

test('ArrayDataset: minibatches are rows of the table, with label noise of covariance Σ_ε added fresh', async () => {
  const engine = await testEngine();
  const rows = 4096;
  // Row r is (r mod 7, −(r mod 7)) → target 10 (r mod 7): a drawn row is recognisable, its noise y − 10 x₀.
  const x = Array.from({ length: rows }, (_, r) => [r % 7, -(r % 7)]);
  const y = Array.from({ length: rows }, (_, r) => [10 * (r % 7)]);
  const clean = new ArrayDataset(engine, x, y);
  const batch = clean.sample({ seed: 1, step: 0, rows: 50, replicas: 2 });
  const [bx, by] = [await batch.x.read(), await batch.y.read()];
  for (let i = 0; i < 100; i++) {
    assert.ok(Number.isInteger(bx[2 * i]) && bx[2 * i + 1] === -bx[2 * i] && by[i] === 10 * bx[2 * i]);
  }
  const sigma = 0.25;
  const noisy = new ArrayDataset(engine, x, y, { sigmaEps: [[sigma]] });
  const draws = 4000;
  const sample = noisy.sample({ seed: 2, step: 3, rows: draws, replicas: 1 });
  const [nx, ny] = [await sample.x.read(), await sample.y.read()];
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < draws; i++) {
    const e = ny[i] - 10 * nx[2 * i];
    sum += e;
    squares += e * e;
  }
  // Mean 0 and variance Σ_ε within 5 standard errors (var of a sample variance: 2σ⁴/n).
  assert.ok(Math.abs(sum / draws) < 5 * Math.sqrt(sigma / draws), `noise mean ${sum / draws}`);
  assert.ok(
    Math.abs(squares / draws - sigma) < 5 * Math.sqrt((2 * sigma * sigma) / draws),
    `noise variance ${squares / draws}`,
  );
  for (const t of [batch.x, batch.y, sample.x, sample.y]) t.dispose();
  clean.dispose();
  noisy.dispose();
});

test('run trains on .npy and CSV data (paths relative to the config); a bad file exits 2 writing nothing', async () => {
  const rows = 64;
  const xs = Array.from({ length: rows * 2 }, (_, i) => Math.cos(1.7 * i));
  const ys = Array.from({ length: rows }, (_, r) => xs[2 * r] - 0.5 * xs[2 * r + 1]);
  writeFileSync(join(dir, 'train-x.npy'), npyBytes('<f4', [rows, 2], xs));
  writeFileSync(join(dir, 'train-y.npy'), npyBytes('<f8', [rows, 1], ys));
  writeFileSync(
    join(dir, 'train.csv'),
    `u,v,target\n${ys.map((y, r) => `${xs[2 * r]},${xs[2 * r + 1]},${y}`).join('\n')}\n`,
  );
  const config = fileConfig(
    { kind: 'file', x: 'train-x.npy', y: 'train-y.npy' },
    {
      groups: [
        { name: 'npy' },
        {
          name: 'csv',
          overrides: { data: { kind: 'file', csv: 'train.csv', yColumns: ['target'], noiseStd: [0.1] } },
        },
      ],
    },
  );
  writeFileSync(join(dir, 'my.json'), JSON.stringify(config));
  const out = join(dir, 'out');
  // From another working directory: the data paths are the config file's.
  const ran = await runCli(['run', join(dir, 'my.json'), '--out', out], { cwd: tmpdir() });
  assert.is(ran.code, 0, ran.stderr);
  const csv = readFileSync(join(out, 'my-data', 'results.csv'), 'utf8');
  for (const group of ['npy', 'csv']) {
    // Both seeds measured at both log points (and step 0, where the executor measures it).
    const sharpness = csv
      .split('\n')
      .filter((line) => line.startsWith(`my-data,${group},`) && line.includes(',sharpness,'));
    assert.ok(sharpness.length >= 2 * 2, `${group}: ${sharpness.join(' | ')}`);
    assert.ok(sharpness.every((line) => Number.isFinite(Number(line.split(',').at(-1)))));
  }

  writeFileSync(join(dir, 'train-bad.csv'), 'u,v,target\n1,2,3\n4,5\n');
  const bad = {
    ...config,
    groups: [
      { name: 'csv', overrides: { data: { kind: 'file', csv: 'train-bad.csv', yColumns: ['target'] } } },
    ],
  };
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad));
  const badOut = join(dir, 'bad-out');
  const refused = await runCli(['run', join(dir, 'bad.json'), '--out', badOut]);
  assert.is(refused.code, 2);
  assert.match(refused.stderr, /train-bad\.csv: line 3 has 2 fields, the header has 3/);
  assert.not.match(refused.stderr, /\n\s+at /, 'no stack trace');
  assert.not.ok(existsSync(badOut), 'nothing written');
});

test.run();
