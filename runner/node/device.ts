/**
 * Device acquisition for the Node host (Dawn through the npm package `webgpu`).
 * The only place besides the browser runner that knows which host it runs on.
 */
import { existsSync, readdirSync } from 'node:fs';
import { create, globals } from 'webgpu';
import type { AdapterDescription, GpuContext } from '../../src/gpu/context.ts';
import { describeGpuAdapter, requestGpuContext } from '../../src/gpu/device.ts';

/** Where Chromium builds keep SwiftShader's Vulkan ICD, in the order we try them. */
export const SWIFTSHADER_ICD_CANDIDATES = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib64/chromium/vk_swiftshader_icd.json',
  '/snap/chromium/current/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

export const SWIFTSHADER_ENV = 'SHARPNESS_LAB_SWIFTSHADER_ICD';

export interface NodeDeviceOptions {
  /** Dawn backend name: vulkan, metal, d3d12, d3d11, opengl, opengles, null. */
  backend?: string;
  /** Substring of the adapter name Dawn should pick (Dawn's `adapter=` option). */
  adapter?: string;
  /** Forbid the SwiftShader fallback (for GPU CI runners that must not silently run on the CPU). */
  requireHardware?: boolean;
  /** Receives the one-line notices (SwiftShader fallback); defaults to stderr. */
  log?: (line: string) => void;
}

// Keep every Dawn instance for the process lifetime: dropping navigator.gpu can hang dawn.node.
const instances: GPU[] = [];
let globalsInstalled = false;

function dawnInstance(options: NodeDeviceOptions): GPU {
  if (!globalsInstalled) {
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  // Full-resolution timestamps; Dawn quantises them to 65 µs by default.
  const flags = ['disable-dawn-features=timestamp_quantization'];
  if (options.backend) flags.push(`backend=${options.backend}`);
  if (options.adapter) flags.push(`adapter=${options.adapter}`);
  const gpu = create(flags);
  instances.push(gpu);
  return gpu;
}

/** Finds SwiftShader's Vulkan ICD: our env var first, then known Chromium locations. */
export function findSwiftShaderIcd(): string | undefined {
  const fromEnv = process.env[SWIFTSHADER_ENV];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return SWIFTSHADER_ICD_CANDIDATES.find((path) => existsSync(path));
}

export const INSTALL_HINT =
  'No WebGPU adapter found. Install a GPU driver with Vulkan support (Linux: mesa-vulkan-drivers or the ' +
  'vendor driver, plus libvulkan1), or the CPU fallback: `apt-get install chromium libvulkan1` (Debian/Ubuntu; ' +
  `ships SwiftShader), or point ${SWIFTSHADER_ENV} at a vk_swiftshader_icd.json.`;

/**
 * On Linux a hardware adapter needs a render node or an NVIDIA device file. Without either, asking
 * the system Vulkan loader only yields CPU drivers Dawn rejects (with noisy warnings), so skip it.
 */
function mayHaveHardwareGpu(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    if (readdirSync('/dev/dri').some((name) => name.startsWith('renderD'))) return true;
  } catch {}
  return existsSync('/dev/nvidia0') || existsSync('/dev/dxg');
}

async function requestAdapter(gpu: GPU): Promise<GPUAdapter | null> {
  return gpu.requestAdapter({ powerPreference: 'high-performance' });
}

/** Finds an adapter: hardware first, SwiftShader (announced in one line) when there is none. */
export async function acquireAdapter(
  options: NodeDeviceOptions = {},
): Promise<{ adapter: GPUAdapter; swiftshader: boolean; backend?: string }> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!process.env.VK_ICD_FILENAMES && (mayHaveHardwareGpu() || options.requireHardware)) {
    const adapter = await requestAdapter(dawnInstance(options));
    if (adapter)
      return { adapter, swiftshader: adapter.info.architecture === 'swiftshader', backend: options.backend };
  }
  const icd = process.env.VK_ICD_FILENAMES ?? findSwiftShaderIcd();
  if (!icd || options.requireHardware) throw new Error(INSTALL_HINT);
  if (!process.env.VK_ICD_FILENAMES) {
    process.env.VK_ICD_FILENAMES = icd;
    log(`sharpness-lab: no hardware GPU adapter; using SwiftShader (CPU Vulkan) from ${icd}`);
  }
  const adapter = await requestAdapter(dawnInstance({ ...options, backend: options.backend ?? 'vulkan' }));
  if (!adapter)
    throw new Error(`${INSTALL_HINT} (SwiftShader at ${icd} gave no adapter: is libvulkan1 installed?)`);
  return {
    adapter,
    swiftshader: adapter.info.architecture === 'swiftshader',
    backend: options.backend ?? 'vulkan',
  };
}

const NODE_HOST = 'node (dawn.node)';

/** Requests a device with the adapter's real limits and its timestamp-query feature when present. */
export async function acquireDevice(options: NodeDeviceOptions = {}): Promise<GpuContext> {
  const { adapter, backend } = await acquireAdapter(options);
  return requestGpuContext(adapter, { backend: backend ?? defaultBackend(), host: NODE_HOST });
}

const DEFAULT_BACKEND: Record<string, string> = { linux: 'vulkan', darwin: 'metal', win32: 'd3d12' };

function defaultBackend(): string {
  return DEFAULT_BACKEND[process.platform] ?? 'default';
}

/** The adapter's vendor, architecture, limits and features as `info` prints them. */
export function describeAdapter(adapter: GPUAdapter, backend?: string): AdapterDescription {
  return describeGpuAdapter(adapter, { backend: backend ?? defaultBackend(), host: NODE_HOST });
}
