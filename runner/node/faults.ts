/**
 * Test hooks for the Node runner, named by the environment variable SHARPNESS_LAB_FAULT: a device
 * failure right after the first checkpoint (`device-lost-after-checkpoint`,
 * `gpu-error-after-checkpoint`), or a full disk when a file of a given name is written
 * (`disk-full:NAME`, e.g. `disk-full:results.json`), so every write's failure path can be tested.
 */
import { basename } from 'node:path';
import { InputError } from '../../src/errors.ts';

export const FAULT_ENV = 'SHARPNESS_LAB_FAULT';
export const DEVICE_FAULTS = ['device-lost-after-checkpoint', 'gpu-error-after-checkpoint'];
const DISK_FULL = /^disk-full:(.+)$/;

/** The fault asked for, checked (an unknown one is bad input), or undefined. */
export function requestedFault(): string | undefined {
  const fault = process.env[FAULT_ENV];
  if (fault !== undefined && !DEVICE_FAULTS.includes(fault) && !DISK_FULL.test(fault))
    throw new InputError(
      FAULT_ENV,
      `unknown fault '${fault}' (known: ${DEVICE_FAULTS.join(', ')}, disk-full:FILENAME)`,
    );
  return fault;
}

/** Throws ENOSPC, as a full disk would, when the injected fault names this file. */
export function injectWriteFault(path: string): void {
  const match = DISK_FULL.exec(process.env[FAULT_ENV] ?? '');
  if (match && match[1] === basename(path))
    throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), {
      code: 'ENOSPC',
    });
}
