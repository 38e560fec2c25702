/** What a host (Node/Dawn or a browser page) hands the engine: a device and a description of it. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Native API underneath WebGPU (vulkan, metal, d3d12, …) as far as the host knows it. */
  backend: string;
  /** e.g. 'node (dawn.node)' or 'chromium 131 (puppeteer)'. */
  host: string;
  features: string[];
  limits: Record<string, number>;
}

export interface GpuContext {
  device: GPUDevice;
  adapterInfo: AdapterDescription;
  /** Kernels of the command buffer most recently submitted; named in device-loss and error messages. */
  kernelsInFlight?: readonly string[];
  /** Set once the device is lost, with the reason. */
  lost?: string;
}

/** True on SwiftShader, the CPU Vulkan driver (WebGPU without a GPU). */
export function isSwiftShader(context: GpuContext): boolean {
  return context.adapterInfo.architecture === 'swiftshader';
}

/** The adapter in one line, as results.json records it: vendor, architecture, device, backend, host. */
export function adapterSummary(a: AdapterDescription): string {
  return `${a.vendor} ${a.architecture} (${a.description || a.device}; ${a.backend}; ${a.host})`;
}
