// Median stopping rule, as Optuna's MedianPruner (a PercentilePruner at 50): prune a trial whose
// best intermediate value so far is worse than the median of the completed trials' values reported
// at the same step. Not before `startupTrials` trials have completed, not before `warmupSteps`, at
// most once per `intervalSteps`, and never when fewer than `minTrials` completed trials reported
// at that step. Steps are matched exactly (the trainer's step numbers): a trainer that reports at
// the same steps in every trial, as most do, gets the rule as published.
import { z } from 'zod';
import type { Direction } from '../search-space.ts';
import { lastIntermediate, type TrialView } from '../trials.ts';
import type { Pruner } from './pruner.ts';

export const medianPrunerSchema = z.strictObject({
  type: z.literal('median'),
  /** Completed trials needed before any pruning. */
  startupTrials: z.int().min(0).default(5),
  /** Steps before which a trial is never pruned. */
  warmupSteps: z.int().min(0).default(0),
  /** Judge at most once per this many steps (after the warm-up). */
  intervalSteps: z.int().min(1).default(1),
  /** Completed trials that must have reported at the step for the median to count. */
  minTrials: z.int().min(1).default(1),
});
export type MedianPrunerConfig = z.output<typeof medianPrunerSchema>;

/** The p-th percentile with linear interpolation between order statistics (numpy's default). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(position);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return (sorted[lo] as number) + (position - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

// Whether `step` is the first report in its pruning interval, so a trainer that reports every step
// is judged once per interval, and one that skips over an interval's start is judged at its next.
function firstInInterval(step: number, trial: TrialView, warmupSteps: number, intervalSteps: number): boolean {
  const intervalStart = Math.floor((step - warmupSteps) / intervalSteps) * intervalSteps + warmupSteps;
  let previous = -1;
  for (const [s] of trial.intermediate) if (s !== step && s > previous) previous = s;
  return previous < intervalStart;
}

function bestSoFar(trial: TrialView, direction: Direction): number {
  const values = trial.intermediate.map(([, v]) => v).filter((v) => !Number.isNaN(v));
  if (values.length === 0) return Number.NaN;
  return direction === 'minimize' ? Math.min(...values) : Math.max(...values);
}

export function createMedianPruner(config: MedianPrunerConfig): Pruner {
  return {
    shouldPrune({ direction, trial, trials }) {
      const completed = trials.filter((t) => t.number !== trial.number && t.state === 'completed');
      if (completed.length === 0 || completed.length < config.startupTrials) return false;
      const last = lastIntermediate(trial);
      if (!last) return false;
      const [step] = last;
      if (step < config.warmupSteps) return false;
      if (!firstInInterval(step, trial, config.warmupSteps, config.intervalSteps)) return false;
      const best = bestSoFar(trial, direction);
      if (Number.isNaN(best)) return true; // only NaNs reported: the trial diverged
      const atStep = completed
        .map((t) => t.intermediate.find(([s]) => s === step)?.[1])
        .filter((v): v is number => v !== undefined && !Number.isNaN(v));
      if (atStep.length < config.minTrials) return false;
      const median = percentile(atStep, 50);
      return direction === 'minimize' ? best > median : best < median;
    },
  };
}
