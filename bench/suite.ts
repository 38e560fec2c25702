/** What every benchmark suite (matmul now; train, hvp, lanczos later) is given and returns. */
import type { NodeDeviceOptions } from '../runner/node/device.ts';
import type { Engine } from '../src/tensor/engine.ts';
import type { TfjsWebgpu } from './tfjs.ts';

export interface BenchContext {
  /** Our engine; peers are opened on the same adapter. */
  engine: Engine;
  /** The device flags our engine was created with (peers use the same adapter selection). */
  device: NodeDeviceOptions;
  /** Each measurement repeats until at least this many seconds have passed. */
  minSeconds: number;
  /** Progress lines (stderr): which engine and shape is running. */
  log(line: string): void;
  /** tfjs-core + tfjs-backend-webgpu on our adapter, loaded on first use and shared by suites. */
  tfjs(): Promise<TfjsWebgpu>;
  /**
   * Runs a job of the bench page (runner/browser/bench-page.ts) in Chromium and returns its result:
   * handed in by the bench command, so bench/ never imports the browser runner. Absent in the page.
   */
  runInPage?(job: string, params: unknown, log: (line: string) => void): Promise<unknown>;
}

/**
 * One measured number. `error` says why a case has no result (the engine could not run it, or its
 * result failed the correctness check); `gflops` is null then, and in suites that measure something
 * else (steps/s, HVP ratios), which add their own fields.
 */
export interface BenchResult {
  engine: string;
  shape: readonly number[];
  gflops: number | null;
  error?: string;
}

export interface BenchSuite {
  run(context: BenchContext): Promise<BenchResult[]>;
  /** A plain-text table of this suite's results for the terminal. */
  formatTable(results: readonly BenchResult[]): string;
}
