import { describe, expect, test } from 'vitest';
import {
  createSampler,
  optunaGamma,
  type Params,
  type SearchSpace,
  samplerSchema,
  splitTrials,
  type TrialView,
  trialWeights,
} from '../../src/hpo/index.ts';
import { branin, braninSpace, completed, mean, medianOf, runStudy } from './helpers.ts';

const line: SearchSpace = { x: { type: 'float', low: -10, high: 10, log: false } };
const quadratic = (p: Params) => ((p.x as number) - 2) ** 2;
/** Mean distance to the optimum x = 2 over trials 30..59. */
const lateDistance = (trials: TrialView[]) =>
  mean(trials.slice(30, 60).map((t) => Math.abs((t.params.x as number) - 2)));

describe('tpe sampler config', () => {
  test("defaults follow Optuna's TPESampler", () => {
    expect(samplerSchema.parse({ type: 'tpe' })).toEqual({
      type: 'tpe',
      nStartupTrials: 10,
      nEiCandidates: 24,
      priorWeight: 1,
      considerEndpoints: false,
      gamma: 'optuna',
      multivariate: true,
      constantLiar: true,
    });
    expect(samplerSchema.safeParse({ type: 'tpe', gamma: 1.5 }).success).toBe(false);
    expect(samplerSchema.safeParse({ type: 'tpe', gamma: 0.25 }).success).toBe(true);
    expect(samplerSchema.safeParse({ type: 'tpe', nStartupTrials: -1 }).success).toBe(false);
    expect(samplerSchema.safeParse({ type: 'tpe', startup: 3 }).success).toBe(false);
    expect(samplerSchema.safeParse({ type: 'bayes' }).success).toBe(false);
  });

  test("Optuna's gamma and weights", () => {
    expect([1, 10, 11, 100, 249, 251, 1000].map(optunaGamma)).toEqual([1, 1, 2, 10, 25, 25, 25]);
    expect(trialWeights(3)).toEqual([1, 1, 1]);
    const w = trialWeights(30); // 5 ramp from 1/30 to 1, then 25 ones
    expect(w).toHaveLength(30);
    expect(w[0]).toBeCloseTo(1 / 30, 12);
    expect(w[4]).toBeCloseTo(1, 12);
    expect(w.slice(5)).toEqual(new Array(25).fill(1));
  });
});

describe('tpe sampler', () => {
  test('same seed and history, same params; another seed, other params', () => {
    const a = runStudy({ type: 'tpe' }, braninSpace, branin, { trials: 30, seed: 1 });
    const b = runStudy({ type: 'tpe' }, braninSpace, branin, { trials: 30, seed: 1 });
    const c = runStudy({ type: 'tpe' }, braninSpace, branin, { trials: 30, seed: 2 });
    expect(b.map((t) => t.params)).toEqual(a.map((t) => t.params));
    expect(c.map((t) => t.params)).not.toEqual(a.map((t) => t.params));
    // Stateless: a fresh sampler given the same history suggests the same params.
    const again = createSampler(samplerSchema.parse({ type: 'tpe' })).suggest({
      space: braninSpace,
      direction: 'minimize',
      seed: 1,
      trialNumber: 25,
      trials: a.slice(0, 25),
    });
    expect(again).toEqual(a[25]?.params);
  });

  test('the startup trials are the random sampler’s', () => {
    const tpe = runStudy({ type: 'tpe' }, braninSpace, branin, { trials: 10, seed: 4 });
    const random = runStudy({ type: 'random' }, braninSpace, branin, { trials: 10, seed: 4 });
    expect(tpe.map((t) => t.params)).toEqual(random.map((t) => t.params));
  });

  test('after startup, concentrates on the good region of a 1-D quadratic', () => {
    for (const seed of [0, 1, 2]) {
      for (const multivariate of [true, false]) {
        const tpe = lateDistance(runStudy({ type: 'tpe', multivariate }, line, quadratic, { trials: 60, seed }));
        const random = lateDistance(runStudy({ type: 'random' }, line, quadratic, { trials: 60, seed }));
        expect(tpe).toBeLessThan(0.5 * random); // random: ~5.2; TPE (and Optuna's): ~2
      }
    }
  });

  test('respects direction: maximizing -f finds the same region', () => {
    const trials = runStudy({ type: 'tpe' }, line, (p) => -quadratic(p), {
      trials: 60,
      seed: 1,
      direction: 'maximize',
    });
    expect(lateDistance(trials)).toBeLessThan(2.6);
    // Minimizing -f instead runs to the ends.
    const wrong = runStudy({ type: 'tpe' }, line, (p) => -quadratic(p), { trials: 60, seed: 1 });
    expect(lateDistance(wrong)).toBeGreaterThan(8);
  });

  test('beats random search on Branin within 60 trials', () => {
    const best = (config: unknown, seed: number) =>
      Math.min(...runStudy(config, braninSpace, branin, { trials: 60, seed }).map((t) => t.value as number));
    const seeds = Array.from({ length: 10 }, (_, i) => i);
    const tpe = seeds.map((seed) => best({ type: 'tpe' }, seed));
    const random = seeds.map((seed) => best({ type: 'random' }, seed));
    expect(medianOf(tpe)).toBeLessThan(0.8 * medianOf(random));
    expect(seeds.filter((i) => (tpe[i] as number) < (random[i] as number)).length).toBeGreaterThanOrEqual(7);
  });

  test('learns categorical, log and int parameters', () => {
    const space: SearchSpace = {
      opt: { type: 'categorical', choices: ['sgd', 'adam', 'rmsprop', 'adagrad'] },
      lr: { type: 'float', low: 1e-6, high: 1, log: true },
      layers: { type: 'int', low: 1, high: 16, log: false, step: 1 },
      width: { type: 'int', low: 8, high: 1024, log: true, step: 1 },
    };
    const loss = (p: Params) =>
      (p.opt === 'adam' ? 0 : 1) +
      (Math.log10(p.lr as number) + 3) ** 2 / 4 +
      ((p.layers as number) - 4) ** 2 / 16 +
      (Math.log2(p.width as number) - 7) ** 2 / 4;
    for (const seed of [0, 1]) {
      const trials = runStudy({ type: 'tpe' }, space, loss, { trials: 80, seed });
      const late = trials.slice(40);
      expect(late.filter((t) => t.params.opt === 'adam').length).toBeGreaterThan(20); // random: ~10
      expect(late.every((t) => Number.isInteger(t.params.layers) && Number.isInteger(t.params.width))).toBe(true);
      expect(late.every((t) => (t.params.lr as number) >= 1e-6 && (t.params.lr as number) <= 1)).toBe(true);
      const random = runStudy({ type: 'random' }, space, loss, { trials: 80, seed });
      expect(medianOf(late.map((t) => t.value as number))).toBeLessThan(
        0.5 * medianOf(random.slice(40).map((t) => t.value as number)),
      );
    }
  });

  test('ignores failed trials; counts running ones as bad (constant liar) unless told not to', () => {
    const history = runStudy({ type: 'tpe' }, line, quadratic, { trials: 20, seed: 3 });
    const ctx = { space: line, direction: 'minimize' as const, seed: 3, trialNumber: 40 };
    const tpe = createSampler(samplerSchema.parse({ type: 'tpe' }));
    const base = tpe.suggest({ ...ctx, trials: history });
    const failed: TrialView = { number: 30, params: { x: 2 }, state: 'failed', value: null, intermediate: [] };
    expect(tpe.suggest({ ...ctx, trials: [...history, failed] })).toEqual(base);
    // A running trial at the spot TPE would pick pushes the next suggestion elsewhere.
    const running: TrialView = { number: 31, params: base as Params, state: 'running', value: null, intermediate: [] };
    const liar = tpe.suggest({ ...ctx, trials: [...history, running] });
    expect(liar).not.toEqual(base);
    const honest = createSampler(samplerSchema.parse({ type: 'tpe', constantLiar: false }));
    expect(honest.suggest({ ...ctx, trials: [...history, running] })).toEqual(base);
  });

  test('a trial whose params no longer fit the space is left out of the model', () => {
    const history = runStudy({ type: 'tpe' }, line, quadratic, { trials: 20, seed: 3 });
    const ctx = { space: line, direction: 'minimize' as const, seed: 3, trialNumber: 40 };
    const tpe = createSampler(samplerSchema.parse({ type: 'tpe' }));
    const stray = completed(35, { x: 50 }, -1);
    expect(tpe.suggest({ ...ctx, trials: [...history, stray] })).toEqual(tpe.suggest({ ...ctx, trials: history }));
  });
});

describe('splitTrials', () => {
  const pruned = (number: number, intermediate: [number, number][]): TrialView => ({
    number,
    params: {},
    state: 'pruned',
    value: null,
    intermediate,
  });

  test('the best completed first, then pruned ones that got furthest, then by their last value', () => {
    const trials = [
      completed(0, {}, 5),
      completed(1, {}, 1),
      completed(2, {}, 3),
      pruned(3, [
        [1, 9],
        [4, 2.5],
      ]),
      pruned(4, [[4, 0.5]]),
      pruned(5, [[2, 0.1]]),
      pruned(6, []),
    ];
    const numbers = (ts: TrialView[]) => ts.map((t) => t.number);
    expect(numbers(splitTrials(trials, [], 2, 'minimize').below)).toEqual([1, 2]);
    expect(numbers(splitTrials(trials, [], 4, 'minimize').below)).toEqual([0, 1, 2, 4]);
    expect(numbers(splitTrials(trials, [], 5, 'minimize').below)).toEqual([0, 1, 2, 3, 4]);
    expect(numbers(splitTrials(trials, [], 6, 'minimize').below)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(numbers(splitTrials(trials, [], 1, 'maximize').below)).toEqual([0]);
    expect(numbers(splitTrials(trials, [], 4, 'maximize').below)).toEqual([0, 1, 2, 3]);
    const running: TrialView = { number: 7, params: {}, state: 'running', value: null, intermediate: [] };
    expect(numbers(splitTrials(trials, [running], 2, 'minimize').above)).toEqual([0, 3, 4, 5, 6, 7]);
  });
});
