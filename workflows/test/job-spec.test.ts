import { describe, expect, test } from 'vitest';
import { InvalidSpecError, parseJobSpec } from '../src/specs/index.ts';

const issuesOf = (input: unknown) => {
  try {
    parseJobSpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues.map((i) => i.field);
    throw err;
  }
  throw new Error('expected the spec to be rejected');
};

describe('job spec', () => {
  test('a command alone is a complete spec; every other field has a default', () => {
    expect(parseJobSpec({ command: ['python', 'train.py'] })).toEqual({
      command: ['python', 'train.py'],
      env: {},
      params: {},
      checkpoints: { upload: 'every', keepLast: 3, keepBest: 0 },
      gpus: 1,
      failures: { maxFailures: 3, maxPreemptions: 20 },
      timeouts: { heartbeatSeconds: 30, progressSeconds: 600, stopGraceSeconds: 60 },
      gpuTaskQueue: 'keel-gpu',
      fallbackAfterSeconds: 300,
    });
  });

  test('keeps what the user set', () => {
    const spec = parseJobSpec({
      command: ['node', 'train.ts'],
      params: { lr: 0.01, layers: [64, 32], optimizer: { name: 'sgd' } },
      storage: 's3://ckpt/runs',
      checkpoints: { upload: 'best-and-last', keepBest: 2, objective: { metric: 'val_loss', direction: 'minimize' } },
      gpus: 0,
      timeouts: { progressSeconds: 60 },
    });
    expect(spec.params).toEqual({ lr: 0.01, layers: [64, 32], optimizer: { name: 'sgd' } });
    expect(spec.checkpoints).toEqual({
      upload: 'best-and-last',
      keepLast: 3,
      keepBest: 2,
      objective: { metric: 'val_loss', direction: 'minimize' },
    });
    expect(spec.timeouts).toEqual({ heartbeatSeconds: 30, progressSeconds: 60, stopGraceSeconds: 60 });
  });

  test('names each bad field', () => {
    expect(issuesOf({})).toEqual(['command']);
    expect(issuesOf({ command: [] })).toEqual(['command']);
    expect(issuesOf({ command: ['x'], gpus: -1, storage: 'ftp://x' })).toEqual(['storage', 'gpus']);
    expect(issuesOf({ command: ['x'], checkpoints: { keepLast: 0 } })).toEqual(['checkpoints.keepLast']);
    expect(issuesOf({ command: ['x'], timeouts: { heartbeatSeconds: 1.5 } })).toEqual(['timeouts.heartbeatSeconds']);
    expect(issuesOf({ command: ['x'], comand: ['y'] })).toEqual(['(the spec itself)']);
    expect(issuesOf({ command: ['x'], checkpoints: { keepBest: 1 } })).toEqual(['checkpoints.objective']);
    expect(
      parseJobSpec({ command: ['x'], checkpoints: { objective: { metric: 'acc', direction: 'maximize' } } }).checkpoints
        .keepBest,
    ).toBe(1);
  });

  test('the message says what to do', () => {
    expect(() => parseJobSpec({ command: ['x'], storage: 'bucket/path' })).toThrow(
      /storage: expected file:\/\/\/absolute\/folder, s3:\/\/bucket\/prefix/,
    );
    expect(() => parseJobSpec({ command: 'python train.py' })).toThrow(/command: /);
  });
});
