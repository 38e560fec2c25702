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
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConsoleMessage, Page } from 'puppeteer-core';
import { InputError } from '../../src/errors.ts';
import { acquireAdapter } from '../node/device.ts';
import { cachedPageBundle, REPO_ROOT } from './bundle.ts';
import { type Chromium, findGpuProcess, type GpuMode, launchChromium } from './chromium.ts';
import { cleanupOnExit } from './cleanup.ts';
import { type BrowserFailureKind, BrowserRunError } from './errors.ts';
import type { PageJobs } from './page.ts';
import {
  decodeJson,
  EVENT_BINDING,
  encodeJson,
  type JobParams,
  type JobProgress,
  type JobResult,
  type JobTable,
  PAGE_FAULTS,
  type PageApi,
  type PageEvent,
  type PageFault,
  type PageInit,
  type SerializedError,
} from './protocol.ts';
import { type StaticServer, serveStatic } from './server.ts';
import { createStackMapper } from './stack.ts';

export const GPU_MODE_ENV = 'SHARPNESS_LAB_BROWSER_GPU';
export const FAULT_ENV = 'SHARPNESS_LAB_BROWSER_FAULT';
/** Faults injected on the Node side: kill the browser, or crash its GPU process, while a job runs. */
export const HOST_FAULTS = ['crash', 'gpu-crash'] as const;
export type BrowserFault = PageFault | (typeof HOST_FAULTS)[number];
export const BUNDLE_PREFIX = 'sharpness-lab-page-';

export { type BrowserFailureKind, BrowserRunError } from './errors.ts';

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

export interface RunOptions<Progress> {
  onProgress?: (event: Progress) => void;
  /** Reject (and end the session) if the job takes longer than this. */
  timeoutMs?: number;
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

function parseFault(value: string | undefined): BrowserFault | undefined {
  if (!value) return undefined;
  const known: readonly string[] = [...PAGE_FAULTS, ...HOST_FAULTS];
  if (!known.includes(value))
    throw new InputError(FAULT_ENV, `unknown fault '${value}' (known: ${known.join(', ')})`);
  return value as BrowserFault;
}

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

function rebuildError(error: SerializedError, mapStack: (text: string) => string): Error {
  if (error.name === 'InputError' && error.field !== undefined) {
    const prefix = `${error.field}: `;
    return new InputError(
      error.field,
      error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message,
    );
  }
  return new BrowserRunError(
    'job-failed',
    `in the page: ${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`,
    error.stack && mapStack(error.stack),
  );
}

function describeConsole(message: ConsoleMessage, mapStack: (text: string) => string): string {
  const where = message.location();
  const at = where.url
    ? ` (at ${mapStack(`${where.url}:${(where.lineNumber ?? 0) + 1}:${(where.columnNumber ?? 0) + 1}`)})`
    : '';
  return `${message.text()}${at}`;
}

interface PendingJob {
  resolve(value: unknown): void;
  reject(error: Error): void;
  onProgress?: (event: never) => void;
}

/** Opens a session: bundle, server, browser, page initialised. Close it (or use `withBrowserEngine`). */
export async function openBrowserSession<J extends JobTable = PageJobs>(
  options: BrowserHostOptions = {},
): Promise<BrowserSession<J>> {
  const log = options.log ?? stderrLog;
  const fault = options.fault ?? parseFault(process.env[FAULT_ENV]);
  const gpu = await chooseGpuMode(options);
  if (options.requireHardware && gpu === 'swiftshader')
    throw new BrowserRunError(
      'launch',
      '--require-hardware: no hardware GPU adapter on this machine (Dawn finds only SwiftShader)',
    );

  // The page bundle comes from the cache (.cache/browser-page); a temporary one is deleted at close.
  let bundleDir: string | undefined;
  let temporaryBundle = false;
  const unregisterBundle = cleanupOnExit(() => {
    if (temporaryBundle && bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  });
  let server: StaticServer | undefined;
  let chromium: Chromium | undefined;
  let failure: BrowserRunError | undefined;
  let closed: Promise<void> | undefined;
  const pending = new Map<number, PendingJob>();
  let onFailure: (error: BrowserRunError) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    onFailure = reject;
  });
  failed.catch(() => {});

  const fail = (kind: BrowserFailureKind, message: string, stack?: string) => {
    if (failure) return;
    failure = new BrowserRunError(kind, message, stack);
    for (const job of pending.values()) job.reject(failure);
    pending.clear();
    onFailure(failure);
  };

  const close = () => {
    closed ??= (async () => {
      fail('closed', 'the browser session was closed');
      await chromium?.close();
      await server?.close();
      if (temporaryBundle && bundleDir) await rm(bundleDir, { recursive: true, force: true });
      unregisterBundle();
    })();
    return closed;
  };

  try {
    const bundle = await cachedPageBundle({
      entry: options.entry,
      replace: options.replace,
      modules: options.modules,
      temporaryDir: () => mkdtemp(join(tmpdir(), BUNDLE_PREFIX)),
    });
    bundleDir = bundle.outdir;
    temporaryBundle = bundle.temporary;
    server = await serveStatic(bundleDir);
    const mapStack = createStackMapper(bundleDir, server.url, REPO_ROOT);
    chromium = await launchChromium({ gpu, executablePath: options.executablePath });
    const host = `chromium ${chromium.majorVersion} (puppeteer)`;
    void chromium.crashed.then((message) => fail('crash', message));

    const page: Page = await chromium.browser.newPage();
    page.on('console', (message) => {
      const type = message.type();
      if (type === 'error')
        fail('console-error', `page console error: ${describeConsole(message, mapStack)}`);
      else if (type === 'warn' || type === 'log' || type === 'info') log(`chromium: ${message.text()}`);
    });
    page.on('pageerror', (error) => {
      const e = error as Error;
      fail(
        'page-error',
        `uncaught exception in the page: ${e.message ?? String(error)}`,
        e.stack && mapStack(e.stack),
      );
    });
    page.on('error', (error) => fail('crash', `the page crashed: ${error.message}`));

    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => {
      onReady = resolve;
    });
    await page.exposeFunction(EVENT_BINDING, (json: string) => {
      const event = decodeJson(json) as PageEvent;
      switch (event.type) {
        case 'ready':
          onReady();
          return;
        case 'log':
          log(event.line);
          return;
        case 'progress':
          pending.get(event.job)?.onProgress?.(event.event as never);
          return;
        case 'done':
          pending.get(event.job)?.resolve(event.result);
          pending.delete(event.job);
          return;
        case 'failed':
          pending.get(event.job)?.reject(rebuildError(event.error, mapStack));
          pending.delete(event.job);
          return;
        case 'fatal':
          fail('device-lost', `in the page: ${event.message.replace(/^sharpness-lab: /, '')}`);
          return;
        case 'armed':
          log(`sharpness-lab: injected fault '${fault}': the page job is waiting`);
          if (fault === 'crash') process.kill(chromium!.pid, 'SIGKILL');
          if (fault === 'gpu-crash') crashGpuProcess(chromium!);
          return;
      }
    });
    await Promise.race([page.goto(server.url, { waitUntil: 'load' }), failed]);
    await Promise.race([
      ready,
      failed,
      timeout(30_000, `the page at ${server.url} did not start within 30 s`),
    ]);
    const init: PageInit = {
      host,
      backend: gpu === 'swiftshader' ? 'vulkan' : platformBackend(),
      requireHardware: options.requireHardware ?? false,
      adapterTimeoutMs: options.adapterTimeoutMs ?? 60_000,
      ...(fault ? { fault: pageFault(fault) } : {}),
    };
    await Promise.race([
      page.evaluate((i) => (window as unknown as { sharpnessLab: PageApi }).sharpnessLab.init(i), init),
      failed,
    ]);

    let nextJob = 0;
    const session: BrowserSession<J> = {
      chromium,
      host,
      server,
      bundle: { outdir: bundle.outdir, cached: bundle.cached, temporary: bundle.temporary },
      mapStack,
      get failure() {
        return failure;
      },
      close,
      async run(name, params, runOptions = {}) {
        if (failure) throw failure;
        const id = ++nextJob;
        const done = new Promise<unknown>((resolve, reject) => {
          pending.set(id, { resolve, reject, onProgress: runOptions.onProgress as (event: never) => void });
        });
        const start = page.evaluate(
          (job, jobName, encoded) =>
            (window as unknown as { sharpnessLab: PageApi }).sharpnessLab.start(job, jobName, encoded),
          id,
          name,
          encodeJson(params),
        );
        const started = start.then(
          () => new Promise<never>(() => {}),
          async (error: Error) => {
            // The page going away also fails the evaluate call: prefer the reason (crash) when it comes.
            await Promise.race([failed, new Promise((resolve) => setTimeout(resolve, 2_000))]).catch(
              () => {},
            );
            throw (
              failure ?? new BrowserRunError('job-failed', `starting job '${name}' failed: ${error.message}`)
            );
          },
        );
        const racers: Promise<unknown>[] = [done, failed, started];
        if (runOptions.timeoutMs !== undefined) {
          racers.push(
            timeout(
              runOptions.timeoutMs,
              `job '${name}' did not finish within ${runOptions.timeoutMs / 1000} s`,
            ).catch((error: Error) => {
              fail('timeout', error.message);
              throw failure;
            }),
          );
        }
        return (await Promise.race(racers)) as JobResult<J[typeof name]>;
      },
    };
    return session;
  } catch (error) {
    await close();
    throw error;
  }
}

/** The page's part of a fault: host faults wait for the page to be busy (with a device, for gpu-crash). */
function pageFault(fault: BrowserFault): PageFault {
  if (fault === 'crash') return 'hang';
  if (fault === 'gpu-crash') return 'hold-device';
  return fault;
}

function platformBackend(): string {
  return { linux: 'vulkan', darwin: 'metal', win32: 'd3d12' }[process.platform as string] ?? 'default';
}

function timeout(ms: number, message: string): Promise<never> {
  return new Promise((_, reject) => {
    const timer = setTimeout(() => reject(new BrowserRunError('timeout', message)), ms);
    timer.unref();
  });
}

/** Kills Chromium's GPU process: every device in the page is lost (Linux). */
function crashGpuProcess(chromium: Chromium): void {
  const gpuPid = findGpuProcess(chromium.pid);
  if (gpuPid === undefined) throw new Error('gpu-crash fault: no GPU process found (needs Linux /proc)');
  process.kill(gpuPid, 'SIGKILL');
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
