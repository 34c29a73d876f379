// Asynchronous successive halving (Li et al. 2018, "A System for Massively Parallel Hyperparameter
// Tuning"), as Optuna's SuccessiveHalvingPruner. Rung r sits at resource (step)
// minResource * reductionFactor^(minEarlyStoppingRate + r). A trial reaching a rung is kept iff
// its value there is among the top 1/reductionFactor of every trial's value at that rung, itself
// included; while fewer than reductionFactor trials have reached the rung it must be the best so
// far (ties keep the trial).
//
// Optuna records a trial's rung value when its reported step first reaches the rung. Here the same
// value is recomputed from the histories: a trial's value at a rung is its intermediate value at
// the first reported step >= the rung's resource. Trials of every state compete (a pruned or failed
// trial's rung values stay on record, as in Optuna). A report that crosses several rungs at once is
// judged at each of them in turn, with the same value.
import { z } from 'zod';
import type { Direction } from '../search-space.ts';
import { lastIntermediate, type TrialView } from '../trials.ts';
import type { Pruner } from './pruner.ts';

export const ashaPrunerSchema = z.strictObject({
  type: z.literal('asha'),
  /** The first rung's resource, in the trainer's steps. */
  minResource: z.int().min(1).default(1),
  /** Each rung keeps the top 1/reductionFactor and sits reductionFactor times further on. */
  reductionFactor: z.int().min(2).default(3),
  /** Skips the first rungs: rung r sits at minResource * reductionFactor^(this + r). */
  minEarlyStoppingRate: z.int().min(0).default(0),
});
export type AshaPrunerConfig = z.output<typeof ashaPrunerSchema>;

/** A trial's value at a rung: its value at the first reported step >= resource. */
export function valueAtResource(trial: TrialView, resource: number): number | undefined {
  return trial.intermediate.find(([step]) => step >= resource)?.[1];
}

/** Whether `value` is in the top 1/reductionFactor of `competing` (which includes it). */
export function promotable(value: number, competing: readonly number[], reductionFactor: number, direction: Direction) {
  const sorted = [...competing].sort((a, b) => a - b);
  const index = Math.max(0, Math.floor(sorted.length / reductionFactor) - 1);
  return direction === 'minimize'
    ? value <= (sorted[index] as number)
    : value >= (sorted[sorted.length - 1 - index] as number);
}

export function createAshaPruner(config: AshaPrunerConfig): Pruner {
  const rungResource = (rung: number) =>
    config.minResource * config.reductionFactor ** (config.minEarlyStoppingRate + rung);
  return {
    shouldPrune({ direction, trial, trials }) {
      const last = lastIntermediate(trial);
      if (!last) return false;
      const [step, value] = last;
      const previous = trial.intermediate[trial.intermediate.length - 2];
      const previousStep = previous ? previous[0] : Number.NEGATIVE_INFINITY;
      const others = trials.filter((t) => t.number !== trial.number);
      for (let rung = 0; rung < 64; rung++) {
        const resource = rungResource(rung);
        if (resource > step) return false;
        if (resource <= previousStep) continue; // judged at an earlier report
        if (Number.isNaN(value)) return true;
        const competing = others
          .map((t) => valueAtResource(t, resource))
          .filter((v): v is number => v !== undefined && !Number.isNaN(v));
        competing.push(value);
        if (!promotable(value, competing, config.reductionFactor, direction)) return true;
      }
      return false;
    },
  };
}
