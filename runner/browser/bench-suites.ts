/**
 * Benchmark suites that run in the page, by the names the bench command uses. A suite joins when its
 * module bundles for the browser (no `node:*`, no runner/node imports): bench/models.ts reads MNIST
 * from disk through runner/node, so the train and hvp suites stay Node-only for now.
 */
import type { BenchSuite } from '../../bench/suite.ts';

export const PAGE_BENCH_SUITES = {
  matmul: async () => (await import('../../bench/matmul.ts')).suite,
} satisfies Record<string, () => Promise<BenchSuite>>;

export const PAGE_BENCH_SUITE_NAMES: readonly string[] = Object.keys(PAGE_BENCH_SUITES);
