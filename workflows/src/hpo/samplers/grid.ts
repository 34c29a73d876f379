// Grid search: every point of the cartesian product of the parameters' values, in an order
// shuffled by the seed (so a study stopped early has still spread over the space). The order is a
// keyed bijection on the point indices (a Feistel network with cycle walking), never materialised:
// the n-th point costs O(1) however large the grid. A suggestion is the first point in that order
// that no trial has used yet, so retries and continue-as-new never repeat a point, and concurrent
// trials (running ones are in `trials`) never share one.
import { createRng } from '../rng.ts';
import {
  choiceKey,
  type Distribution,
  type Params,
  type ParamValue,
  type SearchSpace,
  snapToStep,
} from '../search-space.ts';
import type { Sampler } from './sampler.ts';

/** Grids up to 2^48 points: the permutation splits an index into two 24-bit halves. */
const MAX_GRID_SIZE = 2 ** 48;

/** The values a grid visits for `d`, or null for a continuous float (it needs a step). */
export function gridValues(d: Distribution): ParamValue[] | null {
  if (d.type === 'categorical') return [...d.choices];
  if (d.low === d.high) return [d.low];
  if (d.step === undefined) return null;
  const count = Math.round((d.high - d.low) / d.step) + 1;
  return Array.from({ length: count }, (_, k) => snapToStep(d, d.low + k * (d.step as number)));
}

/** The number of grid points, or null if some float has no step. */
export function gridSize(space: SearchSpace): number | null {
  let size = 1;
  for (const d of Object.values(space)) {
    const values = gridValues(d);
    if (values === null) return null;
    size *= values.length;
  }
  return size;
}

/** Why `space` cannot be searched by grid (naming the parameter and the fix), or null if it can. */
export function gridProblem(space: SearchSpace): string | null {
  for (const [name, d] of Object.entries(space)) {
    if (gridValues(d) === null && d.type === 'float') {
      const example = Number(((d.high - d.low) / 10).toPrecision(1));
      return `${name}: grid search needs a step for every float; add one (e.g. "step": ${example}), or use the random or tpe sampler`;
    }
  }
  const size = gridSize(space) as number;
  if (size > MAX_GRID_SIZE) {
    return `the grid has ${size.toExponential(2)} points, more than ${MAX_GRID_SIZE}; use fewer values (larger steps) or the random or tpe sampler`;
  }
  return null;
}

const HALF_BITS_MAX = 24;

/** A seed-keyed permutation of [0, size). */
export function gridPermutation(seed: number, size: number): (index: number) => number {
  let halfBits = 1;
  while (2 ** (2 * halfBits) < size) halfBits++;
  if (halfBits > HALF_BITS_MAX) throw new Error(`grid of ${size} points is too large`);
  const half = 2 ** halfBits;
  const mask = half - 1;
  const rng = createRng(seed, 0x67726964); // 'grid'
  const keys = Array.from({ length: 4 }, () => rng.int(0, 0xffffffff));
  // The round function: any keyed mixing of 24 bits works; this one is murmur3's finaliser.
  const round = (r: number, key: number) => {
    let x = (r ^ key) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    x ^= x >>> 16;
    return (x >>> 0) & mask;
  };
  const feistel = (x: number) => {
    let left = Math.floor(x / half);
    let right = x % half;
    for (const key of keys) {
      const next = left ^ round(right, key);
      left = right;
      right = next;
    }
    return left * half + right;
  };
  return (index) => {
    // Cycle walking: the network permutes [0, half^2); stepping until the result is below size
    // keeps it a permutation of [0, size), in under 4 steps on average (half^2 < 4 * size).
    let y = feistel(index);
    while (y >= size) y = feistel(y);
    return y;
  };
}

export function createGridSampler(): Sampler {
  return {
    suggest(ctx) {
      const names = Object.keys(ctx.space);
      const axes = names.map((name) => {
        const values = gridValues(ctx.space[name] as Distribution);
        if (values === null) throw new Error(gridProblem(ctx.space) ?? `${name} has no grid`);
        return values;
      });
      const size = axes.reduce((n, values) => n * values.length, 1);
      const keyOf = (values: readonly (ParamValue | undefined)[]) =>
        values.map((v) => (v === undefined ? '?' : choiceKey(v))).join(',');
      const used = new Set(ctx.trials.map((t) => keyOf(names.map((name) => t.params[name]))));
      const permutation = gridPermutation(ctx.seed, size);
      for (let k = 0; k < size; k++) {
        // Mixed radix, the last parameter fastest.
        let index = permutation(k);
        const values: ParamValue[] = new Array(names.length);
        for (let i = names.length - 1; i >= 0; i--) {
          const axis = axes[i] as ParamValue[];
          values[i] = axis[index % axis.length] as ParamValue;
          index = Math.floor(index / axis.length);
        }
        if (used.has(keyOf(values))) continue;
        const params: Params = {};
        names.forEach((name, i) => {
          params[name] = values[i] as ParamValue;
        });
        return params;
      }
      return null;
    },
  };
}
