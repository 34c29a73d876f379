// Pruners: whether a running trial should stop early. One spec field (`pruner`), one factory.
import { z } from 'zod';
import { ashaPrunerSchema, createAshaPruner } from './asha.ts';
import { createMedianPruner, medianPrunerSchema } from './median.ts';
import type { Pruner } from './pruner.ts';

export { type AshaPrunerConfig, ashaPrunerSchema, createAshaPruner, promotable, valueAtResource } from './asha.ts';
export { createMedianPruner, type MedianPrunerConfig, medianPrunerSchema, percentile } from './median.ts';
export type { PruneContext, Pruner } from './pruner.ts';

export const prunerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  medianPrunerSchema,
  ashaPrunerSchema,
]);
export type PrunerConfig = z.output<typeof prunerSchema>;

const neverPrune: Pruner = { shouldPrune: () => false };

export function createPruner(config: PrunerConfig): Pruner {
  switch (config.type) {
    case 'none':
      return neverPrune;
    case 'median':
      return createMedianPruner(config);
    case 'asha':
      return createAshaPruner(config);
  }
}
