/**
 * What a benchmark run records beside its numbers (Node side): the adapter, where it ran, when, on
 * which commit and how many cores the machine has — so a JSON file from another machine compares.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import type { AdapterDescription } from '../src/gpu/context.ts';

export interface BenchMetadata {
  adapter: AdapterDescription;
  /** Where our engine ran: 'node' (Dawn through dawn.node) or 'browser' (Chromium's WebGPU). */
  host: 'node' | 'browser';
  /** ISO 8601 time the run finished. */
  date: string;
  /**
   * `git rev-parse HEAD` when the run started, with '+dirty' when tracked files had uncommitted
   * changes; null outside git.
   */
  commit: string | null;
  /** Logical CPU cores of the machine and its CPU model (SwiftShader runs on them). */
  cores: number;
  cpu: string;
  node: string;
  platform: string;
}

function gitCommit(): string | null {
  const git = (args: string[]) =>
    execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const head = git(['rev-parse', 'HEAD']);
    return git(['status', '--porcelain', '--untracked-files=no']) ? `${head}+dirty` : head;
  } catch {
    return null;
  }
}

// Read when the bench command loads: other work may commit while a long run is going.
const commitAtStart = gitCommit();

export function benchMetadata(adapter: AdapterDescription, host: 'node' | 'browser'): BenchMetadata {
  const cpuList = cpus();
  return {
    adapter,
    host,
    date: new Date().toISOString(),
    commit: commitAtStart,
    cores: cpuList.length,
    cpu: cpuList[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** `adapter: … · host · cores · commit · date`: the line above the tables. */
export function formatMetadata(meta: BenchMetadata): string {
  const a = meta.adapter;
  return [
    `adapter: ${a.description || a.device} (${a.vendor}/${a.architecture}, backend ${a.backend})`,
    `host: ${meta.host}, ${meta.cores} cores (${meta.cpu}), node ${meta.node}, ${meta.platform}`,
    `commit ${meta.commit ?? 'unknown'}, ${meta.date}`,
  ].join('\n');
}

/**
 * `bench … --json FILE`: `--json` followed by an argument that is neither a flag nor a suite name is
 * the file to write (the plain `--json` keeps printing JSON on stdout). Returns argv without it.
 */
export function takeJsonFile(
  argv: readonly string[],
  suites: readonly string[],
): { argv: string[]; file?: string } {
  const out = [...argv];
  const at = out.indexOf('--json');
  const next = out[at + 1];
  if (at < 0 || next === undefined || next.startsWith('--') || suites.includes(next)) return { argv: out };
  out.splice(at + 1, 1);
  return { argv: out, file: next };
}
