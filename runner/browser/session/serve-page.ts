/**
 * Serving the page: its bundle (a cache entry, or a temporary folder deleted at close or when the
 * process exits), a static server on 127.0.0.1, and the mapper from bundle locations in page stack
 * traces back to the TypeScript sources.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BundleOptions, type CachedBundle, cachedPageBundle, REPO_ROOT } from '../bundle.ts';
import { cleanupOnExit } from '../cleanup.ts';
import { type StaticServer, serveStatic } from '../server.ts';
import { createStackMapper } from '../stack.ts';
import type { SessionState } from './state.ts';

export const BUNDLE_PREFIX = 'sharpness-lab-page-';

export interface ServedPage {
  bundle: CachedBundle;
  server: StaticServer;
  mapStack(text: string): string;
}

export async function servePage(
  options: Pick<BundleOptions, 'entry' | 'replace' | 'modules'>,
  state: SessionState,
): Promise<ServedPage> {
  let temporaryDir: string | undefined; // set once the page is built into a temporary folder
  const unregister = cleanupOnExit(() => {
    if (temporaryDir) rmSync(temporaryDir, { recursive: true, force: true });
  });
  state.onClose(async () => {
    if (temporaryDir) await rm(temporaryDir, { recursive: true, force: true });
    unregister();
  });
  const bundle = await cachedPageBundle({
    entry: options.entry,
    replace: options.replace,
    modules: options.modules,
    temporaryDir: () => mkdtemp(join(tmpdir(), BUNDLE_PREFIX)),
  });
  if (bundle.temporary) temporaryDir = bundle.outdir;
  const server = await serveStatic(bundle.outdir);
  state.onClose(() => server.close());
  return { bundle, server, mapStack: createStackMapper(bundle.outdir, server.url, REPO_ROOT) };
}
