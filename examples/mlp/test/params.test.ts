// Params: defaults, and a bad value or unknown name stops the trainer with exit 2 naming it.
import { describe, expect, test } from 'vitest';
import { defaults, ParamError, parseParams } from '../src/params.ts';
import { checkpointSteps, runTrainer, tempDir } from './run-trainer.ts';

describe('params', () => {
  test('defaults fill what is not given', () => {
    expect(parseParams({})).toEqual(defaults);
    expect(parseParams({ seed: 5, learningRate: 0.01, failAtStep: null })).toEqual({
      ...defaults,
      seed: 5,
      learningRate: 0.01,
    });
  });

  test.each([
    [{ learningRate: 0 }, 'learningRate'],
    [{ learningRate: '0.1' }, 'learningRate'],
    [{ momentum: 1 }, 'momentum'],
    [{ hiddenSize: 31.5 }, 'hiddenSize'],
    [{ batchSize: 0 }, 'batchSize'],
    [{ steps: -1 }, 'steps'],
    [{ seed: 2 ** 32 }, 'seed'],
    [{ checkpointEvery: 1.5 }, 'checkpointEvery'],
    [{ evalEvery: 0 }, 'evalEvery'],
    [{ stepDelayMs: -1 }, 'stepDelayMs'],
    [{ failAtStep: 0 }, 'failAtStep'],
    [{ lr: 0.1 }, 'lr'],
  ])('%j is refused, naming %s', (raw, name) => {
    expect(() => parseParams(raw)).toThrow(ParamError);
    expect(() => parseParams(raw)).toThrow(`"${name}"`);
  });

  test.each([[null], [[]], ['x'], [3]])('params %j (not an object) are refused', (raw) => {
    expect(() => parseParams(raw)).toThrow(ParamError);
  });

  test('the trainer exits 2 with the param named, before writing anything', async () => {
    const dir = tempDir();
    const [badValue, unknown, notJson] = await Promise.all([
      runTrainer({ checkpointDir: dir, params: { hiddenSize: 0 } }),
      runTrainer({ checkpointDir: dir, params: { learning_rate: 0.1 } }),
      runTrainer({ checkpointDir: dir, rawParams: '{"steps": 10' }),
    ]);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toContain('param "hiddenSize" must be an integer from 1 to 1024, got 0');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown param "learning_rate"');
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('KEEL_PARAMS is not valid JSON');
    for (const run of [badValue, unknown, notJson]) expect(run.stdout).toBe('');
    expect(checkpointSteps(dir)).toEqual([]);
  });
});
