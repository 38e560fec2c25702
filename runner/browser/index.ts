/// <reference types="@webgpu/types" preserve="true" />
/**
 * `sharpness-lab/browser`: everything of `sharpness-lab`, plus the engine for your own web page over
 * `navigator.gpu`, with every shader embedded in the package at build time (no files to serve).
 */
export * from '../../src/index.ts';
export {
  type BrowserAdapterOptions,
  type BrowserEngineOptions,
  createBrowserEngine,
  requestBrowserAdapter,
  requestBrowserContext,
} from './engine.ts';
export { loadShaderSources } from './shaders.ts';
