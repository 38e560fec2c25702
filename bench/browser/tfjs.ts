/**
 * TensorFlow.js's WebGPU backend as a benchmark peer inside the page: the browser counterpart of
 * bench/tfjs.ts. In Chromium, tfjs-backend-webgpu finds `navigator.gpu` itself and asks for the same
 * high-performance adapter as our engine; we check that it got the same one before comparing.
 */
import type { AdapterDescription } from '../../src/gpu/context.ts';
import { closeTfjsWebgpu, openTfjsWebgpu, type TfjsWebgpu } from '../tfjs-session.ts';

let loading: Promise<TfjsWebgpu> | undefined;

/** tfjs-core with its WebGPU backend on the page's adapter, loaded once (a separate bundle chunk). */
export function loadPageTfjs(ours: AdapterDescription): Promise<TfjsWebgpu> {
  loading ??= load(ours);
  return loading;
}

async function load(ours: AdapterDescription): Promise<TfjsWebgpu> {
  const session = await openTfjsWebgpu();
  const { backend } = session;
  const theirs = backend.adapterInfo as unknown as { vendor?: string; architecture?: string };
  if (theirs.vendor !== ours.vendor || theirs.architecture !== ours.architecture) {
    throw new Error(
      `tfjs-webgpu would run on ${theirs.vendor}/${theirs.architecture}, not on our adapter ` +
        `${ours.vendor}/${ours.architecture}; refusing to compare`,
    );
  }
  return session;
}

/** Releases tfjs's buffers and device. */
export async function disposePageTfjs(): Promise<void> {
  const session = loading;
  loading = undefined;
  await closeTfjsWebgpu(session);
}
