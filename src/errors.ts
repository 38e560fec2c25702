/**
 * Errors a user can act on. `InputError` means the input (config, flags, shapes) was wrong and the
 * CLI exits with code 2; anything else is a runtime failure (exit code 1).
 */
export class InputError extends Error {
  /** Where the bad value lives, e.g. `sigmaEps[1][0]` or `--seeds`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'InputError';
    this.field = field;
  }
}

/** A GPU-side failure: names the kernel (and binding) that was involved. */
export class KernelError extends Error {
  readonly kernel: string;
  constructor(kernel: string, message: string) {
    super(`kernel '${kernel}': ${message}`);
    this.name = 'KernelError';
    this.kernel = kernel;
  }
}

/** Whether `value` is an integer ≥ 1 (the one test behind every count check). */
export function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

/** A value as an error message shows it: numbers as written (NaN, Infinity too), the rest as JSON. */
function shown(value: unknown): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/** `value` when it is a positive integer, else an InputError naming `field`. */
export function positiveInteger(field: string, value: unknown): number {
  if (!isPositiveInteger(value))
    throw new InputError(field, `must be a positive integer, got ${shown(value)}`);
  return value;
}

/** `value` when it is an integer a u32 holds (0 … 2³² − 1: counts and offsets a kernel reads), else an InputError. */
export function uint32Integer(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new InputError(field, `must be an integer in [0, 2^32), got ${shown(value)}`);
  return value;
}
