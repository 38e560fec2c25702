/** Launching Chromium for a session: closed at close; a crash or kill while the session lives fails it. */
import { type Chromium, type GpuMode, launchChromium } from '../chromium.ts';
import type { SessionState } from './state.ts';

export async function launchBrowser(
  gpu: GpuMode,
  executablePath: string | undefined,
  state: SessionState,
): Promise<Chromium> {
  const chromium = await launchChromium({ gpu, executablePath });
  state.onClose(() => chromium.close());
  void chromium.crashed.then((message) => state.fail('crash', message));
  return chromium;
}
