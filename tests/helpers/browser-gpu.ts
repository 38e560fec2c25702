/**
 * The page's version of tests/helpers/gpu.ts (the page bundle maps that module here): one engine per
 * suite on the page's adapter, destroyed in the suite's `after`.
 */
import { createPageEngine } from '../../runner/browser/page-runtime.ts';
import type { Engine } from '../../src/tensor/engine.ts';

let shared: Promise<Engine> | undefined;

export function testEngine(): Promise<Engine> {
  shared ??= createPageEngine();
  return shared;
}

export async function destroyTestEngine(): Promise<void> {
  if (!shared) return;
  const engine = await shared;
  shared = undefined;
  engine.destroy();
}
