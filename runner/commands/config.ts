// `sharpness-lab config NAME [--quick]`: prints a preset's experiment config as JSON, ready to edit
// and pass back to `run --config FILE`.
import { InputError } from '../../src/errors.ts';
import { applyQuick, parseExperimentConfig } from '../../src/experiments/config.ts';
import { PRESET_NAMES, PRESETS, presetConfig } from '../../src/experiments/presets/index.ts';
import { type FlagSpec, formatFlagHelp, parseArgs } from '../args.ts';

const flags: FlagSpec[] = [
  { name: 'quick', kind: 'boolean', help: "print the quick form (the preset's quick override applied)" },
  { name: 'list', kind: 'boolean', help: 'list the presets with the figure each reproduces' },
];

export const usage = `usage: sharpness-lab config NAME [--quick]
       sharpness-lab config --list

Prints the experiment config of a preset as JSON (model, loss, data and noise, init, train, measure,
seeds, groups, panels, and its 'quick' override), validated. Save it, edit it, and run it with
'sharpness-lab run --config FILE'.

The precision of sampled curvature (teacher-student, MNIST, RNN, Transformer) is set by
measure.evaluationSamples (samples per replica; each estimate's standard error falls as 1/sqrt of it)
and measure.evaluationChunks (chunks measured one at a time, default 8, at least 2: the standard
errors of Tr H and lambda_max are batch means over them); every estimate is written with its s.e.
in a row <metric>StandardError.

presets: ${PRESET_NAMES.join(', ')}

options:
${formatFlagHelp(flags)}`;

export async function main(argv: string[]): Promise<number> {
  const { positional, flags: f } = parseArgs(argv, flags);
  if (f.list) {
    if (positional.length > 0) throw new InputError(positional[0], '--list takes no preset name');
    const width = Math.max(...PRESET_NAMES.map((n) => n.length)) + 2;
    for (const name of PRESET_NAMES) console.log(`${name.padEnd(width)}${PRESETS[name].figure ?? ''}`);
    return 0;
  }
  if (positional.length === 0)
    throw new InputError('NAME', `missing: which preset (presets: ${PRESET_NAMES.join(', ')})`);
  if (positional.length > 1) throw new InputError(positional[1], 'unexpected argument (one preset name)');
  const config = parseExperimentConfig(presetConfig(positional[0]));
  const output = f.quick ? applyQuick(config) : config;
  console.log(JSON.stringify(output, null, 2));
  return 0;
}
