/**
 * The engine in a web page: an adapter from `navigator.gpu`, a device with the adapter's real limits,
 * and the shaders embedded in the bundle. What `sharpness-lab/browser` offers a user's own page, and
 * what the browser runner's page (page-runtime.ts) builds its engines with.
 */
import type { GpuContext } from '../../src/gpu/context.ts';
import { requestGpuContext } from '../../src/gpu/device.ts';
import { Engine, type EngineOptions } from '../../src/tensor/engine.ts';
import { loadShaderSources } from './shaders.ts';

export interface BrowserAdapterOptions {
  /** Give up on `requestAdapter` after this many milliseconds (default 60,000). */
  timeoutMs?: number;
  /** Refuse a software adapter (SwiftShader, or one the browser marks as fallback). */
  requireHardware?: boolean;
  /** Names the browser in messages (default 'this browser'). */
  host?: string;
  /** Appended to the messages when no adapter comes: what the user can do about it. */
  hint?: string;
}

/** A high-performance adapter from `navigator.gpu`, or an Error saying why there is none. */
export async function requestBrowserAdapter(options: BrowserAdapterOptions = {}): Promise<GPUAdapter> {
  const host = options.host ?? 'this browser';
  const timeoutMs = options.timeoutMs ?? 60_000;
  const hint = options.hint ? `; ${options.hint}` : '';
  if (!('gpu' in navigator) || !navigator.gpu)
    throw new Error(
      `navigator.gpu is missing in ${host}: WebGPU is off (it needs a secure context such as https:// or http://127.0.0.1, and a browser with WebGPU enabled)`,
    );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`navigator.gpu.requestAdapter() did not answer within ${timeoutMs / 1000} s${hint}`),
        ),
      timeoutMs,
    );
  });
  try {
    const adapter = await Promise.race([
      navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }),
      timeout,
    ]);
    if (!adapter)
      throw new Error(
        `navigator.gpu.requestAdapter() gave no adapter in ${host} (WebGPU blocklisted, or no usable GPU driver)${hint}`,
      );
    if (
      options.requireHardware &&
      (adapter.info.architecture === 'swiftshader' || adapter.info.isFallbackAdapter)
    )
      throw new Error(
        `a hardware adapter was required, but ${host} offered only a software one (${adapter.info.description || adapter.info.architecture})`,
      );
    return adapter;
  } finally {
    clearTimeout(timer);
  }
}

export interface BrowserEngineOptions extends BrowserAdapterOptions, EngineOptions {
  /** Called with a message when the device is lost or reports an uncaptured error. */
  onError?: (message: string) => void;
}

/** A device on a fresh adapter of this page (`backend` is reported as 'webgpu'). */
export async function requestBrowserContext(options: BrowserEngineOptions = {}): Promise<GpuContext> {
  const adapter = await requestBrowserAdapter(options);
  return requestGpuContext(
    adapter,
    { backend: 'webgpu', host: options.host ?? 'browser' },
    { label: 'sharpness-lab', onError: options.onError },
  );
}

/**
 * The engine on this page's GPU with every shader embedded; `engine.destroy()` releases its device.
 * In a bundler (Vite, esbuild, webpack) `import { createBrowserEngine } from 'sharpness-lab/browser'`.
 */
export async function createBrowserEngine(options: BrowserEngineOptions = {}): Promise<Engine> {
  return Engine.create(await requestBrowserContext(options), loadShaderSources(), options);
}
