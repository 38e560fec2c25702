/**
 * The rows and divergences of one batch's replicas: replica r of the batch is seed `seeds[r]` of group
 * `names[r]`. A replica frozen as diverged gives no rows from the log point where it diverged on.
 */
import type { ResultRow } from '../results.ts';
import type { ReplicaDivergence } from './hooks.ts';
import { perSlot, type ReplicaBatch, replicaSeeds } from './plan.ts';

export class ReplicaRows {
  readonly names: string[];
  readonly seeds: number[];
  /** Replicas frozen as diverged (see `freezeDiverged`). */
  readonly diverged = new Set<number>();

  /**
   * `rows` and `divergences` are the run's own arrays (appended to). Resuming mid-batch
   * (`resumed`), the replicas the checkpoint recorded as diverged stay frozen.
   */
  constructor(
    private readonly experiment: string,
    batch: ReplicaBatch,
    private readonly rows: ResultRow[],
    private readonly divergences: ReplicaDivergence[],
    resumed: boolean,
  ) {
    this.names = perSlot(batch, (m) => m.group.resolved.group);
    this.seeds = replicaSeeds(batch);
    if (resumed)
      this.names.forEach((name, r) => {
        if (divergences.some((d) => d.group === name && d.replica === this.seeds[r])) this.diverged.add(r);
      });
  }

  /** One row of replica r (none once it diverged); `eigenvalue` for density rows. */
  add(r: number, step: number, metric: string, value: number, eigenvalue?: number): void {
    if (this.diverged.has(r)) return;
    this.rows.push({
      experiment: this.experiment,
      group: this.names[r],
      seed: this.seeds[r],
      step,
      metric,
      value,
      ...(eigenvalue !== undefined && { eigenvalue }),
    });
  }

  /** Records replica r as diverged at `step` (once). */
  markDiverged(r: number, step: number, loss: number): void {
    this.diverged.add(r);
    this.divergences.push({ group: this.names[r], replica: this.seeds[r], step, loss });
  }
}
