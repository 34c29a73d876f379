// Training jobs: one row per trainingJob workflow, keyed by its workflow id.
import { and, desc, eq, type SQL, sql } from 'drizzle-orm';
import { InvalidTransitionError, RecordNotFoundError } from '../errors.ts';
import type { KeelDatabase } from '../open.ts';
import { type JobStatus, type JsonObject, type Metrics, terminalJobStatuses } from '../states.ts';

export type Job = KeelDatabase['tables']['jobs']['$inferSelect'];

export interface NewJob {
  id: string;
  spec: JsonObject;
  studyId?: string;
  trialNumber?: number;
}

/** Records a job as pending. Idempotent: an id that exists returns the row already there. */
export async function createJob(db: KeelDatabase, job: NewJob): Promise<Job> {
  const { jobs } = db.tables;
  await db.orm
    .insert(jobs)
    .values({ ...job, status: 'pending' })
    .onConflictDoNothing({ target: jobs.id });
  return requireJob(db, job.id);
}

export async function getJob(db: KeelDatabase, id: string): Promise<Job | undefined> {
  const { jobs } = db.tables;
  const [row] = await db.orm.select().from(jobs).where(eq(jobs.id, id));
  return row;
}

export async function requireJob(db: KeelDatabase, id: string): Promise<Job> {
  const job = await getJob(db, id);
  if (!job) throw new RecordNotFoundError('job', id);
  return job;
}

export interface JobUpdate {
  status?: JobStatus;
  error?: string | null;
  finalMetrics?: Metrics;
  /** Count one more resume (a new attempt started from a committed checkpoint). */
  resumed?: boolean;
}

/**
 * Updates a job. A job that reached a terminal status (completed, failed, stopped, cancelled)
 * stays there: moving it elsewhere is an InvalidTransitionError. The first `running` stamps
 * startedAt; a terminal status stamps endedAt.
 */
export async function updateJob(db: KeelDatabase, id: string, update: JobUpdate): Promise<Job> {
  const { jobs } = db.tables;
  const current = await requireJob(db, id);
  const { status } = update;
  if (status && status !== current.status && terminalJobStatuses.includes(current.status)) {
    throw new InvalidTransitionError(`job ${id} is ${current.status}; it cannot become ${status}`);
  }
  const now = new Date();
  const [row] = await db.orm
    .update(jobs)
    .set({
      ...(status ? { status } : {}),
      ...(update.error !== undefined ? { error: update.error } : {}),
      ...(update.finalMetrics ? { finalMetrics: update.finalMetrics } : {}),
      ...(update.resumed ? { resumes: sql`${jobs.resumes} + 1` } : {}),
      ...(status === 'running' && !current.startedAt ? { startedAt: now } : {}),
      ...(status && terminalJobStatuses.includes(status) && !current.endedAt ? { endedAt: now } : {}),
    })
    .where(eq(jobs.id, id))
    .returning();
  return row ?? current;
}

export interface JobFilter {
  studyId?: string;
  status?: JobStatus;
  limit?: number;
}

/** Jobs, newest first. */
export async function listJobs(db: KeelDatabase, filter: JobFilter = {}): Promise<Job[]> {
  const { jobs } = db.tables;
  const conditions: SQL[] = [];
  if (filter.studyId) conditions.push(eq(jobs.studyId, filter.studyId));
  if (filter.status) conditions.push(eq(jobs.status, filter.status));
  return db.orm
    .select()
    .from(jobs)
    .where(and(...conditions))
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(filter.limit ?? 1000);
}
