/**
 * When a run measures. A log point is named by the number of updates applied so far (0 = the
 * initialisation): 0, every `every` updates, and the end of training. Every consumer (the trainer, the
 * executor's measurements and checkpoints, resume checks) asks this one function.
 */
export interface LogSchedule {
  /** Updates between log points (0: no log points). */
  every: number;
  /** Total updates of the run. */
  steps: number;
}

/** Whether the state after `updates` updates is measured: 0, multiples of `every`, and `steps`. */
export function isLogPoint(updates: number, schedule: LogSchedule): boolean {
  if (!(schedule.every > 0) || updates < 0 || updates > schedule.steps) return false;
  return updates % schedule.every === 0 || updates === schedule.steps;
}

/** The log points of a run, ascending. */
export function logPoints(schedule: LogSchedule): number[] {
  if (!(schedule.every > 0)) return [];
  const points: number[] = [];
  for (let updates = 0; updates < schedule.steps; updates += schedule.every) points.push(updates);
  points.push(schedule.steps);
  return points;
}
