// HPO studies, their trials and the trials' intermediate values (what pruners compare).
import { and, asc, desc, eq, isNotNull, type SQL, sql } from 'drizzle-orm';
import { RecordNotFoundError } from '../errors.ts';
import type { KeelDatabase } from '../open.ts';
import type { Direction, JsonObject, StudyStatus, TrialState } from '../states.ts';
import { type Executor, inTransaction } from './executor.ts';

type Tables = KeelDatabase['tables'];
export type Study = Tables['studies']['$inferSelect'];
export type Trial = Tables['trials']['$inferSelect'];
export type IntermediateValue = Tables['trialValues']['$inferSelect'];

const endedStudyStatuses: readonly StudyStatus[] = ['completed', 'stopped', 'failed'];
const endedTrialStates: readonly TrialState[] = ['completed', 'pruned', 'failed', 'stopped'];

export interface NewStudy {
  id: string;
  name: string;
  spec: JsonObject;
  objective: { metric: string; direction: Direction };
}

/** Records a running study. Idempotent: an id that exists returns the row already there. */
export async function createStudy(db: KeelDatabase, study: NewStudy): Promise<Study> {
  const { studies } = db.tables;
  await db.orm
    .insert(studies)
    .values({
      id: study.id,
      name: study.name,
      spec: study.spec,
      objectiveMetric: study.objective.metric,
      direction: study.objective.direction,
      status: 'running',
    })
    .onConflictDoNothing({ target: studies.id });
  return requireStudy(db, study.id);
}

export async function getStudy(db: KeelDatabase, id: string): Promise<Study | undefined> {
  const { studies } = db.tables;
  const [row] = await db.orm.select().from(studies).where(eq(studies.id, id));
  return row;
}

export async function requireStudy(db: KeelDatabase, id: string): Promise<Study> {
  const study = await getStudy(db, id);
  if (!study) throw new RecordNotFoundError('study', id);
  return study;
}

/** Sets a study's status (and why it stopped); an ending status stamps endedAt once. */
export async function updateStudy(
  db: KeelDatabase,
  id: string,
  update: { status: StudyStatus; stopReason?: string },
): Promise<Study> {
  const { studies } = db.tables;
  const current = await requireStudy(db, id);
  const [row] = await db.orm
    .update(studies)
    .set({
      status: update.status,
      ...(update.stopReason !== undefined ? { stopReason: update.stopReason } : {}),
      ...(endedStudyStatuses.includes(update.status) && !current.endedAt ? { endedAt: new Date() } : {}),
    })
    .where(eq(studies.id, id))
    .returning();
  return row ?? current;
}

/** Studies, newest first. */
export async function listStudies(
  db: KeelDatabase,
  filter: { status?: StudyStatus; limit?: number } = {},
): Promise<Study[]> {
  const { studies } = db.tables;
  return db.orm
    .select()
    .from(studies)
    .where(filter.status ? eq(studies.status, filter.status) : undefined)
    .orderBy(desc(studies.createdAt), desc(studies.id))
    .limit(filter.limit ?? 1000);
}

export interface NewTrial {
  studyId: string;
  number: number;
  params: JsonObject;
  jobId?: string;
}

/** Records a sampled trial as pending. Idempotent on (study, number). */
export async function recordTrial(db: KeelDatabase, trial: NewTrial): Promise<Trial> {
  const { trials } = db.tables;
  await requireStudy(db, trial.studyId);
  await db.orm
    .insert(trials)
    .values({ ...trial, state: 'pending' })
    .onConflictDoNothing({ target: [trials.studyId, trials.number] });
  return requireTrial(db, trial.studyId, trial.number);
}

export async function getTrial(db: KeelDatabase, studyId: string, number: number): Promise<Trial | undefined> {
  const { trials } = db.tables;
  const [row] = await db.orm
    .select()
    .from(trials)
    .where(and(eq(trials.studyId, studyId), eq(trials.number, number)));
  return row;
}

export async function requireTrial(db: KeelDatabase, studyId: string, number: number): Promise<Trial> {
  const trial = await getTrial(db, studyId, number);
  if (!trial) throw new RecordNotFoundError('trial', `${number} of study ${studyId}`);
  return trial;
}

export interface TrialUpdate {
  state?: TrialState;
  /** The objective's value (final for completed trials, last reported for pruned ones). */
  value?: number | null;
  jobId?: string;
  error?: string | null;
  /** Count one more attempt (a retry after a failure). */
  attempt?: boolean;
  /** Set the number of runs started (idempotent, unlike `attempt`). */
  attempts?: number;
}

/**
 * Updates a trial, and in the same transaction the study's best trial, so the two never
 * disagree. `running` stamps startedAt once; completed, pruned and failed stamp endedAt.
 */
export async function updateTrial(
  db: KeelDatabase,
  studyId: string,
  number: number,
  update: TrialUpdate,
): Promise<Trial> {
  const { trials } = db.tables;
  return inTransaction(db, async (tx) => {
    const [current] = await tx
      .select()
      .from(trials)
      .where(and(eq(trials.studyId, studyId), eq(trials.number, number)));
    if (!current) throw new RecordNotFoundError('trial', `${number} of study ${studyId}`);
    const now = new Date();
    const { state } = update;
    const [row] = await tx
      .update(trials)
      .set({
        ...(state ? { state } : {}),
        ...(update.value !== undefined ? { value: update.value } : {}),
        ...(update.jobId !== undefined ? { jobId: update.jobId } : {}),
        ...(update.error !== undefined ? { error: update.error } : {}),
        ...(update.attempt ? { attempts: current.attempts + 1 } : {}),
        ...(update.attempts !== undefined ? { attempts: update.attempts } : {}),
        ...(state === 'running' && !current.startedAt ? { startedAt: now } : {}),
        ...(state && endedTrialStates.includes(state) && !current.endedAt ? { endedAt: now } : {}),
      })
      .where(and(eq(trials.studyId, studyId), eq(trials.number, number)))
      .returning();
    await refreshStudyBest(db.tables, tx, studyId);
    return row ?? current;
  });
}

/** A study's trials by number, optionally only those in one state. */
export async function listTrials(db: KeelDatabase, studyId: string, filter: { state?: TrialState } = {}) {
  const { trials } = db.tables;
  const conditions: SQL[] = [eq(trials.studyId, studyId)];
  if (filter.state) conditions.push(eq(trials.state, filter.state));
  return db.orm
    .select()
    .from(trials)
    .where(and(...conditions))
    .orderBy(asc(trials.number));
}

/** The completed trial with the best value in the study's direction (lowest number on ties). */
export async function bestTrial(db: KeelDatabase, studyId: string): Promise<Trial | undefined> {
  return findBestTrial(db.tables, db.orm, studyId);
}

async function findBestTrial(tables: Tables, tx: Executor, studyId: string): Promise<Trial | undefined> {
  const { studies, trials } = tables;
  const [study] = await tx.select({ direction: studies.direction }).from(studies).where(eq(studies.id, studyId));
  if (!study) throw new RecordNotFoundError('study', studyId);
  const [row] = await tx
    .select()
    .from(trials)
    .where(and(eq(trials.studyId, studyId), eq(trials.state, 'completed'), isNotNull(trials.value)))
    .orderBy(study.direction === 'minimize' ? asc(trials.value) : desc(trials.value), asc(trials.number))
    .limit(1);
  return row;
}

async function refreshStudyBest(tables: Tables, tx: Executor, studyId: string): Promise<void> {
  const best = await findBestTrial(tables, tx, studyId);
  await tx
    .update(tables.studies)
    .set({ bestTrialNumber: best?.number ?? null, bestValue: best?.value ?? null })
    .where(eq(tables.studies.id, studyId));
}

export interface NewIntermediateValue {
  studyId: string;
  trialNumber: number;
  step: number;
  value: number;
}

/** Records a trial's value at a step; reporting the same step again replaces the value. */
export async function recordIntermediateValue(db: KeelDatabase, value: NewIntermediateValue): Promise<void> {
  await recordIntermediateValues(db, [value]);
}

/** Records many values in one statement (a batch of a trial's reports), with the same rule. */
export async function recordIntermediateValues(db: KeelDatabase, values: NewIntermediateValue[]): Promise<void> {
  // One row per (study, trial, step), the last value winning: PostgreSQL refuses an upsert that
  // would touch the same row twice in one statement.
  const unique = [...new Map(values.map((v) => [`${v.studyId}\u0000${v.trialNumber}\u0000${v.step}`, v])).values()];
  if (unique.length === 0) return;
  const { trialValues } = db.tables;
  await db.orm
    .insert(trialValues)
    .values(unique)
    .onConflictDoUpdate({
      target: [trialValues.studyId, trialValues.trialNumber, trialValues.step],
      set: { value: sql`excluded.value` },
    });
}

/** Intermediate values of a study by trial and step, optionally of one trial or at one step. */
export async function intermediateValues(
  db: KeelDatabase,
  studyId: string,
  filter: { trialNumber?: number; step?: number } = {},
): Promise<IntermediateValue[]> {
  const { trialValues } = db.tables;
  const conditions: SQL[] = [eq(trialValues.studyId, studyId)];
  if (filter.trialNumber !== undefined) conditions.push(eq(trialValues.trialNumber, filter.trialNumber));
  if (filter.step !== undefined) conditions.push(eq(trialValues.step, filter.step));
  return db.orm
    .select()
    .from(trialValues)
    .where(and(...conditions))
    .orderBy(asc(trialValues.trialNumber), asc(trialValues.step));
}
