// The one interface every sampler implements. A sampler is a pure function of its context: it
// keeps no state between calls, so the study workflow can continue-as-new (or replay) and get the
// same suggestions from the seed and the trials alone.
import type { Direction, Params, SearchSpace } from '../search-space.ts';
import type { TrialView } from '../trials.ts';

export interface SuggestContext {
  space: SearchSpace;
  direction: Direction;
  seed: number;
  /** The number the suggested trial will have (0-based). */
  trialNumber: number;
  /** Every trial so far, any state (the one being suggested excluded). */
  trials: readonly TrialView[];
}

export interface Sampler {
  /** The next trial's params, or null when there is nothing left to try (grid exhausted). */
  suggest(ctx: SuggestContext): Params | null;
}
