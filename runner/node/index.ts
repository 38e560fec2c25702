/// <reference types="@webgpu/types" preserve="true" />
/**
 * `sharpness-lab/node`: everything of `sharpness-lab`, plus a Dawn device in this Node process
 * (npm `webgpu`): the hardware adapter when there is one, else SwiftShader (CPU Vulkan) announced in
 * one line, with the shaders read from the package and the `sharpness-lab tune` cache applied; and
 * the file readers (.npy, CSV, safetensors weights).
 */
export * from '../../src/index.ts';
export { readCsvFile, readNpyFile } from './data-files.ts';
export {
  acquireAdapter,
  acquireDevice,
  describeAdapter,
  findSwiftShaderIcd,
  INSTALL_HINT,
  type NodeDeviceOptions,
  SWIFTSHADER_ENV,
} from './device.ts';
export { createNodeEngine } from './engine.ts';
export { readWeightsFile } from './experiment.ts';
export { userCacheDir } from './optional.ts';
export { renderSvg } from './render.ts';
export { loadShaderSources, SHADER_DIR } from './shaders.ts';
export { defaultTuneCachePath, TUNE_CACHE_ENV } from './tune-cache.ts';
