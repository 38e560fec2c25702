// `sharpness-lab merge DIR… [--out DIR]`: combines the outputs of `run … --shard i/n` into the files a
// single run writes (config.json, results.csv, results.json, panel SVGs, report.html, index.html).
// CPU only: every shard is read and checked before anything is written.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { checkRowsComplete } from '../../src/experiments/completeness.ts';
import { resolveGroups } from '../../src/experiments/config.ts';
import { relativeSharpnessRows, shardRange } from '../../src/experiments/executor.ts';
import { canonicalRowOrder, type ExperimentResults, type ResultRow } from '../../src/experiments/results.ts';
import { type FlagSpec, formatFlagHelp, parseArgs } from '../args.ts';
import {
  checkOutputDir,
  isIoError,
  OutputFailure,
  readWeightsFile,
  WEIGHTS_FILE,
  weightsFileBytes,
} from '../node/experiment.ts';
import {
  acquireLock,
  checkNotLocked,
  commitStaged,
  prepareStaging,
  recoverOutput,
  runOutput,
} from '../node/output-set.ts';
import { readResults, writeExperimentFiles, writeFileAtomic, writeIndex } from '../node/report.ts';

const flags: FlagSpec[] = [
  {
    name: 'out',
    kind: 'string',
    help: 'where the merged DIR/NAME/ goes (default: the folder the shards were run with --out)',
  },
];

export const usage = `usage: sharpness-lab merge DIR... [--out DIR]

Combines the shards of sharded runs ('sharpness-lab run NAME --shard i/n --out DIR', which writes
DIR/NAME/shard-i-of-n/) into the files one unsharded run writes: DIR/NAME/config.json, results.csv,
results.json, one SVG per panel, report.html, weights.safetensors (every shard's replicas), and
DIR/index.html. Each DIR is a shard folder, an
experiment folder holding shard folders, or a results folder holding experiment folders; every
sharded experiment found is merged.

It checks that the shards of an experiment share one config and one shard count, that each shard
0 … n−1 is there exactly once and holds exactly its own replicas' rows (every log point and metric,
once; a replica that diverged ends at its recorded divergence step), then takes the replica rows of every
shard, the theory rows once, and recomputes relativeSharpness (whose reference group may have run in
another shard). Rows are written in the same canonical order as a single run. The merged results.json
names every adapter used, the earliest start and the wall time of the slowest shard.

options:
${formatFlagHelp(flags)}

Example (4 machines, one shared folder):
  sharpness-lab run anisotropy-sweep --shard 0/4 --out sweep     # … and 1/4, 2/4, 3/4 elsewhere
  sharpness-lab merge sweep                                       # → sweep/anisotropy-sweep/report.html

Exit codes: 0 success, 2 bad input (missing, duplicate, foreign or incomplete shards, naming the shard,
replica and step; nothing is written).`;

interface Shard {
  dir: string;
  results: ExperimentResults & { shard: NonNullable<ExperimentResults['shard']> };
}

const SHARD_FOLDER = /^shard-\d+-of-\d+$/;

/** Shard folders under `dir`: itself, DIR/shard-*, or DIR/NAME/shard-*. */
function findShardDirs(dir: string): string[] {
  if (!existsSync(dir)) throw new InputError(dir, 'no such folder');
  if (!statSync(dir).isDirectory())
    throw new InputError(dir, 'is not a folder (give the --out folder of the shard runs)');
  if (existsSync(join(dir, 'results.json')) && SHARD_FOLDER.test(resolve(dir).split(/[\\/]/).pop() ?? ''))
    return [dir];
  const found: string[] = [];
  const walk = (folder: string, depth: number) => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      if (!entry.isDirectory()) continue;
      const path = join(folder, entry.name);
      if (SHARD_FOLDER.test(entry.name)) {
        if (existsSync(join(path, 'results.json'))) found.push(path);
      } else if (depth > 0) walk(path, depth - 1);
    }
  };
  walk(dir, 1);
  return found;
}

function loadShard(dir: string): Shard {
  const results = readResults(dir);
  if (!results.shard)
    throw new InputError(join(dir, 'results.json'), 'is not the output of a sharded run (no "shard" field)');
  return { dir, results: results as Shard['results'] };
}

/** Replica rows of each group must lie in the shard's range (global index = group offset + seed). */
function checkReplicas(shard: Shard, offsets: Map<string, number>, range: { start: number; end: number }) {
  for (const row of shard.results.rows) {
    if (row.seed === 'theory') continue;
    const global = (offsets.get(row.group) ?? Number.NaN) + row.seed;
    if (!(global >= range.start && global < range.end))
      throw new InputError(
        join(shard.dir, 'results.json'),
        `holds group '${row.group}' seed ${row.seed}, which belongs to another shard (this shard trains replicas ${range.start}…${range.end - 1}); it is not the output of this run`,
      );
  }
}

/** Checks one experiment's shards and combines them into the results of a single run. */
export function mergeShards(shards: readonly Shard[]): ExperimentResults {
  const first = shards[0];
  const { experiment, config } = first.results;
  const count = first.results.shard.count;
  const configText = JSON.stringify(config);
  const byIndex = new Map<number, Shard>();
  for (const shard of shards) {
    const where = join(shard.dir, 'results.json');
    if (JSON.stringify(shard.results.config) !== configText)
      throw new InputError(
        where,
        `its config differs from that of ${join(first.dir, 'results.json')}: the shards come from different runs of '${experiment}'`,
      );
    if (shard.results.shard.count !== count)
      throw new InputError(
        where,
        `is shard ${shard.results.shard.index}/${shard.results.shard.count}, but ${first.dir} is one of ${count} shards; merge shards of one --shard i/n split`,
      );
    if ((shard.results.quick ?? false) !== (first.results.quick ?? false))
      throw new InputError(where, 'mixes --quick and full runs');
    const other = byIndex.get(shard.results.shard.index);
    if (other)
      throw new InputError(
        where,
        `shard ${shard.results.shard.index}/${count} is given twice (also ${other.dir}); pass each shard once`,
      );
    byIndex.set(shard.results.shard.index, shard);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    const root = dirname(first.dir);
    const unfinished = missing.filter((i) =>
      existsSync(join(root, `shard-${i}-of-${count}`, 'checkpoint.json')),
    );
    throw new InputError(
      experiment,
      `shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} missing (expected ${join(root, `shard-${missing[0]}-of-${count}`)})${unfinished.length > 0 ? `; ${unfinished.map((i) => `${i}/${count}`).join(', ')} stopped at a checkpoint: rerun with --resume` : ''}; run it with --shard and merge again`,
    );
  }
  const groups = resolveGroups(config);
  const offsets = new Map<string, number>();
  let offset = 0;
  for (const g of groups) {
    offsets.set(g.group, offset);
    offset += g.seeds;
  }
  const ordered = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, shard]) => shard);
  const rows: ResultRow[] = [];
  const theory = new Set<string>();
  // Foreign replicas first (the clearer message), then each shard's completeness.
  const ranges = ordered.map((_, index) => shardRange(config, { index, count }));
  ordered.forEach((shard, index) => {
    checkReplicas(shard, offsets, ranges[index]);
  });
  ordered.forEach((shard, index) => {
    const where = join(shard.dir, 'results.json');
    checkRowsComplete(config, shard.results.rows, shard.results.divergences, ranges[index], where);
  });
  for (const shard of ordered) {
    for (const row of shard.results.rows) {
      if (row.metric === 'relativeSharpness') continue;
      if (row.seed === 'theory') {
        // Every shard touching a group writes its (identical) theory rows: keep one of each.
        const key = `${row.group}\u0000${row.metric}\u0000${row.step}`;
        if (theory.has(key)) continue;
        theory.add(key);
      }
      rows.push(row);
    }
  }
  rows.push(...relativeSharpnessRows(config, rows));
  const groupRank = new Map(config.groups.map((g, i) => [g.name, i]));
  return {
    experiment,
    adapter: [...new Set(ordered.map((s) => s.results.adapter))].join(' + '),
    startedAt: ordered.map((s) => s.results.startedAt).sort()[0],
    wallSeconds: Math.max(...ordered.map((s) => s.results.wallSeconds)),
    ...(first.results.quick !== undefined && { quick: first.results.quick }),
    config,
    rows: canonicalRowOrder(config, rows),
    definitions: [
      ...new Map(
        ordered.flatMap((s) => s.results.definitions ?? []).map((d) => [`${d.group}\u0000${d.metric}`, d]),
      ).values(),
    ],
    divergences: ordered
      .flatMap((s) => s.results.divergences)
      .sort((a, b) => (groupRank.get(a.group) ?? 0) - (groupRank.get(b.group) ?? 0) || a.replica - b.replica),
  };
}

export async function main(argv: string[]): Promise<number> {
  const { positional, flags: f } = parseArgs(argv, flags);
  if (positional.length === 0)
    throw new InputError('DIR', 'missing: the folder(s) of the shard runs (their --out)');
  // A given --out is checked before any shard is read (bad input is reported before work).
  if (typeof f.out === 'string') checkOutputDir(f.out);
  const dirs = [...new Set(positional.flatMap(findShardDirs).map((d) => resolve(d)))];
  if (dirs.length === 0)
    throw new InputError(
      'DIR',
      `no shard results (NAME/shard-i-of-n/results.json) under ${positional.join(', ')}; run with --shard i/n first`,
    );
  const byExperiment = new Map<string, Shard[]>();
  for (const dir of dirs) {
    const shard = loadShard(dir);
    const list = byExperiment.get(shard.results.experiment) ?? [];
    list.push(shard);
    byExperiment.set(shard.results.experiment, list);
  }
  const merged = [...byExperiment.values()].map((shards) => ({
    shards,
    results: mergeShards(shards),
    // Every shard's replicas side by side, encoded now so a bad or duplicate tensor stops the merge
    // before anything is written. Shards from before runs wrote weights have none: nor has the merge.
    weights: shards.every((s) => existsSync(join(s.dir, WEIGHTS_FILE)))
      ? weightsFileBytes(
          shards[0].results.experiment,
          shards.flatMap((s) => readWeightsFile(join(s.dir, WEIGHTS_FILE))),
        )
      : undefined,
  }));
  let out = typeof f.out === 'string' ? f.out : undefined;
  if (out === undefined) {
    // Shards run with one --out sit in OUT/NAME/shard-*: the merge goes next to them.
    const roots = new Set(dirs.map((d) => dirname(dirname(d))));
    if (roots.size > 1)
      throw new InputError(
        '--out',
        `the shards sit under different folders (${[...roots].join(', ')}); say where the merged results go with --out DIR`,
      );
    out = [...roots][0];
  }
  checkOutputDir(out);
  const outputs = merged.map(({ results }) => runOutput(out, results.experiment));
  for (const output of outputs) checkNotLocked(output);
  for (const [i, { shards, results, weights }] of merged.entries()) {
    // Like a run: staged, then committed as one set, under the folder's lock (shard folders stay).
    const output = outputs[i];
    const release = acquireLock(output);
    try {
      recoverOutput(output);
      const staging = prepareStaging(output);
      await writeExperimentFiles(staging, results);
      if (weights) writeFileAtomic(join(staging, WEIGHTS_FILE), weights);
      commitStaged(output);
    } catch (error) {
      if (!isIoError(error)) throw error;
      throw new OutputFailure(
        `cannot write the merged results (${error.message.split('\n')[0]}); ${output.dir} keeps its previous files; merge again once it can be written`,
      );
    } finally {
      release();
    }
    console.log(
      `${results.experiment}: ${shards.length} shards, ${results.rows.length} rows → ${join(output.dir, 'report.html')}`,
    );
  }
  console.log(`index: ${writeIndex(out)}`);
  return 0;
}
