import type { GpuContext } from './context.ts';

function inFlight(context: GpuContext): string {
  const kernels = context.kernelsInFlight ?? [];
  if (kernels.length === 0) return 'no kernel was in flight';
  const unique = [...new Set(kernels)];
  return `kernels in the last submit: ${unique.slice(0, 8).join(', ')}${unique.length > 8 ? ', …' : ''}`;
}

/**
 * Reports device loss and uncaptured validation/OOM errors with the kernels that were running.
 * `onError` defaults to console.error; a host may route it elsewhere (e.g. to the page console).
 */
export function attachDeviceDiagnostics(
  context: GpuContext,
  onError: (message: string) => void = (message) => console.error(message),
): void {
  const { device } = context;
  device.lost.then((info) => {
    context.lost = `${info.reason}: ${info.message}`;
    // 'destroyed' is our own explicit teardown, not a failure.
    if (info.reason !== 'destroyed')
      onError(`sharpness-lab: GPU device lost (${info.message}); ${inFlight(context)}`);
  });
  device.addEventListener('uncapturederror', (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    onError(`sharpness-lab: uncaptured GPU error: ${error.message}; ${inFlight(context)}`);
  });
}
