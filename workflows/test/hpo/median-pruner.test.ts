import { describe, expect, test } from 'vitest';
import { createPruner, percentile, prunerSchema, type TrialState, type TrialView } from '../../src/hpo/index.ts';

const trial = (number: number, state: TrialState, values: number[], firstStep = 0): TrialView => ({
  number,
  params: {},
  state,
  value: state === 'completed' ? (values[values.length - 1] ?? null) : null,
  intermediate: values.map((v, i) => [firstStep + i, v] as const),
});

// Five completed trials; at every step their values are 1, 2, 3, 4, 5 (median 3).
const finished = [1, 2, 3, 4, 5].map((v, i) => trial(i, 'completed', [v, v, v, v, v]));
const median = (options: Record<string, unknown> = {}) =>
  createPruner(prunerSchema.parse({ type: 'median', ...options }));

describe('median pruner', () => {
  test('defaults as Optuna: 5 startup trials, no warm-up, every step, 1 trial', () => {
    expect(prunerSchema.parse({ type: 'median' })).toEqual({
      type: 'median',
      startupTrials: 5,
      warmupSteps: 0,
      intervalSteps: 1,
      minTrials: 1,
    });
    expect(prunerSchema.safeParse({ type: 'median', intervalSteps: 0 }).success).toBe(false);
    expect(prunerSchema.parse({ type: 'none' })).toEqual({ type: 'none' });
  });

  test('prunes a trial worse than the median at its step, keeps one at or better than it', () => {
    const pruner = median();
    const judge = (values: number[]) =>
      pruner.shouldPrune({ direction: 'minimize', trial: trial(9, 'running', values), trials: finished });
    expect(judge([3.5])).toBe(true);
    expect(judge([3])).toBe(false);
    expect(judge([2.9, 2.9])).toBe(false);
    expect(judge([9, 9, 3.1])).toBe(true);
  });

  test('judges the best value so far, as Optuna does', () => {
    // Was 2 at step 0, now 4 at step 1: its best (2) still beats the median (3).
    expect(median().shouldPrune({ direction: 'minimize', trial: trial(9, 'running', [2, 4]), trials: finished })).toBe(
      false,
    );
  });

  test('maximize: prunes below the median', () => {
    const pruner = median();
    const judge = (values: number[]) =>
      pruner.shouldPrune({ direction: 'maximize', trial: trial(9, 'running', values), trials: finished });
    expect(judge([2.5])).toBe(true);
    expect(judge([3.5])).toBe(false);
  });

  test('never prunes with too few completed trials, before warm-up, or with no report', () => {
    const bad = trial(9, 'running', [100, 100, 100]);
    const few = finished.slice(0, 4);
    expect(median().shouldPrune({ direction: 'minimize', trial: bad, trials: few })).toBe(false);
    expect(median({ startupTrials: 4 }).shouldPrune({ direction: 'minimize', trial: bad, trials: few })).toBe(true);
    // Running, pruned and failed trials are not completed: they do not count.
    const others = [trial(5, 'running', [0, 0, 0]), trial(6, 'pruned', [0, 0, 0]), trial(7, 'failed', [0, 0, 0])];
    expect(median().shouldPrune({ direction: 'minimize', trial: bad, trials: [...few, ...others] })).toBe(false);
    expect(median({ warmupSteps: 3 }).shouldPrune({ direction: 'minimize', trial: bad, trials: finished })).toBe(false);
    expect(median({ warmupSteps: 2 }).shouldPrune({ direction: 'minimize', trial: bad, trials: finished })).toBe(true);
    expect(median().shouldPrune({ direction: 'minimize', trial: trial(9, 'running', []), trials: finished })).toBe(
      false,
    );
  });

  test('needs minTrials completed trials reporting at that very step', () => {
    const late = trial(9, 'running', [100], 7); // step 7: no completed trial reported there
    expect(median().shouldPrune({ direction: 'minimize', trial: late, trials: finished })).toBe(false);
    const two = [
      trial(0, 'completed', [1, 1]),
      trial(1, 'completed', [2, 2]),
      ...finished.slice(2).map((t) => ({ ...t, intermediate: t.intermediate.slice(0, 1) })),
    ];
    const atStep1 = trial(9, 'running', [100, 100]);
    expect(median({ minTrials: 3 }).shouldPrune({ direction: 'minimize', trial: atStep1, trials: two })).toBe(false);
    expect(median({ minTrials: 2 }).shouldPrune({ direction: 'minimize', trial: atStep1, trials: two })).toBe(true);
  });

  test('judges once per interval: the first report at or after each interval start', () => {
    const pruner = median({ warmupSteps: 1, intervalSteps: 2 });
    const judged = (steps: number[]) =>
      pruner.shouldPrune({
        direction: 'minimize',
        trial: {
          number: 9,
          params: {},
          state: 'running',
          value: null,
          intermediate: steps.map((s) => [s, 100] as const),
        },
        trials: [0, 1, 2, 3, 4].map((i) => ({
          ...trial(i, 'completed', []),
          intermediate: Array.from({ length: 10 }, (_, s) => [s, i + 1] as const),
        })),
      });
    expect(judged([0, 1])).toBe(true); // step 1 opens the first interval
    expect(judged([0, 1, 2])).toBe(false); // same interval as step 1
    expect(judged([0, 1, 2, 3])).toBe(true);
    expect(judged([0, 1, 4])).toBe(true); // skipped step 3: judged at the next report
  });

  test('percentile interpolates linearly, as numpy', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([0, 10], 25)).toBe(2.5);
  });
});
