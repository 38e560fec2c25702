/** How a browser run failed; every kind is a runtime failure (exit code 1). */
export type BrowserFailureKind =
  | 'launch'
  | 'console-error'
  | 'page-error'
  | 'device-lost'
  | 'crash'
  | 'job-failed'
  | 'timeout'
  | 'closed';

/** A runtime failure of the browser host (exit code 1); the message says what happened, where. */
export class BrowserRunError extends Error {
  constructor(
    readonly kind: BrowserFailureKind,
    message: string,
    pageStack?: string,
  ) {
    super(message);
    this.name = 'BrowserRunError';
    // The Node stack says nothing useful; the page's (bundle) stack does, when there is one.
    const frames = (pageStack ?? '')
      .split('\n')
      .slice(1)
      .filter((line) => !line.includes('pptr:'));
    this.stack = [message, ...frames].join('\n');
  }
}
