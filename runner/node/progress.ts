/**
 * A progress line for long runs. On a TTY: one line rewritten in place with a bar, percentage,
 * steps/s and ETA (redrawn at most every `ttyIntervalMs`). Elsewhere (CI logs, pipes): a plain line at
 * most every `plainIntervalMs`, so logs stay short.
 *
 * Work may come in segments of different cost per unit (an experiment's replica batches: a fused
 * deep linear batch runs thousands of steps/s, a Transformer batch a hundred). Once the current
 * segment has made progress, rate and ETA come from it alone: the whole run's average would be
 * dominated by the cheap segments before it and promise seconds for minutes of work.
 */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Total units of work (e.g. training steps over all groups). */
  total: number;
  /** Shown before the bar, e.g. the experiment name. */
  label?: string;
  /** Unit name for the rate (default 'steps'). */
  unit?: string;
  stream?: ProgressStream;
  /** Overrides `stream.isTTY`. */
  tty?: boolean;
  ttyIntervalMs?: number;
  plainIntervalMs?: number;
  /** Clock in milliseconds (tests pass a fake one). */
  now?: () => number;
}

export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function formatRate(rate: number): string {
  if (!Number.isFinite(rate)) return '--';
  return rate >= 100 ? rate.toFixed(0) : rate >= 10 ? rate.toFixed(1) : rate.toFixed(2);
}

export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private readonly unit: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly ttyInterval: number;
  private readonly plainInterval: number;
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private done = 0;
  private detail = '';
  private finished = false;
  /** The current segment: its id, and the time and overall units done when it began. */
  private segment: { id: number; startedAt: number; startDone: number } | undefined;
  private lastUpdate: number;

  constructor(options: ProgressOptions) {
    this.total = Math.max(0, options.total);
    this.label = options.label ?? '';
    this.unit = options.unit ?? 'steps';
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.ttyInterval = options.ttyIntervalMs ?? 100;
    this.plainInterval = options.plainIntervalMs ?? 5000;
    this.now = options.now ?? (() => Date.now());
    this.started = this.now();
    this.lastUpdate = this.started;
  }

  /**
   * Sets the units done so far (and an optional detail, e.g. the current group); redraws if due.
   * `segment` names the segment the work is in and how many of its units are done.
   */
  update(done: number, detail?: string, segment?: { id: number; done: number }): void {
    if (this.finished) return;
    const now = this.now();
    this.done = Math.min(Math.max(done, 0), this.total);
    if (detail !== undefined) this.detail = detail;
    if (segment && segment.id !== this.segment?.id) {
      // It began at about the previous update (the end of the segment before).
      this.segment = { id: segment.id, startedAt: this.lastUpdate, startDone: this.done - segment.done };
    }
    this.lastUpdate = now;
    const interval = this.tty ? this.ttyInterval : this.plainInterval;
    if (now - this.lastDraw < interval) return;
    this.lastDraw = now;
    this.draw(now);
  }

  /** Draws the final state and ends the line. */
  finish(detail?: string): void {
    if (this.finished) return;
    if (detail !== undefined) this.detail = detail;
    this.done = this.total;
    this.draw(this.now());
    if (this.tty) this.stream.write('\n');
    this.finished = true;
  }

  /** The status text: label, percentage, done/total, rate, ETA and detail. */
  line(now = this.now()): string {
    const elapsed = (now - this.started) / 1000;
    const fraction = this.total > 0 ? this.done / this.total : 1;
    const segment = this.segment;
    const inSegment = segment ? this.done - segment.startDone : 0;
    const segmentSeconds = segment ? (now - segment.startedAt) / 1000 : 0;
    const rate =
      segment && inSegment > 0 && segmentSeconds > 0
        ? inSegment / segmentSeconds
        : elapsed > 0
          ? this.done / elapsed
          : Number.NaN;
    const eta = this.done >= this.total ? 0 : rate > 0 ? (this.total - this.done) / rate : Number.NaN;
    const parts = [
      `${(100 * fraction).toFixed(1).padStart(5)} %`,
      `${this.done}/${this.total} ${this.unit}`,
      `${formatRate(rate)} ${this.unit}/s`,
      this.done >= this.total ? `done in ${formatEta(elapsed)}` : `ETA ${formatEta(eta)}`,
    ];
    const prefix = this.label ? `${this.label} ` : '';
    const suffix = this.detail ? `  ${this.detail}` : '';
    return `${prefix}${parts.join('  ')}${suffix}`;
  }

  private draw(now: number): void {
    const text = this.line(now);
    if (!this.tty) {
      this.stream.write(`${text}\n`);
      return;
    }
    const width = this.stream.columns ?? 100;
    const barWidth = Math.max(10, Math.min(30, width - text.length - 4));
    const filled = Math.round(barWidth * (this.total > 0 ? this.done / this.total : 1));
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
    // \r back to column 0, \x1b[2K clears the old line.
    this.stream.write(`\r\x1b[2K${`${bar} ${text}`.slice(0, Math.max(width - 1, 20))}`);
  }
}
