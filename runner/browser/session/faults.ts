/**
 * Injected failures (SHARPNESS_LAB_BROWSER_FAULT), for the tests of the failure paths: page faults
 * happen in the page; host faults kill the browser, or crash its GPU process, once the page says a
 * job is waiting (the 'armed' event).
 */
import { InputError } from '../../../src/errors.ts';
import { type Chromium, findGpuProcess } from '../chromium.ts';
import { PAGE_FAULTS, type PageFault } from '../protocol.ts';

export const FAULT_ENV = 'SHARPNESS_LAB_BROWSER_FAULT';
/** Faults injected on the Node side: kill the browser, or crash its GPU process, while a job runs. */
export const HOST_FAULTS = ['crash', 'gpu-crash'] as const;
export type BrowserFault = PageFault | (typeof HOST_FAULTS)[number];

export function parseFault(value: string | undefined): BrowserFault | undefined {
  if (!value) return undefined;
  const known: readonly string[] = [...PAGE_FAULTS, ...HOST_FAULTS];
  if (!known.includes(value))
    throw new InputError(FAULT_ENV, `unknown fault '${value}' (known: ${known.join(', ')})`);
  return value as BrowserFault;
}

/** The page's part of a fault: host faults wait for the page to be busy (with a device, for gpu-crash). */
export function pageFault(fault: BrowserFault): PageFault {
  if (fault === 'crash') return 'hang';
  if (fault === 'gpu-crash') return 'hold-device';
  return fault;
}

/** The page armed the fault (a job is waiting): the host's part happens now. */
export function injectHostFault(
  fault: BrowserFault | undefined,
  chromium: Chromium,
  log: (line: string) => void,
): void {
  log(`sharpness-lab: injected fault '${fault}': the page job is waiting`);
  if (fault === 'crash') process.kill(chromium.pid, 'SIGKILL');
  if (fault === 'gpu-crash') crashGpuProcess(chromium);
}

/** Kills Chromium's GPU process: every device in the page is lost (Linux). */
function crashGpuProcess(chromium: Chromium): void {
  const gpuPid = findGpuProcess(chromium.pid);
  if (gpuPid === undefined) throw new Error('gpu-crash fault: no GPU process found (needs Linux /proc)');
  process.kill(gpuPid, 'SIGKILL');
}
