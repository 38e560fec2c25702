import { InputError } from '../src/errors.ts';
import { isModuleNotFound } from './node/optional.ts';
import { packageVersion } from './version.ts';

interface CommandModule {
  /** Returns the process exit code. */
  main(argv: string[]): Promise<number>;
  usage: string;
}

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  start: {
    summary: "the main job (npm start): the paper's two headline experiments, quick, beside the theory",
    load: () => import('./commands/start.ts'),
  },
  run: {
    summary: 'run an experiment (preset or config file): train, measure, plot, report',
    load: () => import('./commands/run.ts'),
  },
  lab: {
    summary:
      'the lab page: train live in the browser (WebGPU) beside the theory; or --out DIR for static files',
    load: () => import('./commands/lab.ts'),
  },
  info: {
    summary: 'show the WebGPU adapter, backend, limits and features',
    load: () => import('./commands/info.ts'),
  },
  theory: {
    summary: 'closed-form sharpness and fluctuation of a deep linear network',
    load: () => import('./commands/theory.ts'),
  },
  bench: {
    summary: 'run benchmarks against peers on the same adapter',
    load: () => import('./commands/bench.ts'),
  },
  config: {
    summary: "print a preset's experiment config as JSON (--list: the presets)",
    load: () => import('./commands/config.ts'),
  },
  report: {
    summary: 'rebuild the experiment reports and index from stored results',
    load: () => import('./commands/report.ts'),
  },
  tune: {
    summary: 'autotune matmul kernels for this adapter and cache the winners',
    load: () => import('./commands/tune.ts'),
  },
  merge: {
    summary: 'combine the shards of sharded runs (run --shard i/n) into the files of one run',
    load: () => import('./commands/merge.ts'),
  },
};

/** Loads a command; `bench` is not in the package (its peers are devDependencies): say where it runs. */
async function loadCommand(name: string, load: () => Promise<CommandModule>): Promise<CommandModule> {
  try {
    return await load();
  } catch (error) {
    if (name === 'bench' && isModuleNotFound(error, 'bench'))
      throw new InputError(
        'bench',
        'runs from a clone of the repository (`npm ci` there installs its peers @jax-js/jax and @tensorflow/tfjs-*); the npm package does not ship it',
      );
    throw error;
  }
}

function overview(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`);
  return `usage: sharpness-lab <command> [options] | --version\n\ncommands:\n${lines.join('\n')}\n\nRun 'sharpness-lab <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(packageVersion());
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command)
    throw new InputError(
      'command',
      `unknown command '${name}' (commands: ${Object.keys(commands).join(', ')}; see sharpness-lab --help)`,
    );
  const module = await loadCommand(name, command.load);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(module.usage);
    return 0;
  }
  return module.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof InputError) {
      console.error(`sharpness-lab: ${error.message}`);
      process.exitCode = 2;
    } else if (error instanceof Error && (error.name === 'GpuFailure' || error.name === 'OutputFailure')) {
      // A lost device, GPU error or failed write: the message says what happened and how to resume.
      console.error(`sharpness-lab: ${error.message}`);
      process.exitCode = 1;
    } else {
      console.error(
        `sharpness-lab: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
      process.exitCode = 1;
    }
  },
);
