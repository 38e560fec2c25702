/**
 * The page's shader sources: every shaders/*.wgsl file, embedded as text by the bundler (the
 * browser counterpart of runner/node/shaders.ts, with the same `loadShaderSources`).
 */

import sources from 'sharpness-lab:shaders';
import type { ShaderSources } from '../../src/gpu/shader/registry.ts';

export function loadShaderSources(): ShaderSources {
  return sources;
}
