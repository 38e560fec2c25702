/**
 * One live training run of the lab page: the experiment executor (`runExperiment`, the code `run`
 * executes, so the rows are the CLI's) driven through its `logPoint` hook, which streams every log
 * point's rows and weights to the page, pauses, steps one log interval, or stops the run. A run can
 * continue from its last log point under another setting of the same network (the executor's resume).
 */
import type { ExperimentConfig } from '../../src/experiments/config.ts';
import {
  type Checkpoint,
  type ExperimentOutcome,
  type LogPoint,
  runExperiment,
} from '../../src/experiments/executor.ts';
import type { ResultRow } from '../../src/experiments/results.ts';
import type { Engine } from '../../src/tensor/engine.ts';

export type RunStatus = 'running' | 'paused' | 'done' | 'stopped' | 'failed';

export interface RunListener {
  /** Rows measured at one log point (every replica's loss, T, S, λ_max), and that point's weights. */
  logPoint(rows: readonly ResultRow[], step: number, params: readonly Float32Array[]): void;
  status(status: RunStatus, detail?: string): void;
}

/** Thrown by the log-point hook to end a run early (reset, or a change of setting). */
class StopRun extends Error {}

/** The longest the run keeps the main thread before it lets the browser handle input and paint. */
const FRAME_BUDGET_MS = 30;

/**
 * Ends the current task: the browser handles pending input and paints when a frame is due. (Waiting
 * for an animation frame instead would idle the training for up to a frame each time.)
 */
function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

export class LabRun {
  readonly config: ExperimentConfig;
  /** Every row so far (measured; the theory rows are added when the run completes). */
  readonly rows: ResultRow[] = [];
  divergences: ExperimentOutcome['divergences'] = [];
  /** The last measured step and its weights. */
  lastStep = -1;
  params: Float32Array[] = [];
  status: RunStatus = 'running';
  readonly startedAt = new Date();
  /** Steps trained by this run (not by the run it continues) and the wall time they took. */
  private firstStep: number;
  /** Wall time spent training (pauses left out), up to the last log point. */
  private activeMs = 0;
  private activeSince = performance.now();
  private warm = false;
  private readonly createdAt = performance.now();
  private endedAt: number | undefined;
  private pausedMs = 0;
  private paused = false;
  private pauseAfterNext = false;
  private stopRequested = false;
  private wake: (() => void) | undefined;
  private lastFrame = performance.now();
  readonly finished: Promise<void>;

  /**
   * Starts training `config` on `engine`; `from` continues an earlier run at its last log point (its
   * measured rows are kept, its theory rows dropped: they belong to the earlier setting).
   */
  constructor(
    private readonly engine: Engine,
    config: ExperimentConfig,
    private readonly listener: RunListener,
    from?: LabRun,
    startPaused = false,
  ) {
    this.config = config;
    this.paused = startPaused;
    let resume: Checkpoint | undefined;
    if (from && from.lastStep >= 0) {
      this.rows.push(...from.rows.filter((row) => row.seed !== 'theory'));
      this.lastStep = from.lastStep;
      this.params = from.params;
      resume = {
        version: 2,
        experiment: config.name,
        shard: null,
        batchIndex: 0,
        step: from.lastStep + 1,
        params: from.params.map((p) => Array.from(p)),
        rows: this.rows,
        divergences: from.divergences,
      };
    }
    this.firstStep = this.lastStep;
    this.finished = this.execute(resume);
  }

  private async execute(resume: Checkpoint | undefined): Promise<void> {
    let seen = this.rows.length;
    try {
      const outcome = await runExperiment(this.engine, this.config, {
        resume,
        logPoint: async (point: LogPoint) => {
          const fresh = point.rows.slice(seen);
          seen = point.rows.length;
          this.rows.push(...fresh);
          // A log point counts updates applied; lastStep is the index of the last step taken (−1: none).
          this.lastStep = point.step - 1;
          const now = performance.now();
          // Steps per second count from the first log point: before it the pipelines compile.
          if (this.warm) this.activeMs += now - this.activeSince;
          else this.firstStep = point.step - 1;
          this.warm = true;
          this.activeSince = now;
          this.params = point.params.map((p) => Float32Array.from(p));
          this.listener.logPoint(fresh, point.step, this.params);
          await this.gate();
        },
      });
      this.rows.length = 0;
      this.rows.push(...outcome.rows);
      this.divergences = outcome.divergences;
      this.endedAt = performance.now();
      this.setStatus('done');
    } catch (error) {
      this.endedAt = performance.now();
      if (error instanceof StopRun) this.setStatus('stopped');
      else this.setStatus('failed', error instanceof Error ? error.message : String(error));
    }
  }

  /** Between log points: stop, pause (until resumed or stepped), or give the browser a frame. */
  private async gate(): Promise<void> {
    if (this.stopRequested) throw new StopRun();
    if (this.pauseAfterNext) {
      this.pauseAfterNext = false;
      this.paused = true;
    }
    if (this.paused) {
      const pausedAt = performance.now();
      this.setStatus('paused');
      while (this.paused && !this.stopRequested) await new Promise<void>((resolve) => (this.wake = resolve));
      this.pausedMs += performance.now() - pausedAt;
      if (this.stopRequested) throw new StopRun();
      this.setStatus('running');
      this.activeSince = performance.now();
    }
    if (performance.now() - this.lastFrame > FRAME_BUDGET_MS) {
      await yieldToBrowser();
      this.lastFrame = performance.now();
    }
  }

  private setStatus(status: RunStatus, detail?: string): void {
    this.status = status;
    this.listener.status(status, detail);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake?.();
  }

  /** Trains to the next log point, then pauses. */
  step(): void {
    this.pauseAfterNext = true;
    this.resume();
  }

  /** Ends the run at its next log point (at once when paused); resolves when it has ended. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.wake?.();
    await this.finished;
  }

  get active(): boolean {
    return this.status === 'running' || this.status === 'paused';
  }

  /**
   * Steps per second of training time since this run's first log point (measurements included; pauses
   * and the start, where the pipelines compile, left out).
   */
  stepsPerSecond(): number {
    return this.activeMs > 0 ? ((this.lastStep - this.firstStep) * 1000) / this.activeMs : 0;
  }

  /** Seconds from the start to the end (or now), pauses left out: results.json's wallSeconds. */
  wallSeconds(): number {
    return ((this.endedAt ?? performance.now()) - this.createdAt - this.pausedMs) / 1000;
  }
}
