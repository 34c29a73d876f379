import { describe, expect, test } from 'vitest';
import {
  createPruner,
  type Direction,
  promotable,
  prunerSchema,
  type TrialView,
  valueAtResource,
} from '../../src/hpo/index.ts';

const history = (number: number, points: [number, number][], state: TrialView['state'] = 'completed'): TrialView => ({
  number,
  params: {},
  state,
  value: null,
  intermediate: points,
});
const asha = (options: Record<string, unknown> = {}) => createPruner(prunerSchema.parse({ type: 'asha', ...options }));

// Rungs at steps 1, 3, 9, 27 (minResource 1, reductionFactor 3). Eight finished trials, values
// 1..8 at step 1; at steps 3 and 9 the same order.
const others = [1, 2, 3, 4, 5, 6, 7, 8].map((v, i) =>
  history(i, [
    [1, v],
    [3, v / 2],
    [9, v / 4],
  ]),
);

describe('asha pruner', () => {
  test('defaults: min resource 1, reduction factor 3, no skipped rungs', () => {
    expect(prunerSchema.parse({ type: 'asha' })).toEqual({
      type: 'asha',
      minResource: 1,
      reductionFactor: 3,
      minEarlyStoppingRate: 0,
    });
    expect(prunerSchema.safeParse({ type: 'asha', reductionFactor: 1 }).success).toBe(false);
  });

  test('at a rung, keeps the top 1/reductionFactor (ties kept) and prunes the rest', () => {
    const judge = (value: number, direction: Direction = 'minimize') =>
      asha().shouldPrune({ direction, trial: history(20, [[1, value]], 'running'), trials: others });
    // 9 values at rung 0: the top 3 are kept; with 2 others better, value 3 ties the third.
    expect(judge(0.5)).toBe(false);
    expect(judge(2.5)).toBe(false);
    expect(judge(3)).toBe(false);
    expect(judge(3.5)).toBe(true);
    // Maximize: the largest third.
    expect(judge(6, 'maximize')).toBe(false);
    expect(judge(5.5, 'maximize')).toBe(true);
  });

  test('judges a trial only when its report first reaches a rung', () => {
    const between = history(
      20,
      [
        [1, 0.5],
        [2, 100],
      ],
      'running',
    );
    expect(asha().shouldPrune({ direction: 'minimize', trial: between, trials: others })).toBe(false);
    const atRung1 = history(
      20,
      [
        [1, 0.5],
        [2, 100],
        [3, 100],
      ],
      'running',
    );
    expect(asha().shouldPrune({ direction: 'minimize', trial: atRung1, trials: others })).toBe(true);
    const stepZero = history(20, [[0, 100]], 'running');
    expect(asha().shouldPrune({ direction: 'minimize', trial: stepZero, trials: others })).toBe(false);
  });

  test('a report that jumps over several rungs is judged at each', () => {
    // At step 10 it crosses rungs 1, 3 and 9; 1.1 is in the top third at 1 and 3 but not at 9
    // (others' values there are 0.25..2).
    const jump = (value: number) =>
      asha().shouldPrune({ direction: 'minimize', trial: history(20, [[10, value]], 'running'), trials: others });
    expect(jump(1.1)).toBe(true);
    expect(jump(0.7)).toBe(false);
  });

  test('with fewer than reductionFactor trials at a rung, only the best so far goes on', () => {
    const one = [history(0, [[1, 2]])];
    const judge = (value: number) =>
      asha().shouldPrune({ direction: 'minimize', trial: history(5, [[1, value]], 'running'), trials: one });
    expect(judge(1)).toBe(false);
    expect(judge(2)).toBe(false);
    expect(judge(3)).toBe(true);
    expect(asha().shouldPrune({ direction: 'minimize', trial: history(5, [[1, 3]], 'running'), trials: [] })).toBe(
      false,
    );
  });

  test('rung values are the first report at or after the rung; every state competes', () => {
    const sparse = history(0, [
      [2, 7],
      [4, 1],
    ]);
    expect(valueAtResource(sparse, 1)).toBe(7);
    expect(valueAtResource(sparse, 3)).toBe(1);
    expect(valueAtResource(sparse, 9)).toBeUndefined();
    const mixed = [history(0, [[1, 1]], 'pruned'), history(1, [[1, 2]], 'failed'), history(2, [[1, 3]], 'running')];
    const judge = (value: number) =>
      asha().shouldPrune({ direction: 'minimize', trial: history(5, [[1, value]], 'running'), trials: mixed });
    expect(judge(1)).toBe(false); // 4 values: the top 1 (index 4 // 3 - 1 = 0) goes on; tie kept
    expect(judge(1.5)).toBe(true);
  });

  test('minResource and minEarlyStoppingRate move the rungs', () => {
    const bad = history(20, [[1, 100]], 'running');
    expect(asha({ minEarlyStoppingRate: 1 }).shouldPrune({ direction: 'minimize', trial: bad, trials: others })).toBe(
      false,
    );
    expect(asha({ minResource: 2 }).shouldPrune({ direction: 'minimize', trial: bad, trials: others })).toBe(false);
    const atThree = history(20, [[3, 100]], 'running');
    expect(
      asha({ minEarlyStoppingRate: 1 }).shouldPrune({ direction: 'minimize', trial: atThree, trials: others }),
    ).toBe(true);
  });

  test('a NaN at a rung is pruned', () => {
    const diverged = history(20, [[1, Number.NaN]], 'running');
    expect(asha().shouldPrune({ direction: 'minimize', trial: diverged, trials: others })).toBe(true);
  });

  test('promotable picks the cut-off index as Optuna', () => {
    expect(promotable(3, [1, 2, 3, 4, 5, 6], 3, 'minimize')).toBe(false); // index 6 // 3 - 1 = 1 -> 2
    expect(promotable(2, [1, 2, 3, 4, 5, 6], 3, 'minimize')).toBe(true);
    expect(promotable(5, [1, 2, 3, 4, 5, 6], 3, 'maximize')).toBe(true);
    expect(promotable(4, [1, 2, 3, 4, 5, 6], 3, 'maximize')).toBe(false);
  });
});
