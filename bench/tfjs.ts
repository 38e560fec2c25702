/**
 * TensorFlow.js's WebGPU backend as a peer engine, on the same adapter as ours, in this process.
 *
 * tfjs-backend-webgpu registers itself when it is imported, and only if `navigator.gpu` exists then,
 * so `navigator` is installed before the (dynamic) import. Its Dawn instance is created after our
 * engine: acquiring our adapter is what points VK_ICD_FILENAMES at SwiftShader when there is no
 * hardware GPU, and Dawn reads that variable when an instance is created.
 */
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';
import type { AdapterDescription } from '../src/gpu/context.ts';
import { closeTfjsWebgpu, openTfjsWebgpu, type TfjsWebgpu } from './tfjs-session.ts';

export type { Tf, TfjsWebgpu } from './tfjs-session.ts';

/** The Dawn adapter selection our engine was made with (the device flags `--backend`, `--adapter`). */
export interface DawnSelection {
  backend?: string;
  adapter?: string;
}

// Dropping a dawn.node GPU object can hang the process (see runner/node/device.ts): keep it.
let gpu: GPU | undefined;
let loading: Promise<TfjsWebgpu> | undefined;

/**
 * Loads tfjs-core with its WebGPU backend on the adapter `ours` describes (same Dawn backend and
 * adapter selection as our engine), once per process. Throws if Dawn hands tfjs another adapter.
 */
export function loadTfjsWebgpu(ours: AdapterDescription, options: DawnSelection = {}): Promise<TfjsWebgpu> {
  loading ??= load(ours, options);
  return loading;
}

async function load(ours: AdapterDescription, options: DawnSelection): Promise<TfjsWebgpu> {
  Object.assign(globalThis, globals);
  const flags = [`backend=${options.backend ?? ours.backend}`];
  if (options.adapter) flags.push(`adapter=${options.adapter}`);
  gpu = create(flags);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(`tfjs-webgpu: Dawn (${flags.join(' ')}) found no adapter`);
  const theirs = adapter.info;
  if (
    theirs.vendor !== ours.vendor ||
    theirs.architecture !== ours.architecture ||
    theirs.description !== ours.description
  ) {
    throw new Error(
      `tfjs-webgpu would run on '${theirs.description}' (${theirs.vendor}/${theirs.architecture}), not on ` +
        `our adapter '${ours.description}' (${ours.vendor}/${ours.architecture}); refusing to compare`,
    );
  }
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...(globalThis as { navigator?: object }).navigator, gpu },
    configurable: true,
    writable: true,
  });
  return openTfjsWebgpu();
}

/** Releases tfjs's buffers and device (the process can then exit). */
export async function disposeTfjsWebgpu(): Promise<void> {
  const session = loading;
  loading = undefined;
  await closeTfjsWebgpu(session);
}

let gradients: Promise<void> | undefined;

/**
 * Registers tfjs-core's gradients (tf.grad, optimizers need them). They register only from
 * `dist/register_all_gradients`, an ES module tree of directory imports that Node cannot load, so
 * esbuild bundles it once, in memory; tfjs keeps its gradient registry on `globalThis`, so they land
 * in the tfjs-core already loaded. (The page's bundler resolves the tree directly.)
 */
export function loadTfjsGradients(): Promise<void> {
  gradients ??= (async () => {
    const { build } = await import('esbuild');
    const bundle = await build({
      stdin: {
        contents: "import '@tensorflow/tfjs-core/dist/register_all_gradients';",
        resolveDir: fileURLToPath(new URL('..', import.meta.url)),
      },
      bundle: true,
      format: 'esm',
      platform: 'node',
      write: false,
      logLevel: 'silent',
    });
    const code = Buffer.from(bundle.outputFiles[0].text).toString('base64');
    await import(`data:text/javascript;base64,${code}`);
  })();
  return gradients;
}
