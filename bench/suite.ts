/**
 * What every benchmark suite is given and returns. A suite imports only the engine (src/); what it
 * needs of its host (MNIST digits, a Chromium page, the tfjs peer on our adapter) comes in the context
 * from the command that runs it (bench/command.ts in Node, bench/browser/job.ts in the page).
 */
import type { DigitSet } from '../src/data/mnist.ts';
import type { Engine } from '../src/tensor/engine.ts';
import type { TfjsWebgpu } from './tfjs-session.ts';

export interface BenchContext {
  /** Our engine; peers are opened on the same adapter. */
  engine: Engine;
  /** Each measurement repeats until at least this many seconds have passed. */
  minSeconds: number;
  /** Progress lines (stderr): which engine and shape is running. */
  log(line: string): void;
  /** tfjs-core + tfjs-backend-webgpu on our adapter, loaded on first use and shared by suites. */
  tfjs(): Promise<TfjsWebgpu>;
  /** The MNIST training and test digits (the Node host reads them from the `mnist` package), as the
   * experiment hooks take them. Absent in the page. */
  mnistDigits?(): { train: DigitSet; test: DigitSet };
  /** Runs a numpy peer (bench/peers/NAME.py): JSON in, JSON out. Absent in the page. */
  python?(script: string, input: unknown): Promise<unknown>;
  /** Runs a job of the bench page (bench/browser/page.ts) in Chromium and returns its result. Absent in the page. */
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
