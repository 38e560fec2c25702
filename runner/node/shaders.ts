import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShaderSources } from '../../src/gpu/shader/registry.ts';

export const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');

/** Every shaders/*.wgsl file, by file name. */
export function loadShaderSources(dir = SHADER_DIR): ShaderSources {
  const sources: Record<string, string> = {};
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith('.wgsl')) sources[file] = readFileSync(join(dir, file), 'utf8');
  }
  return sources;
}
