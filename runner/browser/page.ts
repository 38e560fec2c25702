/**
 * Entry of the default page bundle: the host-agnostic engine jobs (runner/browser/jobs.ts), each on a
 * fresh engine, plus the page-only `bench` job. Node drives it through runner/browser/host.ts.
 */
import { benchJob } from './bench-job.ts';
import { engineJobs } from './jobs.ts';
import { fromEngineJobs, startPage } from './page-runtime.ts';

export const pageJobs = { ...fromEngineJobs(engineJobs), bench: benchJob };
export type PageJobs = typeof pageJobs;

startPage(pageJobs);
