/** The profiler's report as a terminal table and its events as a Chrome trace (chrome://tracing, Perfetto). */
import type { ProfileClock, ProfileEvent, ProfileReport } from './profiler.ts';

const CLOCK_NOTE: Record<ProfileClock, string> = {
  'gpu-timestamp': 'GPU timestamps around each launch (timestamp-query)',
  'wall-clock':
    'wall clock, no GPU timestamps: each launch submitted alone and timed from submit to onSubmittedWorkDone (includes submit latency)',
};

function pad(cells: string[], widths: number[], rightAligned: boolean[]): string {
  return cells
    .map((cell, i) => (rightAligned[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
    .join('  ')
    .trimEnd();
}

/** Aligned columns, largest total first: kernel, calls, total ms, mean µs, share. */
export function formatProfileTable(report: ProfileReport): string {
  const header = ['kernel', 'calls', 'total ms', 'mean µs', 'share'];
  const rows = report.kernels.map((k) => [
    k.kernel,
    String(k.calls),
    k.totalMs.toFixed(3),
    k.meanUs.toFixed(1),
    `${(100 * k.share).toFixed(1)} %`,
  ]);
  const total = ['total', String(report.launches), report.totalMs.toFixed(3), '', '100.0 %'];
  const all = [header, ...rows, total];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const right = [false, true, true, true, true];
  const rule = '-'.repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1));
  const ratio = report.wallMs > 0 ? ` (${((100 * report.totalMs) / report.wallMs).toFixed(1)} % of it)` : '';
  return [
    `profile: ${CLOCK_NOTE[report.clock]}`,
    `${report.launches} launches in ${report.submits} submits; ${report.totalMs.toFixed(3)} ms of kernels over ${report.wallMs.toFixed(1)} ms wall${ratio}`,
    pad(header, widths, right),
    rule,
    ...rows.map((r) => pad(r, widths, right)),
    rule,
    pad(total, widths, right),
  ].join('\n');
}

export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'M';
  ts?: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, string>;
}

/**
 * Trace Event Format: one complete ('X') event per launch with ts and dur in µs on one GPU-queue
 * track, args naming pipeline, shader, workgroups and submit; loads in chrome://tracing and Perfetto.
 */
export function chromeTrace(
  events: readonly ProfileEvent[],
  clock: ProfileClock,
  otherData: Record<string, string> = {},
): ChromeTrace {
  const traceEvents: ChromeTraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: 1, tid: 1, args: { name: 'sharpness-lab GPU' } },
    { name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: { name: `queue (${clock})` } },
  ];
  for (const e of events) {
    traceEvents.push({
      name: e.kernel,
      cat: 'kernel',
      ph: 'X',
      ts: e.startUs,
      dur: e.durationUs,
      pid: 1,
      tid: 1,
      args: {
        pipeline: e.pipeline,
        shader: e.shader,
        workgroups: e.workgroups.join('×'),
        submit: e.submit,
      },
    });
  }
  return { traceEvents, displayTimeUnit: 'ms', otherData: { clock, ...otherData } };
}
