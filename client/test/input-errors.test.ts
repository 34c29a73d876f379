// How bad input is named before (or instead of) reaching Temporal: a spec over the size limit,
// refused by KeelClient before any call, and the CLI's lines for Temporal's own refusals (an id
// in use, an update the study's validator refused), which otherwise say neither id nor reason.
import { InvalidSpecError } from '@keel/workflows/specs';
import { Client, WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, test } from 'vitest';
import { CliError, exitCodeOf, exitCodes, explain } from '../src/cli/errors.ts';
import { KeelClient, MAX_SPEC_BYTES, SpecTooLargeError, type StudySpecInput } from '../src/keel-client.ts';

describe('an oversize spec', () => {
  // A lazy Temporal client: it connects on its first call, and a refused spec makes none.
  const connect = () => KeelClient.connect({ client: new Client(), databaseUrl: 'sqlite::memory:' });
  const job = (bytes: number) => ({ command: ['python', 'train.py'], env: { BIG: 'x'.repeat(bytes) } });

  test('a job spec over 1 MiB: SpecTooLargeError, an InvalidSpecError naming the size, limit, part and fix', async () => {
    const keel = await connect();
    const err = await keel.startJob(job(3 * 1024 * 1024), { id: 'too-big' }).catch((e) => e);
    expect(err).toBeInstanceOf(SpecTooLargeError);
    expect(err).toBeInstanceOf(InvalidSpecError); // CLI exit 2, HTTP 400 invalid_spec
    expect(err.limit).toBe(MAX_SPEC_BYTES);
    expect(err.bytes).toBe(JSON.stringify(job(3 * 1024 * 1024)).length);
    expect(err.issues).toEqual([{ field: 'env.BIG', message: expect.stringContaining('too large') }]);
    expect(err.message).toContain(`${err.bytes} bytes as JSON, over the limit of ${MAX_SPEC_BYTES} bytes`);
    expect(err.message).toContain('pass its path or URI');
    expect(exitCodeOf(explain(err))).toBe(exitCodes.usage);
  });

  test('a study spec over 1 MiB is refused the same way', async () => {
    const keel = await connect();
    const study: StudySpecInput = {
      objective: { metric: 'loss', direction: 'minimize' },
      nTrials: 2,
      space: { lr: { type: 'float', low: 0.001, high: 0.1 } },
      trial: job(MAX_SPEC_BYTES),
    };
    const err = await keel.startStudy(study).catch((e) => e);
    expect(err).toBeInstanceOf(SpecTooLargeError);
    expect(err.message).toMatch(/^invalid study spec:\n {2}- trial\.env\.BIG: the spec is too large/);
  });
});

describe("the CLI's lines for Temporal's refusals", () => {
  test('an id in use: exit 2 naming the id, another --id and how to follow the existing one', () => {
    const err = explain(
      new WorkflowExecutionAlreadyStartedError('Workflow execution already started', 'j1', 'trainingJob'),
    );
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toContain("'j1' already exists");
    expect((err as CliError).message).toContain('pick another --id');
    expect((err as CliError).message).toContain('keel job watch j1');
    expect(exitCodeOf(err)).toBe(exitCodes.usage);
    const study = explain(new WorkflowExecutionAlreadyStartedError('already started', 's1', 'hpoStudy'));
    expect((study as CliError).message).toContain('keel study watch s1');
  });

  test("a rejected update: the validator's reason (the cause), not 'Workflow Update failed'; exit 2", () => {
    const reason = new Error('maxConcurrency: Too big: expected int to be <=1000 (got 10000)');
    const err = explain(new WorkflowUpdateFailedError('Workflow Update failed', reason));
    expect((err as CliError).message).toBe(`the study refused: ${reason.message}`);
    expect(exitCodeOf(err)).toBe(exitCodes.usage);
  });

  test('any other error is left as it is', () => {
    const other = new Error('boom');
    expect(explain(other)).toBe(other);
    expect(exitCodeOf(explain(other))).toBe(exitCodes.failed);
  });
});
