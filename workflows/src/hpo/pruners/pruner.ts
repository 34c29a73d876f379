// The one interface every pruner implements: judge a trial's newest intermediate value against the
// other trials' histories. Pure: the decision is recomputed from the histories alone, so it needs
// no state that a continue-as-new would lose.
import type { Direction } from '../search-space.ts';
import type { TrialView } from '../trials.ts';

export interface PruneContext {
  direction: Direction;
  /** The trial being judged: its newest intermediate value is the one under review. */
  trial: TrialView;
  /** The study's trials, any state (the judged one, if present, is skipped). */
  trials: readonly TrialView[];
}

export interface Pruner {
  /** Call once per intermediate value, as it arrives: ASHA judges a rung at the report that first
   *  reaches it, and the median rule once per interval, so a skipped call is a skipped judgement. */
  shouldPrune(ctx: PruneContext): boolean;
}
