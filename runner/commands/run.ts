// `sharpness-lab run NAME|FILE`: trains every group × seed of an experiment as batched replicas,
// measures at log points, and writes results, plots and report.html into DIR/NAME/.
import { dirname } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { checkDeviceLimits } from '../../src/experiments/config.ts';
import { checkInitialWeights } from '../../src/experiments/executor.ts';
import { PRESET_NAMES } from '../../src/experiments/presets/index.ts';
import { describeDivergence, groupDivergences } from '../../src/experiments/results.ts';
import { checkOutputFile, formatFlagHelp, parseArgs } from '../args.ts';
import { isBrowserBackend, runEngineJob } from '../browser/commands.ts';
import { usesMnist } from '../browser/jobs.ts';
import { loadDataFiles } from '../node/data-files.ts';
import { createNodeEngine } from '../node/engine.ts';
import {
  batchReplicas,
  checkOutputDir,
  type ExperimentExecutor,
  GpuFailure,
  loadExperiment,
  nodeExecutor,
  parseShard,
  readCheckpoint,
  readWeightsFile,
  runAndReport,
} from '../node/experiment.ts';
import { checkOptional } from '../node/optional.ts';
import { checkNotLocked, checkOverwrite, runOutput } from '../node/output-set.ts';
import { PROFILE_FLAGS, profileRequest, startProfile } from '../node/profile.ts';
import { DEVICE_FLAGS, deviceOptions } from './device-flags.ts';

const FLAGS = [
  { name: 'quick', kind: 'boolean' as const, help: "the preset's quick form (about a minute on a CPU)" },
  { name: 'out', kind: 'string' as const, help: 'output folder (default results/); files go to DIR/NAME/' },
  { name: 'seeds', kind: 'number' as const, help: 'replicas per group (overrides the config)' },
  { name: 'seed', kind: 'number' as const, help: 'base seed of every random stream (overrides the config)' },
  { name: 'config', kind: 'string' as const, help: 'a config file (same as giving FILE)' },
  {
    name: 'resume',
    kind: 'boolean' as const,
    help: 'continue from DIR/NAME/checkpoint.json (identical results)',
  },
  {
    name: 'shard',
    kind: 'string' as const,
    help: "train shard i of n (0 ≤ i < n): a contiguous range of the group × seed replicas; files go to DIR/NAME/shard-i-of-n/ ('merge' combines them)",
  },
  {
    name: 'init-from',
    kind: 'string' as const,
    help: "start every replica from a run's weights.safetensors (tensors group/seed/W1 …; names and shapes must match)",
  },
  {
    name: 'overwrite',
    kind: 'boolean' as const,
    help: 'replace finished results of a different config in DIR/NAME/ (refused without it)',
  },
  ...DEVICE_FLAGS,
  ...PROFILE_FLAGS,
];

export const usage = `usage: sharpness-lab run NAME|FILE [--quick] [--out DIR] [--seeds N] [--seed S] [--resume] [--shard i/n] [--init-from FILE]

Runs an experiment: a preset (${PRESET_NAMES.join(', ')}) or a JSON config file
(see 'sharpness-lab config NAME' for the format). All seeds of consecutive groups that differ only
in label noise, input covariance or initialisation train as one batch of replicas on the GPU (deep
linear networks in a fused many-steps-per-dispatch kernel); at each log point it measures the loss, the sharpness Tr H, λ_max, the gradient
fluctuation S (and layer condition numbers when asked), with the closed-form values for deep linear
networks. Shows a progress bar with ETA, saves a checkpoint at every log point, and writes into
DIR/NAME/: config.json, results.csv (experiment,group,seed,step,metric,value), results.json, one SVG
per figure panel, report.html and weights.safetensors (each replica's final weights, tensors named
group/seed/W1 …, for PyTorch, JAX or NumPy); DIR/index.html links every experiment in DIR.

A config trains on the user's own data with data {"kind": "file", "x": "x.npy", "y": "y.npy"} or
{"kind": "file", "csv": "d.csv", "yColumns": ["t"]} (paths relative to the config file, label noise
optional); the files are read and checked before any GPU work. train.optimizer picks sgd (default),
momentum or adam, train.schedule a learning-rate schedule (README, "Optimizers and your own data").
--init-from FILE starts every replica from a weights.safetensors whose tensors name each group/seed.

With --shard i/n it trains only shard i's replicas (numbered group-major over all groups × seeds, cut
into n contiguous near-equal ranges) and writes config.json, results.csv, results.json and
weights.safetensors into DIR/NAME/shard-i-of-n/; 'sharpness-lab merge DIR' then writes the files a
single run gives. Each
shard can run on another machine (see README, "Running sweeps on a cluster").

${formatFlagHelp(FLAGS)}

Files are written as one set: into DIR/.NAME.staging/ while the run works (its path is printed at the
start), then moved into DIR/NAME/ together when it completes, so DIR/NAME/ always holds one complete
run's files. DIR/.NAME.lock marks a run in progress: a second run on the same folder is refused
(naming the first one's pid); a lock left by a process that no longer exists is taken over. Finished
results of a different config in DIR/NAME/ are not replaced unless --overwrite is given.

--resume continues only the run that wrote the checkpoint: a changed config, --seed, --seeds, shard
or sharpness-lab version, or a damaged checkpoint, is refused naming what differs.

Exit codes: 0 success, 2 bad input (one line naming the field or flag; nothing is written), 1 runtime
failure such as a lost GPU device, an out-of-memory error or a full disk (one line; the last
checkpoint stays, and the line gives the --resume command). Ctrl-C prints the same command.`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  const profile = profileRequest(args);
  if (typeof args.flags['profile-trace'] === 'string')
    checkOutputFile(args.flags['profile-trace'], '--profile-trace');
  const targets = [...args.positional, ...(args.flags.config ? [args.flags.config as string] : [])];
  if (targets.length === 0)
    throw new InputError('NAME', `missing: a preset (${PRESET_NAMES.join(', ')}) or a config file`);
  if (targets.length > 1) throw new InputError(targets[1], 'unexpected argument (one experiment per run)');
  const out = (args.flags.out as string | undefined) ?? 'results';
  checkOutputDir(out);
  const quick = args.flags.quick === true;
  const config = loadExperiment({
    target: targets[0],
    quick,
    seeds: args.flags.seeds as number | undefined,
    seed: args.flags.seed as number | undefined,
  });
  // The user's data files, read and checked against the model now (paths relative to the config file).
  const dataFiles = loadDataFiles(config, PRESET_NAMES.includes(targets[0]) ? '.' : dirname(targets[0]));
  const shard = typeof args.flags.shard === 'string' ? parseShard(args.flags.shard, config) : undefined;
  const initFrom = args.flags['init-from'] as string | undefined;
  const initialWeights =
    initFrom === undefined ? undefined : { tensors: readWeightsFile(initFrom), field: initFrom };
  if (initialWeights) checkInitialWeights(config, initialWeights.tensors, initialWeights.field, shard);
  // Optional peers the run needs are found missing before anything is written.
  if (isBrowserBackend(args)) checkOptional('puppeteer-core');
  else if (usesMnist(config)) checkOptional('mnist');
  // A missing, damaged or foreign checkpoint, finished results of another config, or a folder another
  // run is writing are bad input: found out before any GPU work (the lock itself is taken later).
  const output = runOutput(out, config.name, shard);
  if (args.flags.resume === true) readCheckpoint(output.checkpoint, config, shard);
  checkOverwrite(output, config, args.flags.overwrite === true);
  checkNotLocked(output);
  // Shell-quoted where needed, so the line can be pasted back.
  const shellWord = (word: string) =>
    /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
  const resumeCommand = `sharpness-lab run ${argv.map(shellWord).join(' ')}${args.flags.resume ? '' : ' --resume'}`;
  const report = async (execute: ExperimentExecutor) => {
    const { reportPath, results } = await runAndReport(execute, config, {
      out,
      quick,
      resume: args.flags.resume === true,
      shard,
      resumeCommand,
      overwrite: args.flags.overwrite === true,
    });
    for (const entry of groupDivergences(config, results.divergences))
      console.error(`sharpness-lab: group '${entry.group}': ${describeDivergence(entry)}`);
    console.log(
      `${config.name}${shard ? ` shard ${shard.index}/${shard.count}` : ''}: ${results.rows.length} rows in ${results.wallSeconds.toFixed(1)} s → ${reportPath}`,
    );
  };
  if (isBrowserBackend(args)) {
    if (shard) throw new InputError('--shard', 'runs on the Node backend only (leave out --backend browser)');
    if (dataFiles)
      throw new InputError(
        '--backend',
        "data of kind 'file' runs on the Node backend only (leave out --backend browser)",
      );
    if (initialWeights)
      throw new InputError('--init-from', 'runs on the Node backend only (leave out --backend browser)');
    // The page runs the executor; progress and checkpoints stream back, files are written here.
    await report((hooks) =>
      runEngineJob(
        args,
        'experiment',
        { config, resume: hooks.resume },
        {
          onProgress: (event) => {
            if (event.kind === 'progress') hooks.onProgress?.(event.progress);
            else void hooks.checkpoint?.(event.state);
          },
        },
      ),
    );
    return 0;
  }
  const engine = await createNodeEngine(deviceOptions(args));
  try {
    // Sizes beyond this device's buffer limits are bad input, caught before any GPU work.
    checkDeviceLimits(
      config,
      {
        maxStorageBufferBindingSize: engine.context.adapterInfo.limits.maxStorageBufferBindingSize,
        maxBufferSize: engine.context.adapterInfo.limits.maxBufferSize,
      },
      batchReplicas(config, shard),
    );
    const finishProfile = startProfile(engine, profile);
    await report(nodeExecutor(engine, config, { dataFiles, initialWeights }));
    await finishProfile();
  } catch (error) {
    if (!(error instanceof GpuFailure)) throw error;
    console.error(`sharpness-lab: ${error.message}`);
    return 1;
  } finally {
    engine.destroy();
  }
  return 0;
}
