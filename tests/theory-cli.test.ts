// `sharpness-lab theory` end to end: spawns the real CLI (runner/bin.mjs) on temporary config files
// and checks exit codes, that stdout is one JSON object equal to the library's answer, and that bad
// input exits with code 2, names the field on stderr and prints nothing on stdout.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deepLinearTheory, initSharpness } from '../src/theory/deep-linear.ts';
import { runCli } from './helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'sharpness-lab-theory-'));
let fileCount = 0;

function configFile(content: unknown): string {
  const path = join(dir, `config-${fileCount++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const cli = (args: string[]) => runCli(['theory', ...args]);

const paperD3 = {
  depth: 3,
  V: [
    [1, 0],
    [0, 1],
  ],
  sigmaEps: [
    [1, 0],
    [0, 100],
  ],
};
const nonSquare = {
  depth: 4,
  V: [
    [0.3, -1.2, 0.8],
    [1.1, 0.4, -0.5],
  ],
  sigmaX: [
    [2, 0.3, 0],
    [0.3, 1, -0.2],
    [0, -0.2, 0.5],
  ],
  sigmaEps: [
    [0.5, 0.1],
    [0.1, 4],
  ],
};

const KEYS = [
  'sharpness',
  'fluctuation',
  'lambdaMax',
  'minSharpness',
  'nuclearNorm',
  'traceSigmaX',
  'traceSigmaEps',
  'tau',
];

for (const [name, config] of [
  ['paper D = 3', paperD3],
  ['non-square, depth 4, explicit Σ_x', nonSquare],
] as const) {
  test(`--json prints one JSON object equal to deepLinearTheory (${name})`, async () => {
    const out = await cli(['--config', configFile(config), '--json']);
    assert.is(out.code, 0, out.stderr);
    assert.is(out.stderr, '');
    assert.is(out.stdout.trim().split('\n').length, 1, 'exactly one line');
    const json = JSON.parse(out.stdout);
    const expected = deepLinearTheory(config);
    for (const key of KEYS) assert.is(json[key], expected[key as keyof typeof expected], key);
    assert.equal(json.weights, expected.weights);
    // The orbit check agrees with the closed form to the 1e-4.
    assert.ok(json.orbit.converged);
    assert.ok(json.orbit.relativeErrorFluctuation <= 1e-4);
    assert.ok(json.orbit.relativeErrorSharpness <= 1e-4);
    assert.ok(json.orbit.distance <= 1e-4);
  });
}

test('without --json: a readable table with the same numbers', async () => {
  const out = await cli(['--config', configFile(paperD3)]);
  assert.is(out.code, 0, out.stderr);
  const t = deepLinearTheory(paperD3);
  assert.match(out.stdout, /sharpness T\*/);
  assert.match(out.stdout, /λ_max\*/);
  assert.match(out.stdout, /T_min/);
  assert.ok(out.stdout.includes(String(Number(t.sharpness.toPrecision(7)))), 'T* printed to 7 digits');
  assert.ok(out.stdout.includes(String(Number(t.lambdaMax.toPrecision(7)))), 'λ_max* printed to 7 digits');
  assert.not.ok(out.stdout.trim().startsWith('{'));
});

test('--skip-check drops the orbit report; --init-scale adds E[T] at initialisation', async () => {
  const out = await cli([
    '--config',
    configFile(nonSquare),
    '--json',
    '--skip-check',
    '--init-scale',
    '0.5',
    '--init-width',
    '8',
  ]);
  assert.is(out.code, 0, out.stderr);
  const json = JSON.parse(out.stdout);
  assert.is(json.orbit, undefined);
  const t = deepLinearTheory(nonSquare);
  const expected = initSharpness({
    depth: 4,
    outputDim: 2,
    traceSigmaX: t.traceSigmaX,
    width: 8,
    scale: 0.5,
  });
  assert.equal(json.init, { scale: 0.5, width: 8, sharpness: expected });
});

test('--help prints the usage and exits 0', async () => {
  const out = await cli(['--help']);
  assert.is(out.code, 0);
  assert.match(out.stdout, /usage: sharpness-lab theory --config FILE/);
});

// ---------------------------------------------------------------------------------------------
// bad input: exit 2, nothing on stdout, the field named on stderr

const BAD: [string, () => string[], string][] = [
  ['missing file', () => ['--config', join(dir, 'does-not-exist.json'), '--json'], '--config'],
  [
    'malformed JSON',
    () => ['--config', configFile('{"depth": 3, "V": [[1, 0], [0, 1]'), '--json'],
    '--config',
  ],
  ['no --config at all', () => ['--json'], '--config'],
  ['depth < 1', () => ['--config', configFile({ ...paperD3, depth: 0 }), '--json'], 'depth'],
  ['depth not a number', () => ['--config', configFile({ ...paperD3, depth: 'three' }), '--json'], 'depth'],
  [
    'non-number in V',
    () => [
      '--config',
      configFile({
        ...paperD3,
        V: [
          [1, 'x'],
          [0, 1],
        ],
      }),
      '--json',
    ],
    'V[0][1]',
  ],
  [
    'non-square sigmaEps',
    () => [
      '--config',
      configFile({
        ...paperD3,
        sigmaEps: [
          [1, 0, 0],
          [0, 1, 0],
        ],
      }),
      '--json',
    ],
    'sigmaEps',
  ],
  [
    'non-symmetric sigmaX',
    () => [
      '--config',
      configFile({
        ...paperD3,
        sigmaX: [
          [1, 0.5],
          [0.4, 1],
        ],
      }),
      '--json',
    ],
    'sigmaX[1][0]',
  ],
  [
    'sigmaEps not positive definite',
    () => [
      '--config',
      configFile({
        ...paperD3,
        sigmaEps: [
          [1, 0],
          [0, -2],
        ],
      }),
      '--json',
    ],
    'sigmaEps',
  ],
  [
    'sigmaX not positive definite (singular)',
    () => [
      '--config',
      configFile({
        ...paperD3,
        sigmaX: [
          [1, 1],
          [1, 1],
        ],
      }),
      '--json',
    ],
    'sigmaX',
  ],
  [
    'sigmaX shape does not match V',
    () => [
      '--config',
      configFile({
        ...nonSquare,
        sigmaX: [
          [1, 0],
          [0, 1],
        ],
      }),
      '--json',
    ],
    'sigmaX',
  ],
  [
    'sigmaEps shape does not match V',
    () => [
      '--config',
      configFile({
        ...nonSquare,
        sigmaEps: [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
      }),
      '--json',
    ],
    'sigmaEps',
  ],
  ['missing sigmaEps', () => ['--config', configFile({ depth: 2, V: [[1, 2]] }), '--json'], 'sigmaEps'],
  ['config not an object', () => ['--config', configFile('[1, 2, 3]'), '--json'], 'config'],
  ['unknown flag', () => ['--config', configFile(paperD3), '--jsonn'], '--jsonn'],
  ['bad --seed', () => ['--config', configFile(paperD3), '--seed', '-1'], '--seed'],
];

for (const [name, args, field] of BAD) {
  test(`bad input exits 2 naming '${field}': ${name}`, async () => {
    const out = await cli(args());
    assert.is(out.code, 2, `exit code (stderr: ${out.stderr})`);
    assert.is(out.stdout, '', 'nothing on stdout');
    assert.ok(out.stderr.startsWith(`sharpness-lab: ${field}: `), `stderr names the field: ${out.stderr}`);
  });
}

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
