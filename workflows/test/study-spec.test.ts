// The study spec: defaults filled in, and every bad field named with what to write instead.
import { describe, expect, test } from 'vitest';
import { InvalidSpecError, parseStudySpec } from '../src/specs/index.ts';

const valid = {
  space: { lr: { type: 'float', low: 1e-4, high: 1e-1, log: true } },
  objective: { metric: 'val_loss', direction: 'minimize' },
  trial: { command: ['python', 'train.py'] },
};

function problems(input: unknown): { field: string; message: string }[] {
  try {
    parseStudySpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues;
    throw err;
  }
  throw new Error('the spec was accepted');
}

describe('study spec', () => {
  test('fills in the defaults and keeps the trial template as written', () => {
    const spec = parseStudySpec(valid);
    expect(spec).toMatchObject({
      nTrials: 20,
      maxConcurrency: 4,
      seed: 0,
      sampler: { type: 'tpe' },
      pruner: { type: 'none' },
      failures: { retriesPerTrial: 1, consecutiveToHalve: 3, maxFailedTrials: 10 },
      launchIntervalSeconds: 0,
      historyEventsBeforeContinueAsNew: 8000,
    });
    expect(spec.trial).toEqual({ command: ['python', 'train.py'] });
    expect(spec.space.lr).toMatchObject({ type: 'float', log: true });
  });

  test.each([
    [{ ...valid, space: {} }, 'space', /empty/],
    [{ ...valid, maxConcurrency: 0 }, 'maxConcurrency', /1/],
    [{ ...valid, objective: { metric: 'loss', direction: 'down' } }, 'objective.direction', /minimize|maximize/],
    [{ ...valid, trial: { params: {} } }, 'trial.command', /argv/],
    [{ ...valid, trial: { command: ['x'], gpus: -1 } }, 'trial.gpus', /0/],
    [{ ...valid, trial: { command: ['x'], trial: { studyId: 's', trialNumber: 0, metric: 'm' } } }, 'trial', /trial/],
    [{ ...valid, sampler: { type: 'grid' } }, 'space', /step/],
    [{ ...valid, pruner: { type: 'asha', reductionFactor: 1 } }, 'pruner.reductionFactor', /2/],
    [{ ...valid, nTrails: 10 }, '(the spec itself)', /nTrails/],
  ])('rejects %j naming %s', (input, field, message) => {
    const found = problems(input);
    const issue = found.find((i) => i.field === field);
    expect(issue, JSON.stringify(found)).toBeDefined();
    expect(issue?.message).toMatch(message);
  });
});
