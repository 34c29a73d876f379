import { describe, expect, test } from 'vitest';
import { createSampler, type SearchSpace, type TrialView } from '../../src/hpo/index.ts';
import { mean, medianOf, runStudy } from './helpers.ts';

const space: SearchSpace = {
  uniform: { type: 'float', low: -2, high: 6, log: false },
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  dropout: { type: 'float', low: 0, high: 0.5, log: false, step: 0.1 },
  layers: { type: 'int', low: 2, high: 10, log: false, step: 2 },
  width: { type: 'int', low: 8, high: 512, log: true, step: 1 },
  optimizer: { type: 'categorical', choices: ['adam', 'sgd', null] },
  fixed: { type: 'float', low: 3, high: 3, log: false },
};

describe('random sampler', () => {
  const trials = runStudy({ type: 'random' }, space, () => 0, { trials: 3000, seed: 11 });
  const column = (name: string) => trials.map((t) => t.params[name]);

  test('same seed, same params; another seed, other params', () => {
    const again = runStudy({ type: 'random' }, space, () => 0, { trials: 20, seed: 11 });
    expect(again.map((t) => t.params)).toEqual(trials.slice(0, 20).map((t) => t.params));
    const other = runStudy({ type: 'random' }, space, () => 0, { trials: 20, seed: 12 });
    expect(other.map((t) => t.params)).not.toEqual(again.map((t) => t.params));
  });

  test('params come in the space order and stay in bounds', () => {
    expect(Object.keys(trials[0]?.params ?? {})).toEqual(Object.keys(space));
    const uniform = column('uniform') as number[];
    expect(Math.min(...uniform)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...uniform)).toBeLessThanOrEqual(6);
    expect(mean(uniform)).toBeCloseTo(2, 0);
    expect(new Set(column('fixed'))).toEqual(new Set([3]));
  });

  test('log-uniform: the median is near the geometric mean, each decade equally likely', () => {
    const lr = column('lr') as number[];
    expect(Math.min(...lr)).toBeGreaterThanOrEqual(1e-5);
    expect(Math.max(...lr)).toBeLessThanOrEqual(1e-1);
    expect(Math.log10(medianOf(lr))).toBeCloseTo(-3, 0); // geometric mean of 1e-5 and 1e-1
    const perDecade = [-5, -4, -3, -2].map((d) => lr.filter((v) => v >= 10 ** d && v < 10 ** (d + 1)).length);
    for (const count of perDecade) expect(Math.abs(count - 750)).toBeLessThan(110);
  });

  test('stepped floats and ints take every grid value, evenly, and nothing else', () => {
    const dropout = column('dropout') as number[];
    expect([...new Set(dropout)].sort()).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5]);
    const layers = column('layers') as number[];
    expect([...new Set(layers)].sort((a, b) => a - b)).toEqual([2, 4, 6, 8, 10]);
    for (const v of [2, 4, 6, 8, 10]) expect(Math.abs(layers.filter((x) => x === v).length - 600)).toBeLessThan(90);
    const width = column('width') as number[];
    expect(width.every((w) => Number.isInteger(w) && w >= 8 && w <= 512)).toBe(true);
    expect(Math.log2(medianOf(width))).toBeCloseTo(6, 0); // log-uniform between 2^3 and 2^9
  });

  test('categorical choices are uniform, null included', () => {
    const optimizer = column('optimizer');
    for (const choice of ['adam', 'sgd', null]) {
      expect(Math.abs(optimizer.filter((c) => c === choice).length - 1000)).toBeLessThan(120);
    }
  });

  test('depends on the trial number only, not on history (stateless)', () => {
    const sampler = createSampler({ type: 'random' });
    const history: TrialView[] = [{ number: 0, params: {}, state: 'failed', value: null, intermediate: [] }];
    const ctx = { space, direction: 'minimize' as const, seed: 11, trialNumber: 5 };
    expect(sampler.suggest({ ...ctx, trials: history })).toEqual(trials[5]?.params);
  });
});
