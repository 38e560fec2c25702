import { InputError } from '../../src/errors.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import { formatFlagHelp, parseArgs } from '../args.ts';
import { acquireDevice } from '../node/device.ts';
import { defaultTuneCachePath, loadNodeTuning } from '../node/tune-cache.ts';
import { DEVICE_FLAGS, deviceOptions } from './device-flags.ts';

const FLAGS = [...DEVICE_FLAGS, { name: 'json', kind: 'boolean' as const, help: 'print one JSON object' }];

export const usage = `usage: sharpness-lab info [--json] [--backend NAME] [--adapter TEXT]

Shows the WebGPU adapter the engine will use (vendor, architecture, device, description), the
backend, the device limits it was granted and its features. Without a hardware adapter, SwiftShader
(CPU Vulkan) is used and said so on stderr. With --backend browser, the adapter a Chromium page gets.

${formatFlagHelp(FLAGS)}`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.positional.length > 0)
    throw new InputError(args.positional[0], 'unexpected argument (info takes only flags; see --help)');
  let info: AdapterDescription;
  let tuning = 'not used (browser backend)';
  if (args.flags.backend === 'browser') {
    info = await (await import('../browser/commands.ts')).browserInfo(args);
  } else {
    const context = await acquireDevice(deviceOptions(args));
    info = context.adapterInfo;
    // Whether matmul uses `sharpness-lab tune` winners on this adapter (as run and bench would).
    const path = defaultTuneCachePath();
    let warning = '';
    const loaded = loadNodeTuning(context, path, (line) => {
      warning = line.replace(/^sharpness-lab: /, '');
    });
    tuning = loaded ? `${path} (${loaded.entries.length} shape classes)` : warning || `none (${path} absent)`;
    context.device.destroy();
  }
  if (args.flags.json) {
    console.log(JSON.stringify(info, null, 2));
  } else {
    const rows: [string, string][] = [
      ['vendor', info.vendor],
      ['architecture', info.architecture],
      ['device', info.device],
      ['description', info.description],
      ['backend', info.backend],
      ['host', info.host],
      ['features', info.features.join(', ')],
      ['tuning cache', tuning],
    ];
    for (const [key, value] of rows) console.log(`${key.padEnd(14)}${value || '(not reported)'}`);
    console.log('limits');
    for (const [key, value] of Object.entries(info.limits).sort()) console.log(`  ${key.padEnd(44)}${value}`);
  }
  return 0;
}
