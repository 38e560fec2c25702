// `sharpness-lab lab [--port N] [--open] [--out DIR]`: the lab page, served from 127.0.0.1, or
// written as static files for any static host.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { InputError } from '../../src/errors.ts';
import { type FlagSpec, formatFlagHelp, parseArgs } from '../args.ts';
import { REPO_ROOT } from '../browser/bundle.ts';
import { serveStatic } from '../browser/server.ts';
import { buildLab, cachedLabBundle } from '../lab/build.ts';

const flags: FlagSpec[] = [
  { name: 'port', kind: 'number', help: 'port on 127.0.0.1 (default: a free one)' },
  { name: 'open', kind: 'boolean', help: "open the page in the system's default browser" },
  {
    name: 'out',
    kind: 'string',
    help: 'write the app as static files into DIR and exit (npm run build:lab)',
  },
];

export const usage = `usage: sharpness-lab lab [--port N] [--open]
       sharpness-lab lab --out DIR

The lab: a page that trains the paper's deep linear network live on the browser's GPU (WebGPU) — every
replica in the fused kernels, many steps per frame — with live plots of the loss, sharpness T = Tr H,
fluctuation S and λ_max (mean ± s.e. over replicas) beside the closed-form T*, S*, λ_max* and T_min,
which follow every control at once (depth, width, V, Σ_x, √Σ_ε with its anisotropy κ and rotation,
learning rate, batch size, replicas, init, SGD / GD / switch). Presets load the paper's settings.
Exports results.csv / results.json in the run command's format and a config.json that
'sharpness-lab run' accepts; the URL holds the setting, so a link reproduces it.

Serves the page from http://127.0.0.1 (WebGPU needs a secure context) until Ctrl-C. With --out it
writes index.html, page.js and its chunks instead: put them on any static host (no server code, no
network access at run time). Needs a WebGPU browser: Chrome or Edge 113+, Safari 26, Firefox 141 on
Windows (Linux Chrome: chrome://flags/#enable-unsafe-webgpu).

options:
${formatFlagHelp(flags)}`;

function checkPort(port: unknown): number {
  if (port === undefined) return 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new InputError('--port', `expected an integer port in 1…65535, got ${port}`);
  return port;
}

/** Opens `url` with the platform's opener; a missing opener is a note, not a failure. */
function openInBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]];
  const child = spawn(command, args, { detached: true, stdio: 'ignore' });
  child.on('error', () =>
    console.error(`sharpness-lab lab: could not start ${command}; open ${url} yourself`),
  );
  child.unref();
}

/**
 * The app to serve: built from the sources (cached), or, where esbuild (a devDependency) is not
 * installed, a static build at the package root (`npm run build:lab`).
 */
async function labFiles(): Promise<{ outdir: string; temporary: boolean }> {
  try {
    return await cachedLabBundle(() => mkdtemp(join(tmpdir(), 'sharpness-lab-lab-')));
  } catch (error) {
    const prebuilt = join(REPO_ROOT, 'dist-lab');
    if (!/esbuild, which is not installed/.test(String(error)) || !existsSync(join(prebuilt, 'index.html')))
      throw error;
    return { outdir: prebuilt, temporary: false };
  }
}

export async function main(argv: string[]): Promise<number> {
  const { positional, flags: f } = parseArgs(argv, flags);
  if (positional.length > 0)
    throw new InputError(positional[0], 'unexpected argument (lab takes only flags)');
  if (typeof f.out === 'string') {
    if (f.port !== undefined || f.open)
      throw new InputError('--out', 'writes files; it takes no --port or --open');
    const bundle = await buildLab(f.out);
    console.log(
      `sharpness-lab lab: wrote ${bundle.files.length} files to ${relative(process.cwd(), bundle.outdir) || '.'} (serve the folder with any static file server)`,
    );
    return 0;
  }
  const port = checkPort(f.port);
  const bundle = await labFiles();
  let server: Awaited<ReturnType<typeof serveStatic>>;
  try {
    server = await serveStatic(bundle.outdir, port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new InputError('--port', `port ${port} is in use on 127.0.0.1; pick another or leave --port out`);
    throw error;
  }
  console.log(`sharpness-lab lab: serving ${server.url} (Ctrl-C stops)`);
  if (f.open) openInBrowser(server.url);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  if (bundle.temporary) await rm(bundle.outdir, { recursive: true, force: true });
  return 0;
}
