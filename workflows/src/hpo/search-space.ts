// The search space of an HPO study: what each parameter may take. Shared by the study spec, the
// samplers and every client, so a bad space is rejected once, with the parameter named and the fix.
import { z } from 'zod';

export type ParamValue = string | number | boolean | null;
export type Params = Record<string, ParamValue>;
export type Direction = 'minimize' | 'maximize';
export type Distribution =
  | { type: 'float'; low: number; high: number; log: boolean; step?: number }
  | { type: 'int'; low: number; high: number; log: boolean; step: number }
  | { type: 'categorical'; choices: ParamValue[] };
export type SearchSpace = Record<string, Distribution>;

/** How two choices are told apart: 1 and "1" differ, as JSON does. */
export const choiceKey = (value: ParamValue): string => JSON.stringify(value);

// (high - low) / step is computed in floating point: 0.3 / 0.1 is 2.9999999999999996.
const isWholeMultiple = (span: number, step: number) => {
  const k = span / step;
  return Math.abs(k - Math.round(k)) <= 1e-9 * Math.max(1, k);
};

const floatSchema = z
  .strictObject({
    type: z.literal('float'),
    low: z.number(),
    high: z.number(),
    /** Sample uniformly in log space (for learning rates, weight decay, ...). */
    log: z.boolean().default(false),
    /** Quantise to low + k * step (e.g. dropout in steps of 0.05). */
    step: z.number().positive().optional(),
  })
  .superRefine((d, ctx) => {
    if (d.low > d.high) {
      ctx.addIssue({ code: 'custom', path: ['high'], message: `high (${d.high}) is below low (${d.low}); swap them` });
      return;
    }
    if (d.log && d.low <= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['low'],
        message: `a log-scale range needs low > 0 (got ${d.low}); use a small positive low such as 1e-6, or log: false`,
      });
    }
    if (d.log && d.step !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message: 'step cannot be combined with log: true; remove step or set log: false',
      });
    } else if (d.step !== undefined && !isWholeMultiple(d.high - d.low, d.step)) {
      const fixed = d.low + Math.floor((d.high - d.low) / d.step) * d.step;
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message: `step ${d.step} does not divide high - low (${d.high - d.low}); set high to ${Number(fixed.toPrecision(14))} or pick a step that divides the range`,
      });
    }
  });

const intSchema = z
  .strictObject({
    type: z.literal('int'),
    low: z.int(),
    high: z.int(),
    log: z.boolean().default(false),
    step: z.int().min(1, 'step must be a positive integer').default(1),
  })
  .superRefine((d, ctx) => {
    if (d.low > d.high) {
      ctx.addIssue({ code: 'custom', path: ['high'], message: `high (${d.high}) is below low (${d.low}); swap them` });
      return;
    }
    if (d.log && d.low <= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['low'],
        message: `a log-scale range needs low >= 1 (got ${d.low}); raise low or set log: false`,
      });
    }
    if (d.log && d.step !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message:
          'step cannot be combined with log: true (an int on a log scale has step 1); remove step or set log: false',
      });
    } else if ((d.high - d.low) % d.step !== 0) {
      const fixed = d.low + Math.floor((d.high - d.low) / d.step) * d.step;
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message: `step ${d.step} does not divide high - low (${d.high - d.low}); set high to ${fixed} or pick a step that divides the range`,
      });
    }
  });

const categoricalSchema = z
  .strictObject({
    type: z.literal('categorical'),
    choices: z
      .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
      .min(1, 'give at least one choice, e.g. ["adam", "sgd"]'),
  })
  .superRefine((d, ctx) => {
    const seen = new Map<string, number>();
    d.choices.forEach((choice, i) => {
      const first = seen.get(choiceKey(choice));
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['choices', i],
          message: `${choiceKey(choice)} is listed twice (also at index ${first}); remove the duplicate`,
        });
      } else seen.set(choiceKey(choice), i);
    });
  });

export const distributionSchema = z.discriminatedUnion('type', [floatSchema, intSchema, categoricalSchema]);

export const searchSpaceSchema = z
  .record(z.string().min(1, 'a parameter name cannot be empty'), distributionSchema)
  .refine((space) => Object.keys(space).length > 0, {
    message:
      'the search space is empty; add a parameter, e.g. { "lr": { "type": "float", "low": 1e-5, "high": 1e-1, "log": true } }',
  });

/** A parameter that can take one value only (low == high, or one choice): samplers just set it. */
export function singleValue(d: Distribution): ParamValue | undefined {
  if (d.type === 'categorical') return d.choices.length === 1 ? d.choices[0] : undefined;
  return d.low === d.high ? d.low : undefined;
}

/** Snaps a number onto a distribution's grid (int, or float with step) and into its bounds. */
export function snapToStep(d: Extract<Distribution, { type: 'float' | 'int' }>, x: number): number {
  if (d.step === undefined) return Math.min(d.high, Math.max(d.low, x));
  const k = Math.round((x - d.low) / d.step);
  const snapped = Math.min(d.high, Math.max(d.low, d.low + k * d.step));
  // low + k * step carries floating-point noise (0.1 + 2 * 0.1 is 0.30000000000000004).
  return d.type === 'int' ? Math.round(snapped) : Number(snapped.toPrecision(14));
}

/** Whether `value` is one the distribution can produce (a trial's params may predate a change). */
export function contains(d: Distribution, value: ParamValue | undefined): boolean {
  // includes() tells these primitives apart as choiceKey does (1 and "1" differ), without stringifying.
  if (d.type === 'categorical') return value !== undefined && d.choices.includes(value);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < d.low || value > d.high) return false;
  if (d.type === 'int' && !Number.isInteger(value)) return false;
  return d.step === undefined || isWholeMultiple(value - d.low, d.step);
}
