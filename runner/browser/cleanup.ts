/**
 * Last-resort cleanup for the browser host: while a browser, server or temporary folder is alive,
 * process exit and SIGINT/SIGTERM/SIGHUP run its synchronous cleanup (kill the browser's process
 * group, delete the folder) before the process ends, so nothing is left behind even when the run
 * is interrupted. The normal path (`close()` in a finally block) unregisters itself first.
 */
import { constants } from 'node:os';

type Task = () => void;

const tasks = new Set<Task>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

function runAll(): void {
  for (const task of [...tasks]) {
    tasks.delete(task);
    try {
      task();
    } catch {}
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  process.exit(128 + (constants.signals[signal] ?? 1));
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function uninstall(): void {
  if (!installed || tasks.size > 0) return;
  installed = false;
  process.off('exit', runAll);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/** Runs `task` (synchronous) if the process exits or is signalled first; returns the unregister function. */
export function cleanupOnExit(task: Task): () => void {
  tasks.add(task);
  install();
  return () => {
    tasks.delete(task);
    uninstall();
  };
}

/** Sends SIGKILL to a process group (and the process itself), ignoring ones already gone. */
export function killProcessGroup(pid: number | undefined): void {
  if (!pid) return;
  if (process.platform !== 'win32') {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

/** Whether a process with this pid exists (one we may not signal counts: EPERM). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
