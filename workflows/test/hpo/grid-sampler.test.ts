import { describe, expect, test } from 'vitest';
import {
  createSampler,
  gridPermutation,
  gridProblem,
  gridSize,
  type Params,
  type SearchSpace,
  type TrialView,
} from '../../src/hpo/index.ts';
import { completed } from './helpers.ts';

const space: SearchSpace = {
  lr: { type: 'float', low: 0.1, high: 0.3, log: false, step: 0.1 },
  layers: { type: 'int', low: 1, high: 5, log: false, step: 2 },
  optimizer: { type: 'categorical', choices: ['adam', 'sgd'] },
};

function exhaust(seed: number, history: TrialView[] = []): Params[] {
  const sampler = createSampler({ type: 'grid' });
  const trials = [...history];
  const suggested: Params[] = [];
  for (;;) {
    const params = sampler.suggest({ space, direction: 'minimize', seed, trialNumber: trials.length, trials });
    if (params === null) return suggested;
    suggested.push(params);
    trials.push(completed(trials.length, params, 0));
    if (suggested.length > 100) throw new Error('grid never ran out');
  }
}
const key = (p: Params) => JSON.stringify(p);

describe('grid sampler', () => {
  test('gridSize counts the points; gridProblem names a float without a step', () => {
    expect(gridSize(space)).toBe(3 * 3 * 2);
    const withFloat: SearchSpace = { ...space, momentum: { type: 'float', low: 0.8, high: 0.99, log: false } };
    expect(gridSize(withFloat)).toBeNull();
    expect(gridProblem(withFloat)).toMatch(/^momentum: grid search needs a step/);
    expect(gridProblem(space)).toBeNull();
    const constant: SearchSpace = { c: { type: 'float', low: 1, high: 1, log: false } };
    expect(gridSize(constant)).toBe(1);
  });

  test('visits every point exactly once, then returns null', () => {
    const points = exhaust(3);
    expect(points).toHaveLength(18);
    expect(new Set(points.map(key)).size).toBe(18);
    expect(new Set(points.map((p) => p.lr))).toEqual(new Set([0.1, 0.2, 0.3]));
    expect(new Set(points.map((p) => p.layers))).toEqual(new Set([1, 3, 5]));
  });

  test('the order is shuffled by the seed and fixed for a seed', () => {
    expect(exhaust(3).map(key)).toEqual(exhaust(3).map(key));
    expect(exhaust(3).map(key)).not.toEqual(exhaust(4).map(key));
  });

  test('skips points that existing trials (any state) already use, so a retry never repeats one', () => {
    const first = exhaust(5);
    const history: TrialView[] = [
      { number: 0, params: first[0] as Params, state: 'failed', value: null, intermediate: [] },
      { number: 1, params: first[4] as Params, state: 'running', value: null, intermediate: [] },
      { number: 2, params: { lr: 0.7, layers: 2, optimizer: 'x' }, state: 'completed', value: 1, intermediate: [] },
    ];
    const rest = exhaust(5, history);
    expect(rest).toHaveLength(16);
    expect(rest.map(key)).not.toContain(key(first[0] as Params));
    expect(rest.map(key)).not.toContain(key(first[4] as Params));
    expect(new Set([...rest, first[0], first[4]].map((p) => key(p as Params))).size).toBe(18);
  });

  test('the permutation is a bijection for awkward sizes', () => {
    for (const size of [1, 2, 3, 17, 1000, 4097]) {
      const permutation = gridPermutation(9, size);
      const seen = new Set(Array.from({ length: size }, (_, i) => permutation(i)));
      expect(seen.size).toBe(size);
      expect(Math.max(...seen)).toBe(size - 1);
    }
  });

  test('a huge grid costs nothing up front', () => {
    const big: SearchSpace = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`p${i}`, { type: 'int', low: 0, high: 99, log: false, step: 1 }]),
    );
    expect(gridSize(big)).toBe(1e12);
    const params = createSampler({ type: 'grid' }).suggest({
      space: big,
      direction: 'minimize',
      seed: 1,
      trialNumber: 0,
      trials: [],
    });
    expect(Object.keys(params ?? {})).toHaveLength(6);
  });
});
