import { describe, expect, test } from 'vitest';
import { createRng, type Distribution, trialWeights } from '../../src/hpo/index.ts';
import {
  buildParzenEstimator,
  logPdfMixture,
  logPdfParzen,
  sampleParzen,
} from '../../src/hpo/samplers/parzen-estimator.ts';

const options = { priorWeight: 1, considerEndpoints: false };
const fit = (dists: Distribution[], points: number[][]) =>
  buildParzenEstimator(dists, points, trialWeights(points.length), options);
const column = (values: number[]) => values.map((v) => [v]);
const sum = (values: Float64Array) => values.reduce((a, v) => a + Math.exp(v), 0);

describe('parzen estimator', () => {
  const int: Distribution = { type: 'int', low: 1, high: 40, log: false, step: 1 };
  const logInt: Distribution = { type: 'int', low: 1, high: 64, log: true, step: 1 };
  const stepped: Distribution = { type: 'float', low: 0, high: 1, log: false, step: 0.1 };
  const categorical: Distribution = { type: 'categorical', choices: ['a', 'b', 'c', 'd'] };
  const observed = Array.from({ length: 60 }, (_, i) => (i * 7) % 13);

  // Within 1e-6: narrow cells use the midpoint rule (see logIntervalMass).
  test('discrete densities are probability masses: they sum to 1 over the values', () => {
    const all = (d: Distribution & { low: number; high: number; step: number }) =>
      Array.from({ length: Math.round((d.high - d.low) / d.step) + 1 }, (_, k) => [d.low + k * d.step]);
    for (const d of [int, logInt] as const) {
      const estimator = fit([d], column(observed.map((v) => v + 1)));
      expect(sum(logPdfParzen(estimator, all(d)))).toBeCloseTo(1, 6);
    }
    const floats = fit([stepped], column([0.1, 0.2, 0.2, 0.9]));
    expect(sum(logPdfParzen(floats, all(stepped as never)))).toBeCloseTo(1, 6);
    const cats = fit([categorical], column([0, 0, 1, 3, 0]));
    expect(sum(logPdfParzen(cats, column([0, 1, 2, 3])))).toBeCloseTo(1, 12);
    // The mass follows the observations.
    const [a, , c] = logPdfParzen(cats, column([0, 1, 2]));
    expect(a as number).toBeGreaterThan(c as number);
  });

  test('a continuous density integrates to 1, in log space too', () => {
    const uniform: Distribution = { type: 'float', low: -3, high: 5, log: false };
    const estimator = fit([uniform], column([0.5, 0.6, 4.9, -2]));
    const grid = Array.from({ length: 8000 }, (_, i) => [-3 + (i + 0.5) * 0.001]);
    expect(sum(logPdfParzen(estimator, grid)) * 0.001).toBeCloseTo(1, 4);
    // Log scale: the density is over log(x), so integrate over log(x).
    const log: Distribution = { type: 'float', low: 1e-3, high: 1, log: true };
    const logFit = fit([log], column([0.01, 0.02, 0.5]));
    const span = Math.log(1e3);
    const logGrid = Array.from({ length: 8000 }, (_, i) => [1e-3 * Math.exp(((i + 0.5) * span) / 8000)]);
    expect((sum(logPdfParzen(logFit, logGrid)) * span) / 8000).toBeCloseTo(1, 4);
  });

  test('the one-parameter shortcut agrees with the full mixture', () => {
    for (const d of [int, logInt, categorical]) {
      const points = d.type === 'categorical' ? observed.map((v) => v % 4) : observed.map((v) => v + 1);
      const estimator = fit([d], column(points));
      const at = column(d.type === 'categorical' ? [0, 1, 2, 3] : [1, 2, 5, 13, 14, 40]);
      const fast = logPdfParzen(estimator, at);
      const full = logPdfMixture(estimator, at);
      for (const [i, v] of fast.entries()) expect(v).toBeCloseTo(full[i] as number, 10);
    }
  });

  test('samples stay on the grid and in bounds, and are deterministic for a seed', () => {
    const estimator = fit(
      [int, logInt, stepped, categorical],
      [
        [3, 8, 0.2, 1],
        [5, 16, 0.3, 1],
        [4, 2, 0.9, 0],
      ],
    );
    const a = sampleParzen(estimator, createRng(5), 200);
    expect(sampleParzen(estimator, createRng(5), 200)).toEqual(a);
    for (const [i, l, f, c] of a as [number, number, number, number][]) {
      expect(Number.isInteger(i) && i >= 1 && i <= 40).toBe(true);
      expect(Number.isInteger(l) && l >= 1 && l <= 64).toBe(true);
      expect(Math.round(f * 10) / 10).toBe(f);
      expect([0, 1, 2, 3]).toContain(c);
    }
  });

  test('with nothing observed, only the prior remains', () => {
    const estimator = fit([int], []);
    expect(estimator.weights).toEqual(Float64Array.from([1]));
    expect(
      sum(
        logPdfParzen(
          estimator,
          Array.from({ length: 40 }, (_, i) => [i + 1]),
        ),
      ),
    ).toBeCloseTo(1, 6);
  });
});
