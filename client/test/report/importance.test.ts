import { describe, expect, test } from 'vitest';
import { type ImportanceTrial, parameterImportance } from '../../src/report/importance.ts';

/** A small seeded generator (mulberry32), so the samples are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sample(n: number, objective: (p: { lr: number; noise: number; opt: string }) => number, seed = 1) {
  const random = rng(seed);
  return Array.from({ length: n }, (): ImportanceTrial => {
    const params = {
      lr: 10 ** (-4 + 3 * random()),
      noise: random(),
      opt: ['adam', 'sgd', 'rmsprop'][Math.floor(random() * 3)] as string,
    };
    return { params, value: objective(params) + 0.01 * random() };
  });
}

const byName = (result: ReturnType<typeof parameterImportance>) =>
  Object.fromEntries(result.map((r) => [r.param, r.importance]));

describe('parameter importance', () => {
  // Marginal estimates from 20 trials vary with the sample, so this looks at 20 samples: the
  // determining param is first in every one, and typically holds most of the importance.
  test.each([
    ['monotone', (lr: number) => Math.log10(lr)],
    ['U-shaped', (lr: number) => (Math.log10(lr) + 2.5) ** 2],
  ])('a numeric param that determines the objective (%s) gets most of it, noise little', (_, f) => {
    const runs = Array.from({ length: 20 }, (_, seed) => parameterImportance(sample(20, (p) => f(p.lr), seed + 1)));
    expect(runs.every((result) => result[0]?.param === 'lr')).toBe(true);
    const median = (param: string) => {
      const values = runs.map((result) => byName(result)[param] as number).sort((a, b) => a - b);
      return values[values.length / 2] as number;
    };
    expect(median('lr')).toBeGreaterThan(0.8);
    expect(median('noise')).toBeLessThan(0.1);
    expect(median('opt')).toBeLessThan(0.1);
  });

  test('a categorical param that determines the objective gets most of it', () => {
    const result = parameterImportance(sample(30, (p) => ({ adam: 0.1, sgd: 0.5, rmsprop: 0.3 })[p.opt] as number));
    expect(result[0]?.param).toBe('opt');
    expect(byName(result).opt).toBeGreaterThan(0.8);
  });

  test('shares are in [0, 1], sum to 1 and come most important first', () => {
    const result = parameterImportance(sample(40, (p) => 2 * p.noise + Math.log10(p.lr)));
    expect(result.map((r) => r.param)).toHaveLength(3);
    expect(result.reduce((a, r) => a + r.importance, 0)).toBeCloseTo(1, 9);
    for (const r of result) {
      expect(r.importance).toBeGreaterThanOrEqual(0);
      expect(r.explained).toBeLessThanOrEqual(1);
    }
    expect(result.map((r) => r.importance)).toEqual([...result.map((r) => r.importance)].sort((a, b) => b - a));
  });

  test('a log-scale param gets the same importance as its log (quantile bins depend only on order)', () => {
    const trials = sample(20, (p) => Math.log10(p.lr));
    const logged = trials.map((t) => ({ ...t, params: { ...t.params, lr: Math.log10(t.params.lr as number) } }));
    expect(parameterImportance(logged)).toEqual(parameterImportance(trials));
  });

  test('fewer than 4 trials, or a constant objective, give nothing', () => {
    expect(parameterImportance(sample(3, (p) => p.lr))).toEqual([]);
    expect(parameterImportance(sample(10, () => 0.5).map((t) => ({ ...t, value: 0.5 })))).toEqual([]);
    expect(parameterImportance([])).toEqual([]);
  });

  test('non-finite values are ignored; a param missing in some trials groups them apart', () => {
    const trials: ImportanceTrial[] = [
      { params: { a: 1 }, value: 1 },
      { params: { a: 1 }, value: 1.1 },
      { params: {}, value: 5 },
      { params: {}, value: 5.1 },
      { params: { a: 2 }, value: Number.NaN },
    ];
    const [a] = parameterImportance(trials);
    expect(a).toMatchObject({ param: 'a', importance: 1, groups: 2 });
    expect(a?.explained).toBeGreaterThan(0.99);
  });

  test('a param that never varies explains nothing', () => {
    const result = parameterImportance(
      sample(12, (p) => p.lr).map((t) => ({ ...t, params: { ...t.params, fixed: 3 } })),
    );
    expect(byName(result).fixed).toBe(0);
  });
});
