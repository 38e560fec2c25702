import { type MatmulTuning, setMatmulTuning } from '../../src/kernels/matmul.ts';
import { Engine, type EngineOptions } from '../../src/tensor/engine.ts';
import { acquireDevice, type NodeDeviceOptions } from './device.ts';
import { loadShaderSources } from './shaders.ts';
import { loadNodeTuning } from './tune-cache.ts';

/** An engine on a Dawn device in this process (hardware adapter, or SwiftShader when none). */
export async function createNodeEngine(
  options: NodeDeviceOptions & EngineOptions & { tuneCache?: string; tuning?: MatmulTuning } = {},
): Promise<Engine> {
  const context = await acquireDevice(options);
  const engine = await Engine.create(context, loadShaderSources(), {
    printWgsl: options.printWgsl ?? process.env.SHARPNESS_LAB_PRINT_WGSL === '1',
  });
  // The tuning cache (sharpness-lab tune) when present and valid for this adapter; 'off' skips it.
  setMatmulTuning(engine, options.tuning ?? loadNodeTuning(context, options.tuneCache, options.log));
  return engine;
}
