// Checkpoints: one row per checkpoint a trainer reported, following it from staged (pending) to
// committed, and on to gc or failed. Resume reads the newest committed one.
import { and, asc, desc, eq, inArray, type SQL } from 'drizzle-orm';
import { InvalidTransitionError, RecordConflictError, RecordNotFoundError } from '../errors.ts';
import type { KeelDatabase } from '../open.ts';
import {
  type CheckpointFile,
  type CheckpointKind,
  type CheckpointStatus,
  checkpointTransitions,
  type Metrics,
} from '../states.ts';
import { inTransaction } from './executor.ts';
import { requireJob } from './jobs.ts';

export type Checkpoint = KeelDatabase['tables']['checkpoints']['$inferSelect'];

export interface NewCheckpoint {
  jobId: string;
  step: number;
  /** Where the checkpoint's objects live; unique within the job. */
  uri: string;
  bytes: number;
  /** sha256 of the single file, or of the checkpoint's manifest when it has several files;
   *  unknown until the upload when the checkpoint was staged by hard link. */
  sha256?: string;
  kind?: CheckpointKind;
  files?: CheckpointFile[];
  metrics?: Metrics;
}

/**
 * Records a staged checkpoint as pending. Idempotent for retried activities: recording the same
 * URI with the same sha256 again returns the existing row. The same URI with other bytes is a
 * RecordConflictError, since the object at that URI would no longer match what was recorded.
 */
export async function recordCheckpoint(db: KeelDatabase, checkpoint: NewCheckpoint): Promise<Checkpoint> {
  const { checkpoints } = db.tables;
  await requireJob(db, checkpoint.jobId);
  const [inserted] = await db.orm
    .insert(checkpoints)
    .values({ files: [], metrics: {}, ...checkpoint, status: 'pending' })
    .onConflictDoNothing({ target: [checkpoints.jobId, checkpoints.uri] })
    .returning();
  if (inserted) return inserted;
  const [existing] = await db.orm
    .select()
    .from(checkpoints)
    .where(and(eq(checkpoints.jobId, checkpoint.jobId), eq(checkpoints.uri, checkpoint.uri)));
  if (!existing) throw new RecordNotFoundError('checkpoint', checkpoint.uri);
  const shaDiffers =
    checkpoint.sha256 !== undefined && existing.sha256 !== null && existing.sha256 !== checkpoint.sha256;
  if (shaDiffers || existing.step !== checkpoint.step) {
    throw new RecordConflictError(
      `checkpoint ${checkpoint.uri} of job ${checkpoint.jobId} is already recorded at step ${existing.step} ` +
        `with sha256 ${existing.sha256}; a new checkpoint needs a new URI`,
    );
  }
  return existing;
}

export async function getCheckpoint(db: KeelDatabase, id: number): Promise<Checkpoint | undefined> {
  const { checkpoints } = db.tables;
  const [row] = await db.orm.select().from(checkpoints).where(eq(checkpoints.id, id));
  return row;
}

/**
 * Moves a checkpoint along its lifecycle (see checkpointTransitions). Marking it with the status
 * it already has is a no-op, so retried activities are safe. `failed` needs a reason, which is
 * what users see in the job's progress. The upload sets the sha256 and files it computed.
 */
export async function markCheckpoint(
  db: KeelDatabase,
  id: number,
  status: CheckpointStatus,
  options: { reason?: string; sha256?: string; files?: CheckpointFile[] } = {},
): Promise<Checkpoint> {
  const { checkpoints } = db.tables;
  if (status === 'failed' && !options.reason) {
    throw new InvalidTransitionError(`checkpoint ${id}: marking it failed needs a reason`);
  }
  const now = new Date();
  const from = checkpointTransitions[status];
  const [row] =
    from.length === 0
      ? []
      : await db.orm
          .update(checkpoints)
          .set({
            status,
            ...(status === 'uploaded' ? { uploadedAt: now } : {}),
            ...(options.sha256 ? { sha256: options.sha256 } : {}),
            ...(options.files ? { files: options.files } : {}),
            ...(status === 'committed' ? { committedAt: now } : {}),
            ...(status === 'failed' ? { failureReason: options.reason } : {}),
          })
          .where(and(eq(checkpoints.id, id), inArray(checkpoints.status, [...from])))
          .returning();
  if (row) return row;
  const current = await getCheckpoint(db, id);
  if (!current) throw new RecordNotFoundError('checkpoint', String(id));
  if (current.status === status) return current;
  throw new InvalidTransitionError(`checkpoint ${id} is ${current.status}; it cannot become ${status}`);
}

/** The checkpoint a job resumes from: its committed checkpoint with the highest step. */
export async function newestCommittedCheckpoint(db: KeelDatabase, jobId: string): Promise<Checkpoint | undefined> {
  const { checkpoints } = db.tables;
  const [row] = await db.orm
    .select()
    .from(checkpoints)
    .where(and(eq(checkpoints.jobId, jobId), eq(checkpoints.status, 'committed')))
    .orderBy(desc(checkpoints.step), desc(checkpoints.id))
    .limit(1);
  return row;
}

/** A job's checkpoints by step (oldest first), optionally only those in the given statuses. */
export async function listCheckpoints(
  db: KeelDatabase,
  jobId: string,
  filter: { status?: CheckpointStatus[] } = {},
): Promise<Checkpoint[]> {
  const { checkpoints } = db.tables;
  const conditions: SQL[] = [eq(checkpoints.jobId, jobId)];
  if (filter.status) conditions.push(inArray(checkpoints.status, filter.status));
  return db.orm
    .select()
    .from(checkpoints)
    .where(and(...conditions))
    .orderBy(asc(checkpoints.step), asc(checkpoints.id));
}

/** Makes one checkpoint the job's best (by its objective) and clears the flag on the others. */
export async function setBestCheckpoint(db: KeelDatabase, jobId: string, id: number): Promise<void> {
  const { checkpoints } = db.tables;
  await inTransaction(db, async (tx) => {
    const [target] = await tx
      .select({ id: checkpoints.id })
      .from(checkpoints)
      .where(and(eq(checkpoints.id, id), eq(checkpoints.jobId, jobId)));
    if (!target) throw new RecordNotFoundError('checkpoint', `${id} of job ${jobId}`);
    await tx.update(checkpoints).set({ isBest: false }).where(eq(checkpoints.jobId, jobId));
    await tx.update(checkpoints).set({ isBest: true }).where(eq(checkpoints.id, id));
  });
}
