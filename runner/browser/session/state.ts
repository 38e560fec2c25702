/**
 * What the steps of a browser session share: the first failure — it rejects every job in flight and
 * `failed`, which each step races against so that a crash ends any wait — and what to release at close.
 */
import { type BrowserFailureKind, BrowserRunError } from '../errors.ts';

export interface PendingJob {
  resolve(value: unknown): void;
  reject(error: Error): void;
  onProgress?: (event: never) => void;
}

export class SessionState {
  /** Jobs started in the page and not yet done, by id. */
  readonly pending = new Map<number, PendingJob>();
  /** Rejects with the session's first failure. */
  readonly failed: Promise<never>;
  #failure: BrowserRunError | undefined;
  #rejectFailed: (error: BrowserRunError) => void = () => {};
  readonly #releases: (() => Promise<void> | void)[] = [];
  #closed: Promise<void> | undefined;

  constructor() {
    this.failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.failed.catch(() => {});
  }

  get failure(): BrowserRunError | undefined {
    return this.#failure;
  }

  /** Records the first failure and rejects every pending job with it; later failures are ignored. */
  fail(kind: BrowserFailureKind, message: string, stack?: string): void {
    if (this.#failure) return;
    this.#failure = new BrowserRunError(kind, message, stack);
    for (const job of this.pending.values()) job.reject(this.#failure);
    this.pending.clear();
    this.#rejectFailed(this.#failure);
  }

  /** Registers what `close` releases: the last registered is released first. */
  onClose(release: () => Promise<void> | void): void {
    this.#releases.push(release);
  }

  /** Fails whatever still runs ('closed') and releases everything, once. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.fail('closed', 'the browser session was closed');
      for (const release of [...this.#releases].reverse()) await release();
    })();
    return this.#closed;
  }
}

/** Rejects with a BrowserRunError('timeout') after `ms` (the timer does not keep Node alive). */
export function timeout(ms: number, message: string): Promise<never> {
  return new Promise((_, reject) => {
    const timer = setTimeout(() => reject(new BrowserRunError('timeout', message)), ms);
    timer.unref();
  });
}
