/** python3 + numpy as an independent reader and writer of file formats, where this machine has them. */
import { spawnSync } from 'node:child_process';

export const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

/** Runs a python3 script in folder `cwd`; returns its stdout, throws with its stderr when it fails. */
export function python(cwd: string, script: string): string {
  const result = spawnSync('python3', ['-c', script], { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return result.stdout;
}
