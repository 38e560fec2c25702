/**
 * The browser host, Node side: bundle the page, serve it from 127.0.0.1, launch Chromium, run jobs
 * in the page and stream their progress and results back, and clean everything up.
 *
 *   const info = await runBrowserJob('info', undefined);
 *   await withBrowserEngine(async (session) => {
 *     const result = await session.run('train-deep-linear', params, { onProgress: (p) => … });
 *   });
 *
 * Any page console error, uncaught exception or unhandled rejection, lost GPU device, crashed page or
 * browser ends the session with a `BrowserRunError` (a runtime failure: exit code 1); an `InputError`
 * thrown by a job comes back as an `InputError` (exit code 2). The browser, its process group, its
 * profile, the server and the bundle folder are gone when the call returns, however it ended.
 * The steps of a session are in session/: serve-page, launch, wire-page, run-job (state.ts is what
 * they share).
 */
import { InputError } from '../../src/errors.ts';
import { acquireAdapter } from '../node/device.ts';
import type { Chromium, GpuMode } from './chromium.ts';
import { BrowserRunError } from './errors.ts';
import type { PageJobs } from './page.ts';
import type { JobParams, JobProgress, JobResult, JobTable, PageInit } from './protocol.ts';
import type { StaticServer } from './server.ts';
import { type BrowserFault, FAULT_ENV, injectHostFault, pageFault, parseFault } from './session/faults.ts';
import { launchBrowser } from './session/launch.ts';
import { jobRunner, type RunOptions } from './session/run-job.ts';
import { servePage } from './session/serve-page.ts';
import { SessionState } from './session/state.ts';
import { initPage, openPage } from './session/wire-page.ts';

export const GPU_MODE_ENV = 'SHARPNESS_LAB_BROWSER_GPU';
export { type BrowserFailureKind, BrowserRunError } from './errors.ts';
export { type BrowserFault, FAULT_ENV, HOST_FAULTS } from './session/faults.ts';
export type { RunOptions } from './session/run-job.ts';
export { BUNDLE_PREFIX } from './session/serve-page.ts';

export interface BrowserHostOptions {
  /** 'auto' (default, or SHARPNESS_LAB_BROWSER_GPU): hardware flags when Dawn finds a hardware adapter. */
  gpu?: GpuMode | 'auto';
  /** Refuse SwiftShader. */
  requireHardware?: boolean;
  /** Chromium executable (default: `findChromium()`: CHROME_PATH, PUPPETEER_EXECUTABLE_PATH, system, Puppeteer's). */
  executablePath?: string;
  /** Progress lines and page console output (default: stderr). */
  log?: (line: string) => void;
  /** Page entry (default runner/browser/page.ts) and module replacements for its bundle. */
  entry?: string;
  replace?: Record<string, string>;
  /** Virtual modules for the page bundle (specifier → JavaScript source). */
  modules?: Record<string, string>;
  /** requestAdapter in the page gives up after this long (default 60 s). */
  adapterTimeoutMs?: number;
  /** Inject a failure (default: SHARPNESS_LAB_BROWSER_FAULT): tests of the failure paths. */
  fault?: BrowserFault;
}

export interface BrowserSession<J extends JobTable> {
  /** Adapter-independent facts about the browser: pid, profile, flags, version. */
  readonly chromium: Chromium;
  readonly host: string;
  readonly server: StaticServer;
  /** Where the page came from: a cache entry (kept) or a temporary folder (deleted at close). */
  readonly bundle: { outdir: string; cached: boolean; temporary: boolean };
  /** Runs job `name` in the page; its progress streams to `onProgress`, its log lines to `log`. */
  run<N extends keyof J & string>(
    name: N,
    params: JobParams<J[N]>,
    options?: RunOptions<JobProgress<J[N]>>,
  ): Promise<JobResult<J[N]>>;
  /** Maps bundle locations in a page stack trace back to the TypeScript sources. */
  mapStack(text: string): string;
  /** Set once the session has failed (every later `run` rejects with it). */
  readonly failure: BrowserRunError | undefined;
  close(): Promise<void>;
}

const stderrLog = (line: string) => process.stderr.write(`${line}\n`);

/**
 * Which flag set to start Chromium with. Hardware flags can hang `requestAdapter` on a machine
 * without a GPU, so ask Dawn first: if it only finds SwiftShader (or nothing), use SwiftShader.
 */
export async function chooseGpuMode(options: BrowserHostOptions): Promise<GpuMode> {
  const requested = options.gpu ?? (process.env[GPU_MODE_ENV] as GpuMode | 'auto' | undefined) ?? 'auto';
  if (!['auto', 'hardware', 'swiftshader'].includes(requested))
    throw new InputError(GPU_MODE_ENV, `expected auto, hardware or swiftshader, got '${requested}'`);
  if (requested !== 'auto') return requested;
  if (process.platform !== 'linux') return 'hardware';
  // acquireAdapter points VK_ICD_FILENAMES at SwiftShader when it falls back: keep the browser's env clean.
  const icdBefore = process.env.VK_ICD_FILENAMES;
  try {
    const { swiftshader } = await acquireAdapter({ log: () => {} });
    return swiftshader ? 'swiftshader' : 'hardware';
  } catch {
    return 'swiftshader'; // Chromium ships its own SwiftShader
  } finally {
    if (icdBefore === undefined) delete process.env.VK_ICD_FILENAMES;
    else process.env.VK_ICD_FILENAMES = icdBefore;
  }
}

/** The GPU mode to launch with; `requireHardware` refuses SwiftShader before anything starts. */
async function launchGpuMode(options: BrowserHostOptions): Promise<GpuMode> {
  const gpu = await chooseGpuMode(options);
  if (options.requireHardware && gpu === 'swiftshader')
    throw new BrowserRunError(
      'launch',
      '--require-hardware: no hardware GPU adapter on this machine (Dawn finds only SwiftShader)',
    );
  return gpu;
}

/**
 * Opens a session: serve the page, launch Chromium, open and wire the page, initialise it, then run
 * jobs in it. Close it (or use `withBrowserEngine`); a step that fails closes what the others opened.
 */
export async function openBrowserSession<J extends JobTable = PageJobs>(
  options: BrowserHostOptions = {},
): Promise<BrowserSession<J>> {
  const log = options.log ?? stderrLog;
  const fault = options.fault ?? parseFault(process.env[FAULT_ENV]);
  const gpu = await launchGpuMode(options);
  const state = new SessionState();
  try {
    const served = await servePage(options, state);
    const chromium = await launchBrowser(gpu, options.executablePath, state);
    const host = `chromium ${chromium.majorVersion} (puppeteer)`;
    const page = await openPage(chromium.browser, served, state, {
      log,
      onArmed: () => injectHostFault(fault, chromium, log),
    });
    await initPage(page, pageSettings(host, gpu, options, fault), state);
    const { bundle, server, mapStack } = served;
    return {
      chromium,
      host,
      server,
      bundle: { outdir: bundle.outdir, cached: bundle.cached, temporary: bundle.temporary },
      mapStack,
      get failure() {
        return state.failure;
      },
      close: () => state.close(),
      run: jobRunner(page, state) as BrowserSession<J>['run'],
    };
  } catch (error) {
    await state.close();
    throw error;
  }
}

/** What the page's engines need to know: where they run, which backend, the adapter rules, a fault. */
function pageSettings(
  host: string,
  gpu: GpuMode,
  options: BrowserHostOptions,
  fault: BrowserFault | undefined,
): PageInit {
  return {
    host,
    backend: gpu === 'swiftshader' ? 'vulkan' : platformBackend(),
    requireHardware: options.requireHardware ?? false,
    adapterTimeoutMs: options.adapterTimeoutMs ?? 60_000,
    ...(fault ? { fault: pageFault(fault) } : {}),
  };
}

function platformBackend(): string {
  return { linux: 'vulkan', darwin: 'metal', win32: 'd3d12' }[process.platform as string] ?? 'default';
}

/** Runs `fn` with a browser session and always closes it (browser, profile, server, bundle). */
export async function withBrowserEngine<T, J extends JobTable = PageJobs>(
  fn: (session: BrowserSession<J>) => Promise<T>,
  options: BrowserHostOptions = {},
): Promise<T> {
  const session = await openBrowserSession<J>(options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** Runs one job of the default page in a fresh browser and returns its result. */
export function runBrowserJob<N extends keyof PageJobs & string>(
  name: N,
  params: JobParams<PageJobs[N]>,
  options: BrowserHostOptions & RunOptions<JobProgress<PageJobs[N]>> = {},
): Promise<JobResult<PageJobs[N]>> {
  return withBrowserEngine((session) => session.run(name, params, options), options);
}
