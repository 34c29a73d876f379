// Random search: each parameter drawn independently (uniform; log-uniform on log scales; uniform
// over the grid's values for ints and stepped floats). The baseline every other sampler must beat,
// and TPE's sampler for its startup trials.
import { createRng, type Rng } from '../rng.ts';
import { type Distribution, type Params, type ParamValue, type SearchSpace, snapToStep } from '../search-space.ts';
import type { Sampler } from './sampler.ts';

/** One draw from `d`. */
export function randomValue(d: Distribution, rng: Rng): ParamValue {
  const u = rng.next();
  if (d.type === 'categorical') return d.choices[Math.floor(u * d.choices.length)] as ParamValue;
  if (d.low === d.high) return d.low;
  if (d.log) {
    // Ints on a log scale: each integer owns [x - 1/2, x + 1/2] of the log-uniform range.
    const half = d.type === 'int' ? 0.5 : 0;
    const lo = Math.log(d.low - half);
    const hi = Math.log(d.high + half);
    return snapToStep(d, Math.exp(lo + u * (hi - lo)));
  }
  if (d.step === undefined) return d.low + u * (d.high - d.low);
  const count = Math.round((d.high - d.low) / d.step) + 1;
  return snapToStep(d, d.low + Math.floor(u * count) * d.step);
}

/** Every parameter of `space` drawn independently, in the space's key order. */
export function randomParams(space: SearchSpace, rng: Rng): Params {
  const params: Params = {};
  for (const [name, d] of Object.entries(space)) params[name] = randomValue(d, rng);
  return params;
}

export function createRandomSampler(): Sampler {
  return { suggest: (ctx) => randomParams(ctx.space, createRng(ctx.seed, ctx.trialNumber)) };
}
