// Samplers: which params the next trial gets. One spec field (`sampler`), one factory.
import { z } from 'zod';
import { createGridSampler } from './grid.ts';
import { createRandomSampler } from './random.ts';
import type { Sampler } from './sampler.ts';
import { createTpeSampler, tpeSamplerSchema } from './tpe.ts';

export { createGridSampler, gridPermutation, gridProblem, gridSize, gridValues } from './grid.ts';
export { createRandomSampler, randomParams, randomValue } from './random.ts';
export type { Sampler, SuggestContext } from './sampler.ts';
export {
  createTpeSampler,
  optunaGamma,
  splitTrials,
  type TpeSamplerConfig,
  tpeSamplerSchema,
  trialWeights,
} from './tpe.ts';

export const samplerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('random') }),
  z.strictObject({ type: z.literal('grid') }),
  tpeSamplerSchema,
]);
export type SamplerConfig = z.output<typeof samplerSchema>;

export function createSampler(config: SamplerConfig): Sampler {
  switch (config.type) {
    case 'random':
      return createRandomSampler();
    case 'grid':
      return createGridSampler();
    case 'tpe':
      return createTpeSampler(config);
  }
}
