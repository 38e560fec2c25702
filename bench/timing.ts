/** Wall-clock measurement shared by the benchmark suites. */

export interface MeasureOptions {
  /** Keep repeating until this much time has passed in total (seconds). */
  minSeconds: number;
  /** Repeat at least this many times, however long each takes. */
  minReps: number;
  /** Stop after this many repetitions even if `minSeconds` has not passed. */
  maxReps?: number;
  /** Run once untimed first (default true); false when the caller has already run it. */
  warmup?: boolean;
}

export interface Measurement {
  /** Median seconds per repetition. */
  median: number;
  /** Seconds of every repetition, in order. */
  samples: number[];
}

/**
 * Runs `rep` once untimed as a warm-up (pipeline compilation, buffer allocation) unless told the
 * caller already did, then repeats it
 * until `minSeconds` have passed and at least `minReps` repetitions were made. Each repetition is
 * timed on its own, from its first launch until its promise resolves (for GPU work: until the GPU
 * has finished), so the median is robust against the noise of a shared machine.
 */
export async function measure(rep: () => Promise<void>, options: MeasureOptions): Promise<Measurement> {
  if (options.warmup ?? true) await rep();
  const samples: number[] = [];
  const started = performance.now();
  const maxReps = options.maxReps ?? Number.POSITIVE_INFINITY;
  while (
    samples.length < maxReps &&
    (samples.length < options.minReps || performance.now() - started < options.minSeconds * 1000)
  ) {
    const t0 = performance.now();
    await rep();
    samples.push((performance.now() - t0) / 1000);
  }
  return { median: median(samples), samples };
}

/**
 * Times several already warmed-up repetitions side by side: in rounds, each one that still needs
 * samples runs for a slice of about `sliceSeconds` (at least one repetition), until every one has
 * at least `minReps` repetitions and `minSeconds` of them. On a machine shared with other work the
 * load then changes under all of them alike, so their medians compare fairly.
 */
export async function measureInterleaved(
  reps: readonly (() => Promise<void>)[],
  options: { minSeconds: number; minReps: number; sliceSeconds?: number },
): Promise<Measurement[]> {
  const slice = (options.sliceSeconds ?? 0.1) * 1000;
  const samples = reps.map(() => [] as number[]);
  const spent = reps.map(() => 0);
  const done = (i: number) => samples[i].length >= options.minReps && spent[i] >= options.minSeconds * 1000;
  while (reps.some((_, i) => !done(i))) {
    for (const [i, rep] of reps.entries()) {
      if (done(i)) continue;
      const sliceStart = performance.now();
      do {
        const t0 = performance.now();
        await rep();
        const t = performance.now() - t0;
        samples[i].push(t / 1000);
        spent[i] += t;
      } while (performance.now() - sliceStart < slice && !done(i));
    }
  }
  return samples.map((s) => ({ median: median(s), samples: s }));
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Deterministic uniform [-1, 1) values (mulberry32), so every run benchmarks the same inputs. */
export { deterministicFloats as randomFloats } from '../src/kernels/matmul-tuner.ts';
