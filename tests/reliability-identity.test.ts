// A checkpoint resumes only its own run: a changed config, seed, shard or version, or a damaged file,
// is refused on --resume naming what differs or which field is damaged, before any GPU work and
// without writing anything. Unit checks of `checkCheckpoint` (CPU), then the real CLI on a checkpoint
// a real run left behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULT_ENV, PACKAGE_VERSION } from '../runner/node/experiment.ts';
import {
  type CheckpointFile,
  checkCheckpoint,
  checkpointFile,
  runIdentity,
} from '../src/experiments/checkpoint.ts';
import { type ExperimentConfig, prepareExperiment } from '../src/experiments/config.ts';
import { isCheckpointStep, logSteps } from '../src/experiments/executor.ts';
import { runCli } from './helpers/cli.ts';
import { deepLinearConfig } from './helpers/configs.ts';

const test = suite('reliability: run identity on resume');

const NAME = 'identity';
const RAW = deepLinearConfig({
  name: NAME,
  description: 'resumed only into itself',
  steps: 300,
  measure: { every: 50, evaluationSamples: 32, metrics: ['loss', 'sharpness'] },
  seeds: 2,
  seed: 7,
  groups: [
    { name: 'anisotropic', reference: 'isotropic' },
    { name: 'isotropic', overrides: { data: { noiseStd: [1, 1] } } },
  ],
  panels: [],
});
type Raw = typeof RAW;
const CONFIG = prepareExperiment(RAW);
/** The run's log points (updates applied: 0, every `measure.every`, the end). */
const LOG_POINTS = logSteps({ train: CONFIG.train, measure: CONFIG.measure });
/** The first log point after the initialisation: where the first checkpoint is written. */
const FIRST_CHECKPOINT = LOG_POINTS[1];

/**
 * A valid checkpoint of CONFIG at its first log point after 0: 4 replicas in one batch, W1 and W2
 * 2×2, loss rows at the log points so far (0 included).
 */
function validCheckpoint(config: ExperimentConfig = CONFIG): CheckpointFile {
  const rows = config.groups.flatMap((g) =>
    [0, 1].flatMap((seed) =>
      LOG_POINTS.slice(0, 2).map((step) => ({
        experiment: NAME,
        group: g.name,
        seed,
        step,
        metric: 'loss',
        value: 1.5,
      })),
    ),
  );
  const state = {
    version: 2 as const,
    experiment: NAME,
    shard: null,
    batchIndex: 0,
    step: FIRST_CHECKPOINT,
    params: [new Array(16).fill(0.1), new Array(16).fill(0.1)],
    rows,
    divergences: [],
  };
  return checkpointFile(state, runIdentity(config, undefined, PACKAGE_VERSION));
}

/** The checkpoint's JSON with `edit` applied to a deep copy. */
function damaged(edit: (c: Record<string, unknown>) => void): unknown {
  const copy = JSON.parse(JSON.stringify(validCheckpoint()));
  edit(copy);
  return copy;
}

function refusal(raw: unknown, config: ExperimentConfig = CONFIG, version = PACKAGE_VERSION): string {
  try {
    checkCheckpoint(raw, 'checkpoint.json', runIdentity(config, undefined, version));
  } catch (error) {
    assert.is((error as Error).name, 'InputError', (error as Error).stack);
    return (error as Error).message;
  }
  assert.unreachable('accepted');
  return '';
}

const edited = (edit: (raw: Raw) => void): ExperimentConfig => {
  const copy = JSON.parse(JSON.stringify(RAW)) as Raw;
  edit(copy);
  return prepareExperiment(copy);
};

test('a valid checkpoint is accepted; log points come from the executor', () => {
  // Updates applied: 0 (the initialisation), every measure.every, and the end of training.
  const { steps } = CONFIG.train;
  const { every } = CONFIG.measure;
  assert.is(LOG_POINTS[0], 0);
  assert.is(LOG_POINTS.at(-1), steps);
  assert.is(LOG_POINTS.length, Math.ceil(steps / every) + 1);
  for (let i = 1; i < LOG_POINTS.length - 1; i++) assert.is(LOG_POINTS[i] - LOG_POINTS[i - 1], every);
  // A checkpoint sits on a log point strictly inside the run.
  for (let step = -1; step <= steps + 1; step++)
    assert.is(
      isCheckpointStep(CONFIG, step),
      step > 0 && step < steps && LOG_POINTS.includes(step),
      `step ${step}`,
    );
  const state = checkCheckpoint(
    JSON.parse(JSON.stringify(validCheckpoint())),
    'checkpoint.json',
    runIdentity(CONFIG, undefined, PACKAGE_VERSION),
  );
  assert.is(state.step, FIRST_CHECKPOINT);
  assert.is(state.rows.length, CONFIG.groups.length * CONFIG.seeds * 2);
});

test('another run sharing the folder is refused naming what differs', () => {
  const file = validCheckpoint();
  const cases: [string, ExperimentConfig | undefined, string | undefined, RegExp][] = [
    [
      'learning rate',
      edited((c) => {
        c.train.learningRate = 0.06;
      }),
      undefined,
      /train\.learningRate is 0\.06 now but was 0\.05/,
    ],
    [
      'group noise',
      edited((c) => {
        (c.groups[1] as { overrides: { data: { noiseStd: number[] } } }).overrides.data.noiseStd = [1, 0.9];
      }),
      undefined,
      /groups\[1\]\.overrides\.data\.noiseStd\[1\]/,
    ],
    [
      'measure.every',
      edited((c) => {
        c.measure.every = 60;
      }),
      undefined,
      /measure\.every is 60/,
    ],
    [
      'evaluationSamples',
      edited((c) => {
        c.measure.evaluationSamples = 64;
      }),
      undefined,
      /measure\.evaluationSamples/,
    ],
    ['metrics', edited((c) => void c.measure.metrics.push('lambdaMax')), undefined, /measure\.metrics\[2\]/],
    [
      'init scale',
      edited((c) => {
        c.init.scale = 0.4;
      }),
      undefined,
      /init\.scale/,
    ],
    [
      '--seed',
      edited((c) => {
        c.seed = 8;
      }),
      undefined,
      /seed is 8 now but was 7/,
    ],
    [
      'seeds',
      edited((c) => {
        c.seeds = 3;
      }),
      undefined,
      /seeds is 3/,
    ],
    [
      'renamed group',
      edited((c) => {
        c.groups[0].name = 'aniso';
      }),
      undefined,
      /groups\[0\]\.name is "aniso"/,
    ],
    ['package version', undefined, '99.0.0', /packageVersion is "99\.0\.0"/],
  ];
  for (const [what, config, version, pattern] of cases) {
    const message = refusal(JSON.parse(JSON.stringify(file)), config ?? CONFIG, version);
    assert.match(message, /^--resume: checkpoint\.json belongs to a different run: /, what);
    assert.match(message, pattern, `${what}: ${message}`);
  }
  // Another shard of the same config.
  const sharded = (() => {
    try {
      checkCheckpoint(
        JSON.parse(JSON.stringify(file)),
        'checkpoint.json',
        runIdentity(CONFIG, { index: 0, count: 2 }, PACKAGE_VERSION),
      );
    } catch (error) {
      return (error as Error).message;
    }
    return 'accepted';
  })();
  assert.match(sharded, /different run: shard is \{"index":0,"count":2\} now but was null/);
});

test('a damaged checkpoint is refused naming the damaged field', () => {
  const cases: [string, unknown, RegExp][] = [
    ['null', null, /damaged at 'checkpoint': expected a checkpoint object, got null/],
    ['an array', [], /damaged at 'checkpoint'/],
    ['no identity (an older writer)', damaged((c) => void delete c.identity), /records no run identity/],
    ['missing rows', damaged((c) => void delete c.rows), /damaged at 'rows'/],
    ['missing params', damaged((c) => void delete c.params), /damaged at 'params'/],
    [
      'step as a string',
      damaged((c) => {
        c.step = String(FIRST_CHECKPOINT);
      }),
      new RegExp(`damaged at 'step'.*got "${FIRST_CHECKPOINT}"`),
    ],
    [
      'step between log points',
      damaged((c) => {
        c.step = FIRST_CHECKPOINT + 1;
      }),
      new RegExp(`damaged at 'step': ${FIRST_CHECKPOINT + 1} is not a log point inside the run`),
    ],
    [
      'step at the end',
      damaged((c) => {
        c.step = CONFIG.train.steps;
      }),
      /damaged at 'step'/,
    ],
    [
      'step 0',
      damaged((c) => {
        c.step = 0;
      }),
      /damaged at 'step'/,
    ],
    [
      'batchIndex −1',
      damaged((c) => {
        c.batchIndex = -1;
      }),
      /damaged at 'batchIndex': must be at least 0/,
    ],
    [
      'batchIndex 0.5',
      damaged((c) => {
        c.batchIndex = 0.5;
      }),
      /damaged at 'batchIndex': must be an integer/,
    ],
    [
      'batchIndex beyond the batches',
      damaged((c) => {
        c.batchIndex = 1;
      }),
      /damaged at 'batchIndex': must be below 1/,
    ],
    [
      'a row value as a string',
      damaged((c) => {
        (c.rows as { value: unknown }[])[2].value = '1.5';
      }),
      /damaged at 'rows\[2\]\.value'/,
    ],
    [
      'a row of an unknown group',
      damaged((c) => {
        (c.rows as { group: string }[])[0].group = 'x';
      }),
      /damaged at 'rows\[0\]\.group'/,
    ],
    [
      'a row off the log points',
      damaged((c) => {
        (c.rows as { step: number }[])[1].step = FIRST_CHECKPOINT - 1;
      }),
      /damaged at 'rows\[1\]\.step'/,
    ],
    [
      'a row twice',
      damaged((c) => {
        (c.rows as unknown[]).push((c.rows as unknown[])[0]);
      }),
      new RegExp(`damaged at 'rows\\[${validCheckpoint().rows.length}\\]': repeats`),
    ],
    [
      'a seed out of range',
      damaged((c) => {
        (c.rows as { seed: number }[])[0].seed = 2;
      }),
      /damaged at 'rows\[0\]\.seed'/,
    ],
    [
      'params of another model',
      damaged((c) => {
        (c.params as number[][])[1].pop();
      }),
      /damaged at 'params\[1\]'/,
    ],
    [
      'identity edited by hand',
      damaged((c) => {
        (c.identity as { config: { seed: number } }).config.seed = 8;
      }),
      /damaged at 'fingerprint'/,
    ],
    [
      'an unknown field',
      damaged((c) => {
        c.extra = 1;
      }),
      /damaged at 'extra'/,
    ],
    [
      'a divergence of an unknown replica',
      damaged((c) => {
        c.divergences = [{ group: 'isotropic', replica: 5, step: FIRST_CHECKPOINT, loss: null }];
      }),
      /damaged at 'divergences\[0\]\.replica'/,
    ],
  ];
  for (const [what, raw, pattern] of cases) {
    const message = refusal(raw);
    assert.match(message, pattern, `${what}: ${message}`);
    assert.match(message, /delete it and run without --resume$/, what);
  }
});

function snapshot(dir: string): string {
  const walk = (folder: string): string[] =>
    readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
      const path = join(folder, entry.name);
      return entry.isDirectory()
        ? [`${path}/`, ...walk(path)]
        : [`${path} ${statSync(path).size} ${readFileSync(path, 'utf8').length}`];
    });
  return walk(dir).sort().join('\n');
}

test('CLI: --resume on a real checkpoint refuses a changed config, seed, renamed group or damaged file, writing nothing', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-identity-'));
  try {
    writeFileSync(join(work, 'c.json'), JSON.stringify(RAW));
    // A real run that stops (device lost) right after its first checkpoint.
    const stopped = await runCli(['run', 'c.json', '--out', 'out'], {
      cwd: work,
      env: { [FAULT_ENV]: 'device-lost-after-checkpoint' },
    });
    assert.is(stopped.code, 1, stopped.stderr);
    const checkpoint = join(work, 'out', NAME, 'checkpoint.json');
    const original = readFileSync(checkpoint, 'utf8');
    const refused = async (args: string[], config: Raw, pattern: RegExp) => {
      writeFileSync(join(work, 'c2.json'), JSON.stringify(config));
      const before = snapshot(work);
      const result = await runCli(['run', 'c2.json', '--out', 'out', '--resume', ...args], {
        cwd: work,
        timeoutMs: 60_000,
      });
      assert.is(result.code, 2, result.stderr);
      const lines = result.stderr.trim().split('\n');
      assert.is(lines.length, 1, result.stderr);
      assert.match(lines[0], pattern);
      assert.not.match(result.stderr, /SwiftShader|\n\s+at /);
      assert.is(snapshot(work), before, 'nothing written');
    };
    const changed = (edit: (raw: Raw) => void) => {
      const copy = JSON.parse(JSON.stringify(RAW)) as Raw;
      edit(copy);
      return copy;
    };
    await refused(
      [],
      changed((c) => {
        c.train.learningRate = 0.07;
      }),
      /train\.learningRate is 0\.07 now/,
    );
    await refused(['--seed', '9'], RAW, /different run: seed is 9 now but was 7/);
    await refused(
      [],
      changed((c) => {
        c.groups[0].name = 'aniso';
      }),
      /groups\[0\]\.name is "aniso"/,
    );
    await refused(
      [],
      changed((c) => {
        c.measure.metrics = ['loss'];
      }),
      /measure\.metrics/,
    );
    for (const [edit, pattern] of [
      [
        (c: Record<string, unknown>) => {
          c.step = String(c.step);
        },
        /damaged at 'step'/,
      ],
      [
        (c: Record<string, unknown>) => {
          c.batchIndex = -1;
        },
        /damaged at 'batchIndex'/,
      ],
      [(c: Record<string, unknown>) => void delete c.rows, /damaged at 'rows'/],
    ] as const) {
      const copy = JSON.parse(original);
      edit(copy);
      writeFileSync(checkpoint, JSON.stringify(copy));
      await refused([], RAW, pattern);
    }
    writeFileSync(checkpoint, 'null');
    await refused([], RAW, /damaged at 'checkpoint'/);
    // The untouched checkpoint resumes to the end.
    writeFileSync(checkpoint, original);
    const resumed = await runCli(['run', 'c.json', '--out', 'out', '--resume'], { cwd: work });
    assert.is(resumed.code, 0, resumed.stderr);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
