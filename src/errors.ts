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
