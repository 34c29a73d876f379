// Exit codes and error lines of the `keel` CLI: a script branches on the code, a person reads
// the line (which says what was wrong and what to do).
import { InvalidSpecError } from '@keel/workflows/specs';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { NotFoundError } from '../keel-client.ts';

export const exitCodes = {
  ok: 0,
  /** The operation failed (a study or job that ended failed, a checksum that did not match...). */
  failed: 1,
  /** Bad input: unknown option, unreadable or invalid spec file. */
  usage: 2,
  /** No such job, study or checkpoint. */
  notFound: 3,
  /** Temporal (or the database) could not be reached. */
  unreachable: 4,
} as const;

/** An error the CLI reports as one line, with its exit code. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * Temporal's own errors a person can act on, as CliErrors saying what was wrong and what to do;
 * any other error is returned as it is.
 */
export function explain(err: unknown): unknown {
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    const kind = err.workflowType === 'hpoStudy' ? 'study' : 'job';
    return new CliError(
      `'${err.workflowId}' already exists (a workflow with that id is running): pick another --id, ` +
        `or leave --id out for a fresh one; to follow the existing one: keel ${kind} watch ${err.workflowId}`,
      exitCodes.usage,
    );
  }
  if (err instanceof WorkflowUpdateFailedError) {
    // The study's validator refused the request (e.g. a maxConcurrency out of range): its reason
    // is the cause; the update error's own message says only 'Workflow Update failed'.
    const reason = err.cause instanceof Error ? err.cause.message : err.message;
    return new CliError(`the study refused: ${reason}`, exitCodes.usage);
  }
  return err;
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof InvalidSpecError) return exitCodes.usage;
  if (err instanceof NotFoundError) return exitCodes.notFound;
  if (err instanceof Error && /cannot reach Temporal|ECONNREFUSED|UNAVAILABLE/.test(err.message)) {
    return exitCodes.unreachable;
  }
  return exitCodes.failed;
}
