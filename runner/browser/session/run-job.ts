/**
 * Running jobs in an initialised page: each job gets an id, starts through `window.sharpnessLab.start`
 * and ends when the page sends its 'done' or 'failed' event (wire-page.ts), when the session fails,
 * or when its timeout passes (which fails the session).
 */
import type { Page } from 'puppeteer-core';
import { BrowserRunError } from '../errors.ts';
import { encodeJson, type PageApi } from '../protocol.ts';
import { type SessionState, timeout } from './state.ts';

export interface RunOptions<Progress> {
  onProgress?: (event: Progress) => void;
  /** Reject (and end the session) if the job takes longer than this. */
  timeoutMs?: number;
}

/** The session's `run`: starts job `name` in the page and resolves with its result. */
export function jobRunner(
  page: Page,
  state: SessionState,
): (name: string, params: unknown, options?: RunOptions<unknown>) => Promise<unknown> {
  let nextJob = 0;
  return async (name, params, runOptions = {}) => {
    if (state.failure) throw state.failure;
    const id = ++nextJob;
    const done = new Promise<unknown>((resolve, reject) => {
      state.pending.set(id, { resolve, reject, onProgress: runOptions.onProgress as (event: never) => void });
    });
    const start = page.evaluate(
      (job, jobName, encoded) =>
        (window as unknown as { sharpnessLab: PageApi }).sharpnessLab.start(job, jobName, encoded),
      id,
      name,
      encodeJson(params),
    );
    const started = start.then(
      () => new Promise<never>(() => {}),
      async (error: Error) => {
        // The page going away also fails the evaluate call: prefer the reason (crash) when it comes.
        await Promise.race([state.failed, new Promise((resolve) => setTimeout(resolve, 2_000))]).catch(
          () => {},
        );
        throw (
          state.failure ??
          new BrowserRunError('job-failed', `starting job '${name}' failed: ${error.message}`)
        );
      },
    );
    const racers: Promise<unknown>[] = [done, state.failed, started];
    if (runOptions.timeoutMs !== undefined) {
      racers.push(
        timeout(
          runOptions.timeoutMs,
          `job '${name}' did not finish within ${runOptions.timeoutMs / 1000} s`,
        ).catch((error: Error) => {
          state.fail('timeout', error.message);
          throw state.failure;
        }),
      );
    }
    return await Promise.race(racers);
  };
}
