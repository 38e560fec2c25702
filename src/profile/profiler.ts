/**
 * Per-launch GPU timing, aggregated per kernel name. With `timestamp-query` every launch gets its own
 * compute pass whose beginning and end write GPU timestamps into a query set; the sets are resolved
 * into buffers at each flush and mapped in the background (a ring of slots, reused once read), so
 * profiling never waits on the GPU until a report is asked for. Without the feature (or when forced)
 * every launch is submitted alone and timed on the wall clock from its submit until
 * `onSubmittedWorkDone`, which includes submit and callback latency; reports say which clock ran.
 */

/** 'gpu-timestamp': timestamp queries around each launch's pass; 'wall-clock': submit → done. */
export type ProfileClock = 'gpu-timestamp' | 'wall-clock';

/** What the scheduler knows about one launch. */
export interface LaunchInfo {
  kernel: string;
  /** Pipeline label: kernel with its override constants, e.g. `matmul[WG_X=8,WG_Y=4]`. */
  pipeline: string;
  shader: string;
  workgroups: readonly [number, number, number];
}

export interface ProfileEvent extends LaunchInfo {
  /** Index of the flush (queue submit) that carried the launch, counted from `start()`/`reset()`. */
  submit: number;
  /** Start relative to the first recorded launch, in µs, on the event's clock. */
  startUs: number;
  durationUs: number;
}

export interface KernelProfile {
  kernel: string;
  calls: number;
  totalMs: number;
  meanUs: number;
  /** totalMs over the report's totalMs (0 when nothing took measurable time). */
  share: number;
}

export interface ProfileReport {
  clock: ProfileClock;
  /** Per kernel name, sorted by total time, largest first. */
  kernels: KernelProfile[];
  launches: number;
  submits: number;
  /** Sum of every launch's duration. */
  totalMs: number;
  /** Wall time while recording: from start() (or reset()) until stop() or this report. */
  wallMs: number;
}

/** Launches per query set (two timestamps each); WebGPU allows 4096 queries per set. */
const SLOT_LAUNCHES = 1024;

interface QuerySlot {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
  launches: LaunchInfo[];
  submit: number;
}

export class Profiler {
  private recordingClock: ProfileClock | undefined;
  private lastClock: ProfileClock = 'gpu-timestamp';
  /** Bumped by reset(), so timings of launches recorded before it are dropped when they land. */
  private generation = 0;
  /** Wall-clock launches encoded since the last submit. */
  private wallLaunches: LaunchInfo[] = [];
  private readonly recorded: ProfileEvent[] = [];
  private readonly free: QuerySlot[] = [];
  private current: QuerySlot | undefined;
  /** Slots resolved into the encoder being built; mapped once it is submitted. */
  private resolvedUnsubmitted: QuerySlot[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Raw timestamp (ns) that maps to startUs = 0. */
  private originNs: bigint | undefined;
  private originWallMs: number | undefined;
  private lastDoneMs = 0;
  private wallStartMs = 0;
  private wallStopMs: number | undefined;
  private submitCount = 0;
  private failure: Error | undefined;

  constructor(private readonly device: GPUDevice) {}

  /** Whether the device can time launches with GPU timestamps. */
  get hasTimestamps(): boolean {
    return this.device.features.has('timestamp-query');
  }

  /** The clock in use while recording, undefined when stopped. */
  get recording(): ProfileClock | undefined {
    return this.recordingClock;
  }

  /** The clock of the events recorded (the last one started). */
  get clock(): ProfileClock {
    return this.lastClock;
  }

  /**
   * Starts recording launches (continuing the current events; reset() clears them). `wallClock`
   * forces the wall-clock fallback even when timestamps are available.
   */
  start(options: { wallClock?: boolean } = {}): void {
    const clock: ProfileClock = options.wallClock || !this.hasTimestamps ? 'wall-clock' : 'gpu-timestamp';
    if (this.recorded.length > 0 && clock !== this.lastClock)
      throw new Error(`profiler: cannot mix ${this.lastClock} and ${clock} events; reset() first`);
    if (this.recordingClock === undefined && this.wallStopMs === undefined)
      this.wallStartMs = performance.now();
    else if (this.wallStopMs !== undefined) this.wallStartMs += performance.now() - this.wallStopMs;
    this.wallStopMs = undefined;
    this.recordingClock = clock;
    this.lastClock = clock;
  }

  stop(): void {
    if (this.recordingClock === undefined) return;
    this.recordingClock = undefined;
    this.wallStopMs = performance.now();
  }

  /** Forgets every event (launches still in flight are dropped when they land). */
  reset(): void {
    this.recorded.length = 0;
    this.originNs = undefined;
    this.originWallMs = undefined;
    this.submitCount = 0;
    this.generation++;
    this.wallStartMs = performance.now();
    if (this.wallStopMs !== undefined) this.wallStopMs = this.wallStartMs;
  }

  /**
   * Called by the scheduler for each launch while recording, with the encoder the launch's own pass
   * will be begun on. Returns the pass's timestampWrites (undefined on the wall clock).
   */
  beginLaunch(encoder: GPUCommandEncoder, launch: LaunchInfo): GPUComputePassTimestampWrites | undefined {
    if (this.recordingClock === 'wall-clock') {
      this.wallLaunches.push(launch);
      return undefined;
    }
    if (this.current && this.current.launches.length >= SLOT_LAUNCHES) this.resolveCurrent(encoder);
    this.current ??= this.acquireSlot();
    const index = this.current.launches.length;
    this.current.launches.push(launch);
    return {
      querySet: this.current.querySet,
      beginningOfPassWriteIndex: 2 * index,
      endOfPassWriteIndex: 2 * index + 1,
    };
  }

  /** Called before the scheduler finishes its encoder: resolves the timestamps written so far. */
  beforeSubmit(encoder: GPUCommandEncoder): void {
    if (this.current && this.current.launches.length > 0) this.resolveCurrent(encoder);
  }

  /** Called right after the submit: starts reading the resolved timestamps back, without waiting. */
  afterSubmit(): void {
    const submit = this.submitCount;
    const generation = this.generation;
    if (this.resolvedUnsubmitted.length > 0 || this.wallLaunches.length > 0) this.submitCount++;
    for (const slot of this.resolvedUnsubmitted) {
      slot.submit = submit;
      this.track(
        slot.readback.mapAsync(GPUMapMode.READ).then(() => {
          const times = new BigUint64Array(
            slot.readback.getMappedRange().slice(0, 16 * slot.launches.length),
          );
          slot.readback.unmap();
          if (generation === this.generation) this.decodeTimestamps(slot, times);
          slot.launches = [];
          this.free.push(slot);
        }),
      );
    }
    this.resolvedUnsubmitted = [];
    if (this.wallLaunches.length > 0) {
      const launches = this.wallLaunches;
      this.wallLaunches = [];
      const submittedMs = performance.now();
      this.track(
        this.device.queue.onSubmittedWorkDone().then(() => {
          const doneMs = performance.now();
          // Submits run in order: this one started when it was submitted or the previous one ended.
          const startMs = Math.max(submittedMs, this.lastDoneMs);
          this.lastDoneMs = doneMs;
          if (generation !== this.generation) return;
          this.originWallMs ??= startMs;
          const share = (doneMs - startMs) / launches.length;
          for (const [i, launch] of launches.entries()) {
            this.recorded.push({
              ...launch,
              submit,
              startUs: (startMs - this.originWallMs + i * share) * 1000,
              durationUs: share * 1000,
            });
          }
        }),
      );
    }
  }

  /** Waits for every launch submitted so far to be timed. */
  async collect(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
  }

  /** Every recorded launch, in submit order (call collect() first for the latest ones). */
  get events(): readonly ProfileEvent[] {
    return this.recorded;
  }

  /** Waits for pending timings, then aggregates them per kernel name. */
  async report(): Promise<ProfileReport> {
    await this.collect();
    const byKernel = new Map<string, { calls: number; totalUs: number }>();
    let totalUs = 0;
    for (const e of this.recorded) {
      const entry = byKernel.get(e.kernel) ?? { calls: 0, totalUs: 0 };
      entry.calls++;
      entry.totalUs += e.durationUs;
      byKernel.set(e.kernel, entry);
      totalUs += e.durationUs;
    }
    const kernels = [...byKernel.entries()]
      .map(([kernel, { calls, totalUs: kernelUs }]) => ({
        kernel,
        calls,
        totalMs: kernelUs / 1000,
        meanUs: kernelUs / calls,
        share: totalUs > 0 ? kernelUs / totalUs : 0,
      }))
      .sort((x, y) => y.totalMs - x.totalMs || x.kernel.localeCompare(y.kernel));
    return {
      clock: this.lastClock,
      kernels,
      launches: this.recorded.length,
      submits: this.submitCount,
      totalMs: totalUs / 1000,
      wallMs: (this.wallStopMs ?? performance.now()) - this.wallStartMs,
    };
  }

  destroy(): void {
    this.recordingClock = undefined;
    for (const slot of [...this.free, ...(this.current ? [this.current] : [])]) {
      slot.querySet.destroy();
      slot.resolve.destroy();
      slot.readback.destroy();
    }
    this.free.length = 0;
    this.current = undefined;
  }

  private track(promise: Promise<void>): void {
    const tracked = promise.catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private acquireSlot(): QuerySlot {
    const reused = this.free.pop();
    if (reused) return reused;
    const bytes = 2 * SLOT_LAUNCHES * 8;
    return {
      querySet: this.device.createQuerySet({
        label: 'profiler timestamps',
        type: 'timestamp',
        count: 2 * SLOT_LAUNCHES,
      }),
      resolve: this.device.createBuffer({
        label: 'profiler resolve',
        size: bytes,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      readback: this.device.createBuffer({
        label: 'profiler readback',
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
      launches: [],
      submit: 0,
    };
  }

  private resolveCurrent(encoder: GPUCommandEncoder): void {
    const slot = this.current;
    if (!slot) return;
    const queries = 2 * slot.launches.length;
    encoder.resolveQuerySet(slot.querySet, 0, queries, slot.resolve, 0);
    encoder.copyBufferToBuffer(slot.resolve, 0, slot.readback, 0, queries * 8);
    this.resolvedUnsubmitted.push(slot);
    this.current = undefined;
  }

  private decodeTimestamps(slot: QuerySlot, times: BigUint64Array): void {
    for (const [i, launch] of slot.launches.entries()) {
      const begin = times[2 * i];
      const end = times[2 * i + 1];
      this.originNs ??= begin;
      // A clock that steps backwards (some drivers across passes) reads as zero, not negative time.
      const durationNs = end > begin ? Number(end - begin) : 0;
      this.recorded.push({
        ...launch,
        submit: slot.submit,
        startUs: Number(begin - this.originNs) / 1000,
        durationUs: durationNs / 1000,
      });
    }
  }
}
