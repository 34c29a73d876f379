// A spec parsed inside a workflow: a bad one fails the workflow at once (not retried), with the
// message naming every bad field and the fields themselves as the failure's details.
import { ApplicationFailure } from '@temporalio/common';
import { InvalidSpecError } from './specs/index.ts';

export function parseOrFail<T>(parse: (input: unknown) => T, input: unknown): T {
  try {
    return parse(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) {
      throw ApplicationFailure.nonRetryable(err.message, 'InvalidSpecError', err.issues);
    }
    throw err;
  }
}
