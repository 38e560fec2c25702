/** What a piece of GPU work launched, by wrapping `engine.launch` for its duration. */
import type { Engine } from '../../src/tensor/engine.ts';

/** The shader files `run` launched. */
export async function shadersLaunched(engine: Engine, run: () => Promise<unknown>): Promise<Set<string>> {
  const shaders = new Set<string>();
  const launch = engine.launch;
  engine.launch = (spec) => {
    shaders.add(spec.shader);
    return launch.call(engine, spec);
  };
  try {
    await run();
  } finally {
    engine.launch = launch;
  }
  return shaders;
}
