/**
 * Device request shared by every host (Dawn in Node, a Chromium page): describe the adapter, ask for
 * its real limits and `timestamp-query`, attach the loss/error diagnostics. Host-agnostic: the host
 * finds the adapter and says what it is (`backend`, `host`).
 */
import type { AdapterDescription, GpuContext } from './context.ts';
import { attachDeviceDiagnostics } from './diagnostics.ts';

export interface AdapterHost {
  /** Native API underneath WebGPU as far as the host knows it (vulkan, metal, d3d12, …). */
  backend: string;
  /** e.g. 'node (dawn.node)' or 'chromium 156 (puppeteer)'. */
  host: string;
}

/** The adapter's identity, features and every numeric limit it supports. */
export function describeGpuAdapter(adapter: GPUAdapter, where: AdapterHost): AdapterDescription {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = adapter.limits[key as keyof GPUSupportedLimits];
    if (typeof value === 'number') limits[key] = value;
  }
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    backend: where.backend,
    host: where.host,
    features: [...adapter.features].sort(),
    limits,
  };
}

export interface GpuContextOptions {
  label?: string;
  /** Receives device-loss and uncaptured-error reports (default console.error). */
  onError?: (message: string) => void;
}

/**
 * Requests a device with every limit at the adapter's maximum and its `timestamp-query` and
 * `subgroups` features when offered (SwiftShader's matmul shares loads across a subgroup), and
 * attaches the diagnostics that name the kernels in flight on loss or error.
 */
export async function requestGpuContext(
  adapter: GPUAdapter,
  where: AdapterHost,
  options: GpuContextOptions = {},
): Promise<GpuContext> {
  const adapterInfo = describeGpuAdapter(adapter, where);
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups' as GPUFeatureName);
  const device = await adapter.requestDevice({
    requiredLimits: adapterInfo.limits,
    requiredFeatures,
    label: options.label ?? 'sharpness-lab',
  });
  const context: GpuContext = { device, adapterInfo };
  attachDeviceDiagnostics(context, options.onError);
  return context;
}
