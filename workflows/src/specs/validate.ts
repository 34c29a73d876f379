// Turning zod's issues into one error a person can act on: each problem on its own line, with
// the field's path in the spec (e.g. `checkpoints.keepLast`) and what was expected.
import type { z } from 'zod';

export class InvalidSpecError extends Error {
  override name = 'InvalidSpecError';
  readonly issues: { field: string; message: string }[];
  constructor(kind: string, issues: { field: string; message: string }[]) {
    super(`invalid ${kind}:\n${issues.map((i) => `  - ${i.field}: ${i.message}`).join('\n')}`);
    this.issues = issues;
  }
}

/** Parses `input` with `schema`, or throws InvalidSpecError naming every bad field. */
export function parseSpec<S extends z.ZodType>(kind: string, schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidSpecError(
    kind,
    result.error.issues.map((issue) => ({
      field: issue.path.length > 0 ? issue.path.join('.') : '(the spec itself)',
      message: issue.message,
    })),
  );
}
