/**
 * A progress line for long runs. On a TTY: one line rewritten in place with a bar, percentage,
 * steps/s and ETA (redrawn at most every `ttyIntervalMs`). Elsewhere (CI logs, pipes): a plain line at
 * most every `plainIntervalMs`, so logs stay short.
 *
 * Work may come in segments of different cost per unit (an experiment's replica batches: a fused
 * deep linear batch runs thousands of steps/s, a Transformer batch a hundred). The rate shown is the
 * current segment's. The ETA comes from a cost model when the segments are known (`segments`): the
 * current segment's remaining units at its measured rate, and every later segment's units at the
 * rate measured on segments of its kind (else on all segments so far), scaled by the prior weights —
 * so a cheap segment running now does not promise seconds for the expensive ones after it. Without
 * `segments` the current segment's rate is extrapolated to all remaining units.
 */

import {
  type ExperimentConfig,
  type ValidatedGroup,
  validateExperiment,
} from '../../src/experiments/config.ts';
import {
  type ExperimentShard,
  measurementRoute,
  planBatches,
  shardRange,
} from '../../src/experiments/executor.ts';
import { fusedCurvature } from '../../src/kernels/fused-hvp.ts';
import { prefersNetwork, sequenceNetwork } from '../../src/train/fused.ts';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** One segment of the work (e.g. an experiment's replica batch). */
export interface ProgressSegment {
  /** Units of work in it (e.g. training steps). */
  units: number;
  /** Segments of one kind run at the same cost per weighted unit (e.g. same model kind and path). */
  kind: string;
  /** Prior cost of one unit relative to the other segments (any scale; only ratios matter). */
  weight: number;
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
  /** The segments in order (`update`'s segment id indexes them): ETA from the cost model. */
  segments?: readonly ProgressSegment[];
  /** When the work began on the `now` clock (default: when the bar is made, e.g. at the first update). */
  startedAt?: number;
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
  private segment: { id: number; startedAt: number; startDone: number; lastDone: number } | undefined;
  private lastUpdate: number;
  private readonly segments: readonly ProgressSegment[] | undefined;
  /** Seconds and units measured on each segment that has ended (by segment id). */
  private readonly measured = new Map<number, { seconds: number; units: number }>();

  constructor(options: ProgressOptions) {
    this.total = Math.max(0, options.total);
    this.label = options.label ?? '';
    this.unit = options.unit ?? 'steps';
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.ttyInterval = options.ttyIntervalMs ?? 100;
    this.plainInterval = options.plainIntervalMs ?? 5000;
    this.now = options.now ?? (() => Date.now());
    this.started = options.startedAt ?? this.now();
    this.lastUpdate = this.started;
    this.segments = options.segments;
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
      const previous = this.segment;
      if (previous) {
        this.measured.set(previous.id, {
          seconds: (this.lastUpdate - previous.startedAt) / 1000,
          units: previous.lastDone - previous.startDone,
        });
      }
      // It began at about the previous update (the end of the segment before).
      this.segment = {
        id: segment.id,
        startedAt: this.lastUpdate,
        startDone: this.done - segment.done,
        lastDone: this.done,
      };
    }
    if (this.segment) this.segment.lastDone = this.done;
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
    const modelled = this.modelledSeconds(rate, inSegment);
    const eta =
      this.done >= this.total
        ? 0
        : modelled !== undefined
          ? modelled
          : rate > 0
            ? (this.total - this.done) / rate
            : Number.NaN;
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

  /**
   * Seconds left by the cost model: the current segment's remaining units at `rate` (its measured
   * rate), each later segment's at c × its weight, with c the seconds per weighted unit measured on
   * segments of the same kind, else on every measured segment. Undefined without segments, before
   * anything was measured, or when the current segment id is not one of them.
   */
  private modelledSeconds(rate: number, inSegment: number): number | undefined {
    const segments = this.segments;
    const current = this.segment;
    if (!segments || !current || current.id < 0 || current.id >= segments.length) return undefined;
    const samples = [...this.measured.entries()].filter(([id]) => id >= 0 && id < segments.length);
    if (inSegment > 0 && rate > 0)
      samples.push([current.id, { seconds: inSegment / rate, units: inSegment }]);
    const secondsPerWeight = (kind?: string) => {
      let seconds = 0;
      let weighted = 0;
      for (const [id, m] of samples) {
        if (kind !== undefined && segments[id].kind !== kind) continue;
        seconds += m.seconds;
        weighted += m.units * segments[id].weight;
      }
      return weighted > 0 ? seconds / weighted : undefined;
    };
    const overall = secondsPerWeight();
    if (overall === undefined) return undefined;
    let seconds = 0;
    for (let id = current.id; id < segments.length; id++) {
      const segment = segments[id];
      const left = id === current.id ? Math.max(0, segment.units - inSegment) : segment.units;
      if (id === current.id && inSegment > 0 && rate > 0) seconds += left / rate;
      else seconds += left * segment.weight * (secondsPerWeight(segment.kind) ?? overall);
    }
    return seconds;
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

/**
 * Prior cost of one general-path (tape) step in nominal milliseconds, before any batch of the kind
 * is measured: launches of one step (scheduler.launches per step at the paper's sizes: RNN 63,
 * Transformer ≈ 130) at ≈ 0.12 ms each on SwiftShader. Only ratios matter: measured batches calibrate.
 */
const GENERAL_STEP_MS: Record<string, number> = { 'deep-linear': 2.5, mlp: 3, rnn: 8, transformer: 16 };
/** The fused path's per-step cost beside a general step's (many steps per dispatch). */
const FUSED_STEP_MS = 0.05;
/** Arithmetic on top of the launches: 6 flops per parameter and row at ≈ 2 GFLOP/s (MNIST's MLP). */
const FLOPS_PER_MS = 2e6;
/**
 * A log point's H·v products in steps of the same model: each HVP over `evaluationSamples` rows costs
 * about a quarter of a training step per `batchSize` rows (probe copies share launches); measured on
 * the quick RNN: 92 exact-trace HVPs over 200 rows ≈ 500 steps of batch 10.
 */
const HVP_STEP_FRACTION = 0.25;

/**
 * Whether the batch will train on the fused path, as far as the config shows (src/train/fused.ts
 * decides on the built model and data): a deep linear net on a linear teacher or a narrow MLP on an
 * MLP teacher, under MSE or cross-entropy; an RNN or Transformer on a teacher of its own kind within
 * the kernels' limits, where 'auto''s rule (`prefersNetwork`, on the shapes) takes it.
 */
function fusedPrior(group: ValidatedGroup, replicas: number): boolean {
  const { model, data, loss, train } = group.resolved;
  if (model.kind === 'deep-linear') return data.kind === 'linear-teacher';
  if (data.kind !== 'teacher-student') return false;
  if (model.kind === 'mlp')
    return (
      model.hidden.length === 1 && [model.inputDim, model.hidden[0], model.outputDim].every((w) => w <= 4)
    );
  // RNNs and Transformers: the trainer's own shape checks (undefined for any other model).
  const network = sequenceNetwork(model, data.teacher, loss);
  return network !== undefined && prefersNetwork(network, train.batchSize, replicas);
}

/**
 * One segment per replica batch of the run (or of a shard): its training steps, its kind (model kind
 * and path) and a prior weight per step — the step's launches and arithmetic plus the log points'
 * H·v products spread over the steps. The bar replaces the prior by measured rates as batches run.
 */
export function experimentSegments(config: ExperimentConfig, shard?: ExperimentShard): ProgressSegment[] {
  const batches = planBatches(validateExperiment(config), shard ? shardRange(config, shard) : undefined);
  return batches.map((batch) => {
    const group = batch.members[0].group;
    const { model, train, measure } = group.resolved;
    // How the executor measures this batch's curvature: on the CPU (closed forms), or by HVPs.
    const route = measurementRoute(batch);
    const { parameters } = route;
    const fused = fusedPrior(group, batch.replicas);
    const flopsMs = (rows: number) => (6 * parameters * rows * batch.replicas) / FLOPS_PER_MS;
    const stepMs = (fused ? FUSED_STEP_MS : (GENERAL_STEP_MS[model.kind] ?? 3)) + flopsMs(train.batchSize);
    const curvature = measure.metrics.some(
      (m) => m === 'sharpness' || m === 'lambdaMax' || m === 'fluctuation',
    );
    const hvps =
      !curvature || route.kind !== 'sample-gpu'
        ? 0
        : parameters <= route.exactTraceMax
          ? parameters
          : route.probes + route.lanczosSteps;
    const generalStepMs = (GENERAL_STEP_MS[model.kind] ?? 3) + flopsMs(train.batchSize);
    // The fused curvature kernels (small deep linear nets, MLPs, RNNs) cost their arithmetic alone:
    // an H·v or a diagonal entry ≈ two gradient passes over the rows, without the tape's launches.
    const logPointMs = fusedCurvature(group.model.spec, group.resolved.loss)
      ? hvps * 2 * flopsMs(measure.evaluationSamples)
      : hvps * (measure.evaluationSamples / train.batchSize) * HVP_STEP_FRACTION * generalStepMs;
    return {
      units: train.steps,
      kind: `${fused ? 'fused' : 'general'} ${model.kind} ${parameters}`,
      weight: stepMs + logPointMs / measure.every,
    };
  });
}
