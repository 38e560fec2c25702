// `sharpness-lab report [--out DIR]`: re-renders every experiment's SVGs and report.html from its
// results.json (a plot change needs no re-run) and rebuilds DIR/index.html.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { type FlagSpec, formatFlagHelp, parseArgs } from '../args.ts';
import { findExperiments, rerenderExperiment, writeIndex } from '../node/report.ts';

const flags: FlagSpec[] = [
  {
    name: 'out',
    kind: 'string',
    help: 'results folder holding one subfolder per experiment (default results)',
  },
];

export const usage = `usage: sharpness-lab report [--out DIR]

Rebuilds the reports in DIR (default results/): for every DIR/NAME/results.json, re-renders the panel
SVGs and report.html from the stored rows (no training), then writes DIR/index.html linking them all.

options:
${formatFlagHelp(flags)}`;

export async function main(argv: string[]): Promise<number> {
  const { positional, flags: f } = parseArgs(argv, flags);
  if (positional.length > 0) throw new InputError(positional[0], 'unexpected argument (see --help)');
  const dir = typeof f.out === 'string' ? f.out : 'results';
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(
      '--out',
      `'${dir}' is not a folder (run an experiment first: sharpness-lab run NAME)`,
    );
  const names = findExperiments(dir);
  let failures = 0;
  for (const name of names) {
    try {
      await rerenderExperiment(join(dir, name));
      console.log(`${name}: ${join(dir, name, 'report.html')}`);
    } catch (error) {
      failures++;
      console.error(`sharpness-lab: ${name}: ${(error as Error).message}`);
    }
  }
  const index = writeIndex(dir);
  console.log(`index of ${names.length} experiment${names.length === 1 ? '' : 's'}: ${index}`);
  return failures > 0 ? 1 : 0;
}
