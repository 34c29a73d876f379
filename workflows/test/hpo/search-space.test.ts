import { describe, expect, test } from 'vitest';
import { contains, searchSpaceSchema, snapToStep } from '../../src/hpo/index.ts';
import { InvalidSpecError, parseSpec } from '../../src/specs/validate.ts';

const problems = (input: unknown) => {
  try {
    parseSpec('search space', searchSpaceSchema, input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues;
    throw err;
  }
  throw new Error('expected the space to be rejected');
};
const fields = (input: unknown) => problems(input).map((i) => i.field);

describe('search space schema', () => {
  test('fills defaults: log false, int step 1', () => {
    expect(
      searchSpaceSchema.parse({
        lr: { type: 'float', low: 1e-5, high: 0.1, log: true },
        dropout: { type: 'float', low: 0, high: 0.5, step: 0.1 },
        layers: { type: 'int', low: 1, high: 4 },
        opt: { type: 'categorical', choices: ['adam', 'sgd', 1, true, null] },
      }),
    ).toEqual({
      lr: { type: 'float', low: 1e-5, high: 0.1, log: true },
      dropout: { type: 'float', low: 0, high: 0.5, log: false, step: 0.1 },
      layers: { type: 'int', low: 1, high: 4, log: false, step: 1 },
      opt: { type: 'categorical', choices: ['adam', 'sgd', 1, true, null] },
    });
  });

  test('accepts low == high (a constant) and a float step that divides the range despite rounding', () => {
    expect(() => searchSpaceSchema.parse({ x: { type: 'float', low: 1, high: 1 } })).not.toThrow();
    expect(() => searchSpaceSchema.parse({ x: { type: 'float', low: 0.1, high: 0.7, step: 0.1 } })).not.toThrow();
  });

  test('names the field and the fix for each mistake', () => {
    expect(fields({ lr: { type: 'float', low: 1, high: 0 } })).toEqual(['lr.high']);
    expect(fields({ lr: { type: 'float', low: 0, high: 1, log: true } })).toEqual(['lr.low']);
    expect(fields({ lr: { type: 'float', low: 1e-4, high: 1, log: true, step: 0.1 } })).toEqual(['lr.step']);
    expect(fields({ n: { type: 'int', low: 0, high: 10, step: 3 } })).toEqual(['n.step']);
    expect(fields({ n: { type: 'int', low: 1, high: 9, step: 2, log: true } })).toEqual(['n.step']);
    expect(fields({ n: { type: 'int', low: 0, high: 8, log: true } })).toEqual(['n.low']);
    expect(fields({ n: { type: 'int', low: 0.5, high: 8 } })).toEqual(['n.low']);
    expect(fields({ opt: { type: 'categorical', choices: [] } })).toEqual(['opt.choices']);
    expect(fields({ opt: { type: 'categorical', choices: ['a', 'b', 'a'] } })).toEqual(['opt.choices.2']);
    expect(fields({ x: { type: 'float', low: 0, high: 1, lg: true } })).toEqual(['x']);
    expect(fields({ x: { type: 'uniform', low: 0, high: 1 } })).toEqual(['x.type']);
    expect(fields({})).toEqual(['(the spec itself)']);

    const [step] = problems({ n: { type: 'int', low: 0, high: 10, step: 3 } });
    expect(step?.message).toContain('set high to 9');
    const [duplicate] = problems({ opt: { type: 'categorical', choices: ['a', 'b', 'a'] } });
    expect(duplicate?.message).toContain('"a" is listed twice');
  });

  test('1 and "1" are different choices', () => {
    expect(() => searchSpaceSchema.parse({ x: { type: 'categorical', choices: [1, '1'] } })).not.toThrow();
  });
});

describe('search space helpers', () => {
  test('snapToStep lands on the grid without floating-point noise and stays in bounds', () => {
    const d = { type: 'float' as const, low: 0.1, high: 0.7, log: false, step: 0.1 };
    expect(snapToStep(d, 0.29)).toBe(0.3);
    expect(snapToStep(d, 5)).toBe(0.7);
    expect(snapToStep({ type: 'int', low: 2, high: 10, log: false, step: 4 }, 7.9)).toBe(6);
  });

  test('contains tells params the space can produce', () => {
    const int = { type: 'int' as const, low: 0, high: 10, log: false, step: 5 };
    expect([0, 5, 10].map((v) => contains(int, v))).toEqual([true, true, true]);
    expect([3, 15, '5', undefined].map((v) => contains(int, v as never))).toEqual([false, false, false, false]);
    expect(contains({ type: 'categorical', choices: [1, 'a'] }, '1')).toBe(false);
    expect(contains({ type: 'categorical', choices: [1, 'a', null] }, null)).toBe(true);
  });
});
