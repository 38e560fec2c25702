/**
 * The page side of the browser host: finds the adapter through `navigator.gpu`, builds engines on it
 * with the bundled shaders, and runs the jobs Node asks for, streaming their progress and results
 * back through the exposed event function. Runs in Chromium only (bundled by bundle.ts).
 */
import type { GpuContext } from '../../src/gpu/context.ts';
import { requestGpuContext } from '../../src/gpu/device.ts';
import { Engine } from '../../src/tensor/engine.ts';
import { requestBrowserAdapter } from './engine.ts';
import {
  decodeJson,
  type EngineJob,
  EVENT_BINDING,
  encodeJson,
  type JobContext,
  type JobParams,
  type JobProgress,
  type JobResult,
  type JobTable,
  type PageApi,
  type PageEvent,
  type PageInit,
  type PageJob,
  serializeError,
} from './protocol.ts';
import { loadShaderSources } from './shaders.ts';

type EventFunction = (json: string) => Promise<void>;

let settings: PageInit | undefined;

function binding(): EventFunction {
  const send = (window as unknown as Record<string, EventFunction | undefined>)[EVENT_BINDING];
  if (!send) throw new Error(`the Node side did not expose ${EVENT_BINDING}`);
  return send;
}

const inFlight = new Set<Promise<void>>();

/** Sends an event to Node; `flush()` waits until Node has taken all of them. */
function send(event: PageEvent): void {
  const sent = binding()(encodeJson(event)).catch(() => {});
  inFlight.add(sent);
  sent.finally(() => inFlight.delete(sent));
}

async function flush(): Promise<void> {
  while (inFlight.size > 0) await Promise.all([...inFlight]);
}

/** A device-loss or uncaptured GPU error ends the run on the Node side with this message. */
function fatal(message: string): void {
  send({ type: 'fatal', message });
}

function initSettings(): PageInit {
  if (!settings) throw new Error('the page was not initialised (window.sharpnessLab.init)');
  return settings;
}

/** A device on a fresh adapter (a WebGPU adapter gives one device), with the adapter's real limits. */
export async function requestPageContext(): Promise<GpuContext> {
  const init = initSettings();
  const adapter = await requestBrowserAdapter({
    host: init.host,
    timeoutMs: init.adapterTimeoutMs,
    requireHardware: init.requireHardware,
    hint: 'on a machine without a GPU use SHARPNESS_LAB_BROWSER_GPU=swiftshader (WebGPU needs --enable-unsafe-webgpu)',
  });
  return requestGpuContext(
    adapter,
    { backend: init.backend, host: init.host },
    { label: 'sharpness-lab', onError: fatal },
  );
}

/** An engine on its own device; `engine.destroy()` releases it. */
export async function createPageEngine(): Promise<Engine> {
  return Engine.create(await requestPageContext(), loadShaderSources());
}

/** Runs `fn` with a fresh engine and destroys the engine afterwards. */
export async function withEngine<T>(context: JobContext, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await context.createEngine();
  try {
    return await fn(engine);
  } finally {
    engine.destroy();
  }
}

/** Page jobs that run each engine job on a fresh engine (destroyed when the job ends). */
export function fromEngineJobs<T extends Record<string, EngineJob>>(
  jobs: T,
): { [K in keyof T]: PageJob<JobParams<T[K]>, JobResult<T[K]>, JobProgress<T[K]>> } {
  const table: Record<string, PageJob> = {};
  for (const [name, job] of Object.entries(jobs))
    table[name] = (context, params) => withEngine(context, (engine) => job(engine, params, context));
  return table as { [K in keyof T]: PageJob<JobParams<T[K]>, JobResult<T[K]>, JobProgress<T[K]>> };
}

async function injectFault(init: PageInit, job: number): Promise<void> {
  const forever = new Promise<never>(() => {});
  switch (init.fault) {
    case undefined:
      return;
    case 'throw':
      throw new Error('injected fault: the job threw (SHARPNESS_LAB_BROWSER_FAULT=throw)');
    case 'uncaught':
      setTimeout(() => {
        throw new Error('injected fault: uncaught exception (SHARPNESS_LAB_BROWSER_FAULT=uncaught)');
      });
      return forever;
    case 'rejection':
      Promise.reject(
        new Error('injected fault: unhandled rejection (SHARPNESS_LAB_BROWSER_FAULT=rejection)'),
      );
      return forever;
    case 'console-error':
      console.error('injected fault: a console error (SHARPNESS_LAB_BROWSER_FAULT=console-error)');
      return forever;
    case 'hang':
      send({ type: 'armed', job });
      return forever;
    case 'hold-device': {
      const context = await requestPageContext();
      // Keep the device reachable: its loss must be reported while the job waits.
      (globalThis as { heldContext?: GpuContext }).heldContext = context;
      send({ type: 'armed', job });
      return forever;
    }
  }
}

async function runJob(jobs: JobTable, id: number, name: string, paramsJson: string): Promise<void> {
  try {
    const init = initSettings();
    const job = Object.hasOwn(jobs, name) ? jobs[name] : undefined;
    if (!job) throw new Error(`the page has no job '${name}' (it has: ${Object.keys(jobs).join(', ')})`);
    await injectFault(init, id);
    const context: JobContext = {
      init,
      createEngine: createPageEngine,
      progress: (event) => send({ type: 'progress', job: id, event }),
      log: (line) => send({ type: 'log', job: id, line }),
    };
    const result = await job(context, decodeJson(paramsJson));
    await flush();
    send({ type: 'done', job: id, result });
  } catch (error) {
    await flush();
    send({ type: 'failed', job: id, error: serializeError(error) });
  }
}

/** Installs `window.sharpnessLab` with these jobs and tells Node the page is ready. */
export function startPage(jobs: JobTable): void {
  const api: PageApi = {
    async init(init) {
      settings = init;
    },
    start(id, name, params) {
      void runJob(jobs, id, name, params);
    },
  };
  (window as unknown as { sharpnessLab: PageApi }).sharpnessLab = api;
  send({ type: 'ready' });
}
