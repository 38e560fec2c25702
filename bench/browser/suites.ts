/**
 * Benchmark suites that run in the page, by the names the bench command uses; the others run in Node
 * (`hvp` runs its Chromium half itself, as the `hvp-peers` job). A suite can join when its module
 * bundles for the browser (no `node:*` imports) and asks its host for nothing the page lacks: `train`
 * registers tfjs's gradients through Node's esbuild (bench/tfjs.ts) and trains on MNIST digits that
 * only the Node host reads.
 */
import type { BenchSuite } from '../suite.ts';

export const PAGE_BENCH_SUITES = {
  matmul: async () => (await import('../matmul.ts')).suite,
} satisfies Record<string, () => Promise<BenchSuite>>;

export const PAGE_BENCH_SUITE_NAMES: readonly string[] = Object.keys(PAGE_BENCH_SUITES);
