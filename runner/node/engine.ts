import { Engine, type EngineOptions } from '../../src/tensor/engine.ts';
import { acquireDevice, type NodeDeviceOptions } from './device.ts';
import { loadShaderSources } from './shaders.ts';

/** An engine on a Dawn device in this process (hardware adapter, or SwiftShader when none). */
export async function createNodeEngine(options: NodeDeviceOptions & EngineOptions = {}): Promise<Engine> {
  const context = await acquireDevice(options);
  return Engine.create(context, loadShaderSources(), {
    printWgsl: options.printWgsl ?? process.env.SHARPNESS_LAB_PRINT_WGSL === '1',
  });
}
