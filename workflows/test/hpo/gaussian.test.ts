import { describe, expect, test } from 'vitest';
import {
  logFarTailMass,
  logGaussMass,
  logNdtr,
  ndtr,
  ndtri,
  truncatedNormalQuantile,
} from '../../src/hpo/samplers/gaussian.ts';

// Reference values of the standard normal CDF (to 16 digits).
const reference: [number, number][] = [
  [-20, 2.7536241186062337e-89],
  [-10, 7.619853024160527e-24],
  [-5, 2.866515718791939e-7],
  [-3, 0.0013498980316300946],
  [-1, 0.15865525393145707],
  [0, 0.5],
  [0.5, 0.6914624612740131],
  [2, 0.9772498680518208],
];

describe('gaussian helpers', () => {
  test('ndtr and logNdtr match reference values to ~1e-13, far tails included', () => {
    for (const [z, p] of reference) {
      expect(Math.abs(ndtr(z) / p - 1)).toBeLessThan(1e-13);
      expect(Math.abs(logNdtr(z) - Math.log(p))).toBeLessThan(1e-12);
    }
    // Phi(-40) underflows a double (~3.7e-350); its log does not.
    expect(logNdtr(-40)).toBeCloseTo(-804.608442013754, 8);
  });

  test('ndtri inverts ndtr', () => {
    for (const z of [-30, -8, -3, -1.5, -0.2, 0, 0.7, 2.5, 5]) expect(ndtri(ndtr(z))).toBeCloseTo(z, 6);
    expect(ndtri(0.975)).toBeCloseTo(1.959963984540054, 12);
  });

  test('logGaussMass is accurate in the centre and in both tails', () => {
    expect(logGaussMass(-1, 1)).toBeCloseTo(Math.log(0.6826894921370859), 13);
    expect(logGaussMass(30, 30.01)).toBeCloseTo(logGaussMass(-30.01, -30), 10);
    expect(Number.isFinite(logGaussMass(35, 36))).toBe(true);
    // The far-tail shortcut agrees with the exact form.
    for (const [a, w] of [
      [10, 0.01],
      [12, 1],
      [40, 3],
    ] as const) {
      expect(Math.abs(logFarTailMass(a, a + w) - logGaussMass(a, a + w))).toBeLessThan(2e-6);
      expect(Math.abs(logFarTailMass(-a - w, -a) - logGaussMass(a, a + w))).toBeLessThan(2e-6);
    }
  });

  test('truncatedNormalQuantile stays in bounds and is monotone', () => {
    for (const [a, b] of [
      [-1, 2],
      [0, 100],
      [-100, 0],
      [3, 9],
      [-9, -3],
    ] as const) {
      let previous = Number.NEGATIVE_INFINITY;
      for (let u = 0; u < 1; u += 0.05) {
        const z = truncatedNormalQuantile(a, b, u);
        expect(z).toBeGreaterThanOrEqual(a);
        expect(z).toBeLessThanOrEqual(b);
        expect(z).toBeGreaterThanOrEqual(previous);
        previous = z;
      }
    }
    expect(truncatedNormalQuantile(-5, 5, 0.5)).toBeCloseTo(0, 10);
  });
});
