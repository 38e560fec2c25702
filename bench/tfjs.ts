/**
 * TensorFlow.js's WebGPU backend as a peer engine, on the same adapter as ours, in this process.
 *
 * tfjs-backend-webgpu registers itself when it is imported, and only if `navigator.gpu` exists then,
 * so `navigator` is installed before the (dynamic) import. Its Dawn instance is created after our
 * engine: acquiring our adapter is what points VK_ICD_FILENAMES at SwiftShader when there is no
 * hardware GPU, and Dawn reads that variable when an instance is created.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { create, globals } from 'webgpu';
import type { NodeDeviceOptions } from '../runner/node/device.ts';
import type { AdapterDescription } from '../src/gpu/context.ts';

export type Tf = typeof import('@tensorflow/tfjs-core');

export interface TfjsWebgpu {
  tf: Tf;
  backend: WebGPUBackend;
  /** Submits everything tfjs has encoded and waits until the GPU has finished it. */
  sync(): Promise<void>;
}

// Dropping a dawn.node GPU object can hang the process (see runner/node/device.ts): keep it.
let gpu: GPU | undefined;
let loading: Promise<TfjsWebgpu> | undefined;

/**
 * Loads tfjs-core with its WebGPU backend on the adapter `ours` describes (same Dawn backend and
 * adapter selection as our engine), once per process. Throws if Dawn hands tfjs another adapter.
 */
export function loadTfjsWebgpu(
  ours: AdapterDescription,
  options: NodeDeviceOptions = {},
): Promise<TfjsWebgpu> {
  loading ??= load(ours, options);
  return loading;
}

async function load(ours: AdapterDescription, options: NodeDeviceOptions): Promise<TfjsWebgpu> {
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
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-webgpu: tf.setBackend("webgpu") failed');
  await tf.ready();
  const backend = tf.backend() as WebGPUBackend;
  return {
    tf,
    backend,
    async sync() {
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      await backend.device.queue.onSubmittedWorkDone();
    },
  };
}

/** Releases tfjs's buffers and device (the process can then exit). */
export async function disposeTfjsWebgpu(): Promise<void> {
  if (!loading) return;
  const t = await loading.catch(() => undefined);
  loading = undefined;
  if (!t) return;
  t.tf.disposeVariables();
  const device = t.backend.device;
  t.tf.removeBackend('webgpu');
  device.destroy();
}
