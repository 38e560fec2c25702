/**
 * Entry of the `bench` command's page (bench/browser/run.ts bundles and serves it): the product's engine
 * jobs plus the benchmark jobs — the suites with tfjs-webgpu as the peer (`bench`) and H·v beside
 * @jax-js/jax (`hvp-peers`). Needs the repository's devDependencies; never shipped.
 */
import { engineJobs } from '../../runner/browser/jobs.ts';
import { fromEngineJobs, startPage } from '../../runner/browser/page-runtime.ts';
import { hvpPeersJob } from '../hvp-peers.ts';
import { benchJob } from './job.ts';

export const benchPageJobs = {
  ...fromEngineJobs({ ...engineJobs, 'hvp-peers': hvpPeersJob }),
  bench: benchJob,
};
export type BenchPageJobs = typeof benchPageJobs;

startPage(benchPageJobs);
