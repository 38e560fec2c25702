/**
 * Entry of the default page bundle (what `run`, `info` and `--backend browser` serve, and what
 * `npm run build` prebuilds into dist/page): the host-agnostic engine jobs (runner/browser/jobs.ts),
 * each on a fresh engine. No benchmark code: the bench command serves its own page
 * (bench/browser/page.ts). Node drives it through runner/browser/host.ts.
 */
import { engineJobs } from './jobs.ts';
import { fromEngineJobs, startPage } from './page-runtime.ts';

export const pageJobs = fromEngineJobs(engineJobs);
export type PageJobs = typeof pageJobs;

startPage(pageJobs);
