/**
 * Entry of the `bench` command's page (BENCH_PAGE_ENTRY): the product's engine jobs plus the benchmark
 * jobs the bench command hands to the page — its suites with tfjs-webgpu as the peer (`bench`) and
 * H·v beside @jax-js/jax (`hvp-peers`). Needs the repository's devDependencies; never shipped.
 */
import { hvpPeersJob } from '../../bench/hvp-peers.ts';
import { benchJob } from './bench-job.ts';
import { engineJobs } from './jobs.ts';
import { fromEngineJobs, startPage } from './page-runtime.ts';

export const benchPageJobs = {
  ...fromEngineJobs({ ...engineJobs, 'hvp-peers': hvpPeersJob }),
  bench: benchJob,
};
export type BenchPageJobs = typeof benchPageJobs;

startPage(benchPageJobs);
