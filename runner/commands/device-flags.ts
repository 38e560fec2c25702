import { InputError } from '../../src/errors.ts';
import type { FlagSpec, ParsedArgs } from '../args.ts';
import type { NodeDeviceOptions } from '../node/device.ts';

/** Flags every GPU command shares. */
export const DEVICE_FLAGS: FlagSpec[] = [
  {
    name: 'backend',
    kind: 'string',
    help: "Dawn backend: vulkan, metal, d3d12, opengl (default: the platform's); browser: Chromium via Puppeteer (info, run, bench)",
  },
  { name: 'adapter', kind: 'string', help: 'pick the adapter whose name contains this text (Dawn adapter=)' },
  {
    name: 'require-hardware',
    kind: 'boolean',
    help: 'fail instead of falling back to SwiftShader (GPU CI runners)',
  },
];

/** Backends Dawn accepts (checked before asking it for an adapter). */
const DAWN_BACKENDS = ['vulkan', 'metal', 'd3d12', 'd3d11', 'opengl', 'opengles', 'null'];

export function deviceOptions(args: ParsedArgs): NodeDeviceOptions {
  // Commands with a browser path branch before asking for Dawn options.
  if (args.flags.backend === 'browser')
    throw new InputError(
      '--backend',
      "'browser' is not available for this command (info, run and bench take it)",
    );
  const backend = args.flags.backend as string | undefined;
  if (backend !== undefined && !DAWN_BACKENDS.includes(backend))
    throw new InputError(
      '--backend',
      `unknown backend '${backend}' (known: ${DAWN_BACKENDS.join(', ')}, browser)`,
    );
  return {
    backend,
    adapter: args.flags.adapter as string | undefined,
    requireHardware: args.flags['require-hardware'] === true,
  };
}
