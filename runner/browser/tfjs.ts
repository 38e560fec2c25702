/**
 * TensorFlow.js's WebGPU backend as a benchmark peer inside the page: the browser counterpart of
 * bench/tfjs.ts. In Chromium, tfjs-backend-webgpu finds `navigator.gpu` itself and asks for the same
 * high-performance adapter as our engine; we check that it got the same one before comparing.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { TfjsWebgpu } from '../../bench/tfjs.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';

let loading: Promise<TfjsWebgpu> | undefined;

/** tfjs-core with its WebGPU backend on the page's adapter, loaded once (a separate bundle chunk). */
export function loadPageTfjs(ours: AdapterDescription): Promise<TfjsWebgpu> {
  loading ??= load(ours);
  return loading;
}

async function load(ours: AdapterDescription): Promise<TfjsWebgpu> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-webgpu: tf.setBackend("webgpu") failed');
  await tf.ready();
  const backend = tf.backend() as WebGPUBackend;
  const theirs = backend.adapterInfo as unknown as { vendor?: string; architecture?: string };
  if (theirs.vendor !== ours.vendor || theirs.architecture !== ours.architecture) {
    throw new Error(
      `tfjs-webgpu would run on ${theirs.vendor}/${theirs.architecture}, not on our adapter ` +
        `${ours.vendor}/${ours.architecture}; refusing to compare`,
    );
  }
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

/** Releases tfjs's buffers and device. */
export async function disposePageTfjs(): Promise<void> {
  if (!loading) return;
  const t = await loading.catch(() => undefined);
  loading = undefined;
  if (!t) return;
  t.tf.disposeVariables();
  const device = t.backend.device;
  t.tf.removeBackend('webgpu');
  device.destroy();
}
