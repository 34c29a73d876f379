// What samplers and pruners see of a study's trials: enough to recompute any decision from the
// seed and the history alone (the study workflow continues-as-new, so nothing else survives).
import type { Params } from './search-space.ts';

export type TrialState = 'running' | 'completed' | 'pruned' | 'failed';

export interface TrialView {
  /** 0-based, in suggestion order. */
  number: number;
  params: Params;
  state: TrialState;
  /** The final objective value (completed trials). */
  value: number | null;
  /** Intermediate objective values by the trainer's step, ascending steps. */
  intermediate: ReadonlyArray<readonly [step: number, value: number]>;
}

/** The newest intermediate value, or undefined before the first report. */
export function lastIntermediate(trial: TrialView): readonly [step: number, value: number] | undefined {
  return trial.intermediate[trial.intermediate.length - 1];
}
