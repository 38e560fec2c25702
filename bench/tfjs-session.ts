/**
 * tfjs-core with its WebGPU backend, opened and closed the same way on every host (Node's Dawn in
 * bench/tfjs.ts, the page in bench/browser/tfjs.ts); the hosts only differ in how `navigator.gpu`
 * comes to exist and how they check the adapter. No `node:*` imports: the page bundles it.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

export type Tf = typeof import('@tensorflow/tfjs-core');

export interface TfjsWebgpu {
  tf: Tf;
  backend: WebGPUBackend;
  /** Submits everything tfjs has encoded and waits until the GPU has finished it. */
  sync(): Promise<void>;
}

/** Imports tfjs and its WebGPU backend (which registers itself if `navigator.gpu` exists) and selects it. */
export async function openTfjsWebgpu(): Promise<TfjsWebgpu> {
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

/** Releases tfjs's buffers and device, if `loading` ever produced a session. */
export async function closeTfjsWebgpu(loading: Promise<TfjsWebgpu> | undefined): Promise<void> {
  const t = await loading?.catch(() => undefined);
  if (!t) return;
  t.tf.disposeVariables();
  const device = t.backend.device;
  t.tf.removeBackend('webgpu');
  device.destroy();
}
