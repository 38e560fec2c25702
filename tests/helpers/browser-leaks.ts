/**
 * What a browser run may have left behind: live processes of the browser's process group or started
 * with its profile, and its temporary folders. Linux reads /proc; elsewhere only the folders are checked.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

interface ProcessInfo {
  pid: number;
  state: string;
  pgid: number;
  cmdline: string;
}

function processes(): ProcessInfo[] {
  if (!existsSync('/proc/self/stat')) return [];
  const found: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      found.push({ pid: Number(name), state: fields[0], pgid: Number(fields[2]), cmdline });
    } catch {}
  }
  return found;
}

/** Descriptions of everything still there; empty when the run cleaned up after itself. */
export function leftovers(run: { pid: number; profileDir: string; folders?: string[] }): string[] {
  const left: string[] = [];
  for (const p of processes()) {
    if (p.state === 'Z' || p.state === 'X') continue; // exited, waiting to be reaped
    if (p.pgid === run.pid || p.cmdline.includes(run.profileDir))
      left.push(`process ${p.pid} (${p.state}): ${p.cmdline.slice(0, 120)}`);
  }
  for (const folder of [run.profileDir, ...(run.folders ?? [])])
    if (existsSync(folder)) left.push(`folder ${folder}`);
  return left;
}
