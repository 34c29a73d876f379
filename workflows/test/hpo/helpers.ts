// Shared by the HPO tests: run a sequential study of a test function with a sampler.
import {
  createSampler,
  type Direction,
  type Params,
  type SamplerConfig,
  type SearchSpace,
  samplerSchema,
  type TrialView,
} from '../../src/hpo/index.ts';

export function runStudy(
  config: unknown,
  space: SearchSpace,
  objective: (params: Params) => number,
  options: { trials: number; seed: number; direction?: Direction },
): TrialView[] {
  const sampler = createSampler(samplerSchema.parse(config) as SamplerConfig);
  const trials: TrialView[] = [];
  for (let number = 0; number < options.trials; number++) {
    const params = sampler.suggest({
      space,
      direction: options.direction ?? 'minimize',
      seed: options.seed,
      trialNumber: number,
      trials,
    });
    if (params === null) break;
    trials.push({ number, params, state: 'completed', value: objective(params), intermediate: [] });
  }
  return trials;
}

export const completed = (number: number, params: Params, value: number): TrialView => ({
  number,
  params,
  state: 'completed',
  value,
  intermediate: [],
});

export const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

export const medianOf = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** Branin on x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 at three points. */
export const branin = (p: Params) => {
  const x1 = p.x1 as number;
  const x2 = p.x2 as number;
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
};
export const braninSpace: SearchSpace = {
  x1: { type: 'float', low: -5, high: 10, log: false },
  x2: { type: 'float', low: 0, high: 15, log: false },
};
