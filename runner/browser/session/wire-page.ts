/**
 * Opening the page, wiring it to the session and initialising it: console errors, uncaught exceptions and a crashed
 * page fail the session; the page's events (exposed as one function) resolve jobs, stream their
 * progress and log lines, and report a lost device. Returns once the page says it is ready.
 */
import type { Browser, ConsoleMessage, Page } from 'puppeteer-core';
import { InputError } from '../../../src/errors.ts';
import { BrowserRunError } from '../errors.ts';
import {
  decodeJson,
  EVENT_BINDING,
  type PageApi,
  type PageEvent,
  type PageInit,
  type SerializedError,
} from '../protocol.ts';
import type { ServedPage } from './serve-page.ts';
import { type SessionState, timeout } from './state.ts';

export interface PageWiring {
  /** Progress lines and page console output. */
  log(line: string): void;
  /** The page armed an injected fault (a job is waiting). */
  onArmed(): void;
}

export async function openPage(
  browser: Browser,
  served: ServedPage,
  state: SessionState,
  wiring: PageWiring,
): Promise<Page> {
  const { mapStack } = served;
  const page = await browser.newPage();
  page.on('console', (message) => {
    const type = message.type();
    if (type === 'error')
      state.fail('console-error', `page console error: ${describeConsole(message, mapStack)}`);
    else if (type === 'warn' || type === 'log' || type === 'info') wiring.log(`chromium: ${message.text()}`);
  });
  page.on('pageerror', (error) => {
    const e = error as Error;
    state.fail(
      'page-error',
      `uncaught exception in the page: ${e.message ?? String(error)}`,
      e.stack && mapStack(e.stack),
    );
  });
  page.on('error', (error) => state.fail('crash', `the page crashed: ${error.message}`));

  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  await page.exposeFunction(EVENT_BINDING, (json: string) =>
    handleEvent(decodeJson(json) as PageEvent, state, { ...wiring, onReady, mapStack }),
  );
  await Promise.race([page.goto(served.server.url, { waitUntil: 'load' }), state.failed]);
  await Promise.race([
    ready,
    state.failed,
    timeout(30_000, `the page at ${served.server.url} did not start within 30 s`),
  ]);
  return page;
}

/** Hands the page its settings (`window.sharpnessLab.init`); jobs can start once it returns. */
export async function initPage(page: Page, init: PageInit, state: SessionState): Promise<void> {
  await Promise.race([
    page.evaluate((i) => (window as unknown as { sharpnessLab: PageApi }).sharpnessLab.init(i), init),
    state.failed,
  ]);
}

function handleEvent(
  event: PageEvent,
  state: SessionState,
  on: PageWiring & { onReady(): void; mapStack(text: string): string },
): void {
  const { pending } = state;
  switch (event.type) {
    case 'ready':
      on.onReady();
      return;
    case 'log':
      on.log(event.line);
      return;
    case 'progress':
      pending.get(event.job)?.onProgress?.(event.event as never);
      return;
    case 'done':
      pending.get(event.job)?.resolve(event.result);
      pending.delete(event.job);
      return;
    case 'failed':
      pending.get(event.job)?.reject(rebuildError(event.error, on.mapStack));
      pending.delete(event.job);
      return;
    case 'fatal':
      state.fail('device-lost', `in the page: ${event.message.replace(/^sharpness-lab: /, '')}`);
      return;
    case 'armed':
      on.onArmed();
      return;
  }
}

/** A job's error as Node sees it: the job's InputError stays one (exit code 2), anything else fails the run. */
function rebuildError(error: SerializedError, mapStack: (text: string) => string): Error {
  if (error.name === 'InputError' && error.field !== undefined) {
    const prefix = `${error.field}: `;
    return new InputError(
      error.field,
      error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message,
    );
  }
  return new BrowserRunError(
    'job-failed',
    `in the page: ${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`,
    error.stack && mapStack(error.stack),
  );
}

function describeConsole(message: ConsoleMessage, mapStack: (text: string) => string): string {
  const where = message.location();
  const at = where.url
    ? ` (at ${mapStack(`${where.url}:${(where.lineNumber ?? 0) + 1}:${(where.columnNumber ?? 0) + 1}`)})`
    : '';
  return `${message.text()}${at}`;
}
