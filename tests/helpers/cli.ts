/** Runs the real CLI (runner/bin.mjs) as a child process, as the end-to-end tests do. */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds from the spawn to the child's close. */
  seconds: number;
}

export interface CliOptions {
  /** Working directory; the repository root by default. */
  cwd?: string;
  /** Added to process.env (and XDG_RUNTIME_DIR, which defaults to process.env's or /tmp). */
  env?: Record<string, string>;
  /** SIGKILL the child after this many milliseconds; no limit by default. */
  timeoutMs?: number;
}

/** `node runner/bin.mjs ...args`: resolves on close with the exit code, stdout, stderr and seconds. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runProcess(process.execPath, [join(root, 'runner', 'bin.mjs'), ...args], options);
}

/** Any command as a child process (cwd: the repository root by default), like `runCli`. */
export function runProcess(command: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/**
 * Starts `node runner/bin.mjs ...args` in `cwd` without waiting: the child (to signal it) and a promise
 * of its exit code or signal and its stderr.
 */
export function startCli(
  args: string[],
  cwd: string,
): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [join(root, 'runner', 'bin.mjs'), ...args], {
    cwd,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stderr }));
    },
  );
  return { child, done };
}
