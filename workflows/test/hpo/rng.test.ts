import { describe, expect, test } from 'vitest';
import { createRng } from '../../src/hpo/index.ts';
import { mean } from './helpers.ts';

const draws = (seed: number, ...streams: number[]) => {
  const rng = createRng(seed, ...streams);
  return Array.from({ length: 8 }, () => rng.next());
};

describe('createRng', () => {
  test('same seed and streams give the same sequence; any difference changes it', () => {
    expect(draws(42)).toEqual(draws(42));
    expect(draws(42, 3)).toEqual(draws(42, 3));
    const variants = [
      draws(42),
      draws(43),
      draws(42, 3),
      draws(42, 4),
      draws(42, 3, 1),
      draws(2 ** 40),
      draws(2 ** 40 + 1),
      draws(-1),
    ];
    const distinct = new Set(variants.map((v) => v.join(',')));
    expect(distinct.size).toBe(variants.length);
  });

  test('next() is uniform on [0, 1)', () => {
    const rng = createRng(1);
    const values = Array.from({ length: 20_000 }, () => rng.next());
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(mean(values)).toBeCloseTo(0.5, 1);
    // Each tenth holds about a tenth of the draws.
    const deciles = new Array(10).fill(0);
    for (const v of values) deciles[Math.floor(v * 10)]++;
    for (const count of deciles) expect(Math.abs(count - 2000)).toBeLessThan(200);
  });

  test('int(lo, hi) covers both ends evenly', () => {
    const rng = createRng(2);
    const counts = new Map<number, number>();
    for (let i = 0; i < 6000; i++) {
      const v = rng.int(-1, 4);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-1, 0, 1, 2, 3, 4]);
    for (const count of counts.values()) expect(Math.abs(count - 1000)).toBeLessThan(150);
    expect(() => rng.int(3, 1)).toThrow();
  });

  test('normal() has mean 0 and standard deviation 1', () => {
    const rng = createRng(3);
    const values = Array.from({ length: 20_000 }, () => rng.normal());
    const m = mean(values);
    const sd = Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
  });
});
