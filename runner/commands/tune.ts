// `sharpness-lab tune`: searches matmul kernel variants and workgroup shapes for this adapter, verifies
// every candidate against a float64 reference before timing it, and caches the winners per adapter.
import { InputError } from '../../src/errors.ts';
import { checkMatmulConfig } from '../../src/kernels/matmul.ts';
import {
  configLabel,
  SHAPE_CLASSES,
  type TuneOutcome,
  tuneMatmul,
  verifiedWinners,
} from '../../src/kernels/matmul-tuner.ts';
import { mergeTuneCache } from '../../src/tune/cache.ts';
import { checkOutputFile, formatFlagHelp, parseArgs } from '../args.ts';
import { createNodeEngine } from '../node/engine.ts';
import { writeFileAtomic } from '../node/profile.ts';
import { ProgressBar } from '../node/progress.ts';
import { defaultTuneCachePath, readTuneCacheFile } from '../node/tune-cache.ts';
import { DEVICE_FLAGS, deviceOptions } from './device-flags.ts';

const FLAGS = [
  {
    name: 'cache',
    kind: 'string' as const,
    help: 'tuning cache file (default $XDG_CACHE_HOME or ~/.cache, then sharpness-lab/tune.json)',
  },
  {
    name: 'shapes',
    kind: 'string' as const,
    help: `comma-separated shape classes to tune (default all: ${SHAPE_CLASSES.map((s) => s.name).join(', ')})`,
  },
  { name: 'budget', kind: 'number' as const, help: 'seconds for the whole search (default 120)' },
  { name: 'dry-run', kind: 'boolean' as const, help: 'search and print, but leave the cache file alone' },
  {
    name: 'json',
    kind: 'boolean' as const,
    help: 'print the outcomes as JSON (every candidate) instead of the table',
  },
  ...DEVICE_FLAGS,
];

export const usage = `usage: sharpness-lab tune [--shapes a,b] [--budget SECONDS] [--cache FILE] [--dry-run] [--json]

Autotunes matmul on this adapter. For each shape class ([batch, M, K, N]):
${SHAPE_CLASSES.map((s) => `  ${s.name.padEnd(14)}[${s.shape.join(', ')}]  ${s.description}`).join('\n')}
it tries every kernel variant (tile4x4, tile16x8, flat4x4) with every power-of-two workgroup shape
the device allows and the result can use. Each candidate's output is first compared with a float64
CPU reference (error ≤ 2(k+2)·2⁻²⁴·Σ|aᵢbᵢ| per entry; a candidate that misses is rejected), then
timed with GPU timestamps (the adapter's timestamp-query; wall clock without it). The default and
the winner are re-timed alternately and the winner kept only if it is faster. Winners are written
(atomically) to the cache under this adapter's vendor, architecture, device and driver description;
every later command (run, bench, …) uses them for matmuls within a factor 2 of a tuned shape in each
of batch, M, K and N. A corrupt cache or one tuned on another adapter is ignored with one warning.
SHARPNESS_LAB_TUNE_CACHE=FILE points every command at another cache ('off' disables it).

Prints a table: shape class, default and tuned config, GFLOP/s of both, speedup. A progress bar on
stderr; the search stops trying new candidates when the budget is spent.

${formatFlagHelp(FLAGS)}`;

function formatTable(outcomes: readonly TuneOutcome[]): string {
  const header = [
    'shape class',
    '[b, M, K, N]',
    'default',
    'GFLOP/s',
    'tuned',
    'GFLOP/s',
    'speedup',
    'tried',
  ];
  const rows = outcomes.map((o) => [
    o.shapeClass,
    `[${o.shape.join(', ')}]`,
    configLabel(o.default),
    o.defaultGflops.toFixed(3),
    configLabel(o.tuned),
    o.tunedGflops.toFixed(3),
    o.defaultGflops > 0 ? `${(o.tunedGflops / o.defaultGflops).toFixed(2)}×` : '--',
    `${o.candidates.filter((c) => c.gflops !== undefined).length}/${o.candidates.length + o.skipped}${
      o.candidates.some((c) => c.error) ? ` (${o.candidates.filter((c) => c.error).length} rejected)` : ''
    }`,
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const right = [false, false, false, true, false, true, true, false];
  return all
    .map((r) =>
      r
        .map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.positional.length > 0)
    throw new InputError(args.positional[0], 'unexpected argument (tune takes only flags; see --help)');
  const budget = (args.flags.budget as number | undefined) ?? 120;
  if (!(budget > 0)) throw new InputError('--budget', `must be a positive number of seconds, got ${budget}`);
  let shapes = SHAPE_CLASSES;
  if (typeof args.flags.shapes === 'string') {
    const names = args.flags.shapes
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const name of names) {
      if (!SHAPE_CLASSES.some((s) => s.name === name))
        throw new InputError(
          '--shapes',
          `unknown shape class '${name}' (known: ${SHAPE_CLASSES.map((s) => s.name).join(', ')})`,
        );
    }
    if (names.length === 0) throw new InputError('--shapes', 'needs at least one shape class');
    shapes = SHAPE_CLASSES.filter((s) => names.includes(s.name));
  }
  const cachePath = (args.flags.cache as string | undefined) ?? defaultTuneCachePath();
  if (cachePath === 'off' && !args.flags['dry-run'])
    throw new InputError('--cache', "the cache is 'off'; give a file, or --dry-run");
  if (cachePath !== 'off' && !args.flags['dry-run']) checkOutputFile(cachePath, '--cache');

  // Tune from the built-in defaults: an existing cache must not steer the comparison.
  const engine = await createNodeEngine({ ...deviceOptions(args), tuneCache: 'off' });
  let outcomes: TuneOutcome[];
  try {
    const adapter = engine.context.adapterInfo;
    process.stderr.write(
      `tune: adapter ${adapter.description || adapter.device} (${adapter.vendor}/${adapter.architecture}), ${
        engine.profiler.hasTimestamps ? 'GPU timestamps' : 'wall clock (no timestamp-query)'
      }, budget ${budget} s\n`,
    );
    let bar: ProgressBar | undefined;
    outcomes = await tuneMatmul(engine, {
      shapes,
      budgetSeconds: budget,
      onProgress: (done, total, label) => {
        bar ??= new ProgressBar({ total, label: 'tune', unit: 'candidates', stream: process.stderr });
        if (done >= total) bar.finish();
        else bar.update(done, label);
      },
    });
    const winners = verifiedWinners(outcomes);
    if (!args.flags['dry-run']) {
      let existing: unknown;
      try {
        existing = readTuneCacheFile(cachePath);
      } catch {
        existing = undefined; // a corrupt file is replaced
      }
      const file = mergeTuneCache(existing, adapter, winners, new Date(), checkMatmulConfig);
      writeFileAtomic(cachePath, `${JSON.stringify(file, null, 2)}\n`);
      process.stderr.write(`tune: ${winners.length} shape classes cached in ${cachePath}\n`);
    }
  } finally {
    engine.destroy();
  }
  if (args.flags.json) console.log(JSON.stringify(outcomes, null, 2));
  else console.log(formatTable(outcomes));
  return 0;
}
