// `npm start`: the main job. Runs the paper's two headline experiments in their quick forms on this
// machine's adapter and prints where the report is.
import { resolve } from 'node:path';
import { formatFlagHelp, parseArgs } from '../args.ts';
import { createNodeEngine } from '../node/engine.ts';
import { checkOutputDir, loadExperiment, nodeExecutor, runAndReport } from '../node/experiment.ts';
import { checkNotLocked, checkOverwrite, runOutput } from '../node/output-set.ts';
import { DEVICE_FLAGS, deviceOptions } from './device-flags.ts';

/** The experiments `npm start` reproduces (quick forms). */
export const START_EXPERIMENTS = ['init-scale', 'sharpening-linear'];

const FLAGS = [
  { name: 'out', kind: 'string' as const, help: 'output folder (default results/)' },
  {
    name: 'overwrite',
    kind: 'boolean' as const,
    help: 'replace finished results of a different config (e.g. a full run) in DIR/NAME/',
  },
  ...DEVICE_FLAGS,
];

export const usage = `usage: sharpness-lab start [--out DIR] [--overwrite] [--backend NAME] [--adapter TEXT]

The main job (npm start): runs the quick forms of ${START_EXPERIMENTS.join(' and ')} — the final
sharpness does not depend on the initialisation scale, and anisotropic label noise sharpens the
minimum SGD finds while isotropic noise keeps it flat, each next to the closed-form theory — and
writes DIR/index.html with a report per experiment. Full forms: 'sharpness-lab run NAME'.

${formatFlagHelp(FLAGS)}`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  const out = (args.flags.out as string | undefined) ?? 'results';
  checkOutputDir(out);
  const configs = START_EXPERIMENTS.map((target) => loadExperiment({ target, quick: true }));
  const overwrite = args.flags.overwrite === true;
  // Finished results of another config (a full run) or a folder another run holds: refused up front.
  for (const config of configs) {
    const output = runOutput(out, config.name);
    checkOverwrite(output, config, overwrite);
    checkNotLocked(output);
  }
  const engine = await createNodeEngine(deviceOptions(args));
  try {
    const a = engine.context.adapterInfo;
    console.log(`adapter: ${a.vendor} ${a.architecture} (${a.description || a.device}, ${a.backend})`);
    for (const [i, config] of configs.entries()) {
      const { reportPath, results } = await runAndReport(nodeExecutor(engine, config), config, {
        out,
        quick: true,
        overwrite,
        progressLabel: `[${i + 1}/${configs.length}] ${config.name}`,
      });
      console.log(`${config.name}: ${results.wallSeconds.toFixed(0)} s → ${reportPath}`);
    }
  } finally {
    engine.destroy();
  }
  console.log(`\nReport: ${resolve(out, 'index.html')}`);
  return 0;
}
