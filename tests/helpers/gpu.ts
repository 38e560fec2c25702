/** Shared set-up for GPU test files: one engine per file, destroyed in the suite's `after`. */
import { createNodeEngine } from '../../runner/node/engine.ts';
import type { Engine } from '../../src/tensor/engine.ts';

let shared: Promise<Engine> | undefined;

export function testEngine(): Promise<Engine> {
  shared ??= createNodeEngine({ log: () => {} });
  return shared;
}

export async function destroyTestEngine(): Promise<void> {
  if (!shared) return;
  const engine = await shared;
  shared = undefined;
  engine.destroy();
}
