// Tree-structured Parzen Estimator (Bergstra et al. 2011, "Algorithms for Hyper-Parameter
// Optimization"), with the defaults of Optuna's TPESampler (v5.0; written from its documentation
// and source, re-implemented here, not copied):
//  - the first nStartupTrials (10) finished trials are random search (the same draws as the
//    random sampler's, so the two agree until then);
//  - finished trials (completed, and pruned ones ranked after them by how far they got and then
//    by their last intermediate value, as Optuna does) split into "below" (the best gamma(n),
//    gamma(n) = min(ceil(0.1 n), 25)) and "above" (the rest);
//  - each group gets a Parzen estimator (see parzen-estimator.ts: prior weight 1, magic clip, no
//    endpoints) with Optuna's default weights: 1 each for up to 25 trials, beyond that the older
//    ones ramp down linearly from 1/n;
//  - nEiCandidates (24) draws from l(x) (the below estimator); the one with the largest
//    log l(x) - log g(x) wins, which maximises expected improvement (paper, section 4.1);
//  - multivariate: one joint estimator over all parameters (a kernel is a whole trial), Optuna's
//    default for single-objective studies since v5.0; univariate (multivariate: false, the paper's
//    and Optuna's default before v5.0) fits each parameter on its own;
//  - constant liar: running trials count in "above", so concurrent suggestions spread out instead
//    of piling onto the same region (Optuna's default since v5.0). Failed trials are ignored.
import { z } from 'zod';
import { createRng } from '../rng.ts';
import {
  contains,
  type Direction,
  type Distribution,
  type Params,
  type ParamValue,
  type SearchSpace,
  singleValue,
} from '../search-space.ts';
import { lastIntermediate, type TrialView } from '../trials.ts';
import { buildParzenEstimator, logPdfParzen, type ParzenOptions, sampleParzen } from './parzen-estimator.ts';
import { randomParams } from './random.ts';
import type { Sampler } from './sampler.ts';

/** RNG sub-stream for the model's draws; stream (seed, trial) alone is the random startup's. */
const MODEL_STREAM = 1;

export const tpeSamplerSchema = z.strictObject({
  type: z.literal('tpe'),
  /** Finished trials sampled at random before the model takes over. */
  nStartupTrials: z.int().min(0).default(10),
  /** Candidates drawn from l(x) per suggestion; the best l/g ratio wins. */
  nEiCandidates: z.int().min(1).default(24),
  /** Weight of the prior kernel (the whole range) against each observed trial's. */
  priorWeight: z.number().min(0).default(1),
  /** Let the range's ends widen the outermost kernels (Optuna's default: no). */
  considerEndpoints: z.boolean().default(false),
  /** Trials in "below": 'optuna' is min(ceil(0.1 n), 25); a number g is ceil(g n). */
  gamma: z.union([z.literal('optuna'), z.number().gt(0).lt(1)]).default('optuna'),
  /** One joint model over all parameters (true) or one per parameter (false). */
  multivariate: z.boolean().default(true),
  /** Count running trials as bad ones, so concurrent suggestions differ. */
  constantLiar: z.boolean().default(true),
});
export type TpeSamplerConfig = z.output<typeof tpeSamplerSchema>;

/** Optuna's default gamma: 10% of the finished trials, at most 25. */
export const optunaGamma = (n: number) => Math.min(Math.ceil(0.1 * n), 25);

/** Optuna's default weights for n trials in number order: the newest 25 weigh 1, older ones ramp. */
export function trialWeights(n: number): number[] {
  const weights = new Array<number>(n).fill(1);
  const ramp = n - 25;
  // Optuna's linspace(1/n, 1, ramp) for the oldest n - 25 trials.
  for (let i = 0; i < ramp; i++) weights[i] = ramp === 1 ? 1 / n : 1 / n + (i * (1 - 1 / n)) / (ramp - 1);
  return weights;
}

const isCompleted = (t: TrialView) => t.state === 'completed' && typeof t.value === 'number' && !Number.isNaN(t.value);

// Completed trials by value, best first; ties keep trial order.
function byValue(direction: Direction) {
  const sign = direction === 'minimize' ? 1 : -1;
  return (a: TrialView, b: TrialView) => {
    const x = sign * (a.value as number);
    const y = sign * (b.value as number);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

// Pruned trials: the further a trial got the better, then by its last value; none reported: last.
function prunedScore(t: TrialView, direction: Direction): [number, number] {
  const last = lastIntermediate(t);
  if (!last) return [1, 0];
  const [step, value] = last;
  if (Number.isNaN(value)) return [-step, Number.POSITIVE_INFINITY];
  return [-step, direction === 'minimize' ? value : -value];
}

/** Splits finished trials into the best `nBelow` and the rest; running ones join the rest. */
export function splitTrials(
  finished: readonly TrialView[],
  running: readonly TrialView[],
  nBelow: number,
  direction: Direction,
): { below: TrialView[]; above: TrialView[] } {
  const inOrder = [...finished].sort((a, b) => a.number - b.number);
  const completed = inOrder.filter(isCompleted).sort(byValue(direction));
  const pruned = inOrder
    .filter((t) => t.state === 'pruned')
    .map((t) => ({ t, score: prunedScore(t, direction) }))
    .sort((a, b) => a.score[0] - b.score[0] || (a.score[1] < b.score[1] ? -1 : a.score[1] > b.score[1] ? 1 : 0))
    .map(({ t }) => t);
  const nCompletedBelow = Math.min(nBelow, completed.length);
  const nPrunedBelow = Math.min(nBelow - nCompletedBelow, pruned.length);
  const below = [...completed.slice(0, nCompletedBelow), ...pruned.slice(0, nPrunedBelow)];
  const above = [...completed.slice(nCompletedBelow), ...pruned.slice(nPrunedBelow), ...running];
  const byNumber = (a: TrialView, b: TrialView) => a.number - b.number;
  return { below: below.sort(byNumber), above: above.sort(byNumber) };
}

// A trial's params as model coordinates (numbers; a categorical's choice index), or null if a
// param is missing or outside the space (e.g. the space changed): such trials are left out.
function observe(trials: readonly TrialView[], names: readonly string[], space: SearchSpace): number[][] {
  const choiceIndex = names.map((name) => {
    const d = space[name] as Distribution;
    return d.type === 'categorical' ? new Map<ParamValue, number>(d.choices.map((c, i) => [c, i])) : null;
  });
  const points: number[][] = [];
  for (const t of trials) {
    const point: number[] = [];
    for (const [i, name] of names.entries()) {
      const value = t.params[name];
      if (!contains(space[name] as Distribution, value)) break;
      const index = choiceIndex[i];
      point.push(index ? (index.get(value as ParamValue) as number) : (value as number));
    }
    if (point.length === names.length) points.push(point);
  }
  return points;
}

export function createTpeSampler(config: TpeSamplerConfig): Sampler {
  const options: ParzenOptions = { priorWeight: config.priorWeight, considerEndpoints: config.considerEndpoints };
  return {
    suggest({ space, direction, seed, trialNumber, trials }) {
      const others = trials.filter((t) => t.number !== trialNumber);
      const finished = others.filter((t) => isCompleted(t) || t.state === 'pruned');
      if (finished.length < config.nStartupTrials) return randomParams(space, createRng(seed, trialNumber));

      const running = config.constantLiar ? others.filter((t) => t.state === 'running') : [];
      const n = finished.length;
      const nBelow = config.gamma === 'optuna' ? optunaGamma(n) : Math.ceil(config.gamma * n);
      const { below, above } = splitTrials(finished, running, nBelow, direction);
      const rng = createRng(seed, trialNumber, MODEL_STREAM);

      const chosen: Params = {};
      const modelled: string[] = [];
      for (const [name, d] of Object.entries(space)) {
        const single = singleValue(d);
        if (single !== undefined) chosen[name] = single;
        else modelled.push(name);
      }
      const groups = config.multivariate ? [modelled] : modelled.map((name) => [name]);
      for (const names of groups) {
        if (names.length === 0) continue;
        const dists = names.map((name) => space[name] as Distribution);
        const belowPoints = observe(below, names, space);
        const abovePoints = observe(above, names, space);
        const l = buildParzenEstimator(dists, belowPoints, trialWeights(belowPoints.length), options);
        const g = buildParzenEstimator(dists, abovePoints, trialWeights(abovePoints.length), options);
        const candidates = sampleParzen(l, rng, config.nEiCandidates);
        const logL = logPdfParzen(l, candidates);
        const logG = logPdfParzen(g, candidates);
        let best = 0;
        let bestScore = Number.NEGATIVE_INFINITY;
        candidates.forEach((_, i) => {
          const score = (logL[i] as number) - (logG[i] as number);
          if (score > bestScore) {
            best = i;
            bestScore = score;
          }
        });
        const point = candidates[best] as number[];
        names.forEach((name, i) => {
          const d = dists[i] as Distribution;
          chosen[name] = d.type === 'categorical' ? (d.choices[point[i] as number] ?? null) : (point[i] as number);
        });
      }
      // The space's key order, whatever order the groups filled them in.
      const params: Params = {};
      for (const name of Object.keys(space)) params[name] = chosen[name] ?? null;
      return params;
    },
  };
}
