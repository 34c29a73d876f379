// The PostgreSQL tables (fleets): the same tables as schema/sqlite.ts, column for column.
import {
  bigint,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import type {
  CheckpointFile,
  CheckpointKind,
  CheckpointStatus,
  Direction,
  JobStatus,
  JsonObject,
  Metrics,
  StudyStatus,
  TrialState,
} from '../states.ts';

const time = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const createdAt = () =>
  time('created_at')
    .notNull()
    .$defaultFn(() => new Date());
const updatedAt = () =>
  time('updated_at')
    .notNull()
    .$defaultFn(() => new Date())
    .$onUpdateFn(() => new Date());

export const studies = pgTable('studies', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  spec: jsonb('spec').$type<JsonObject>().notNull(),
  objectiveMetric: text('objective_metric').notNull(),
  direction: text('direction').$type<Direction>().notNull(),
  status: text('status').$type<StudyStatus>().notNull(),
  stopReason: text('stop_reason'),
  bestTrialNumber: integer('best_trial_number'),
  bestValue: doublePrecision('best_value'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  endedAt: time('ended_at'),
});

export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    studyId: text('study_id'),
    trialNumber: integer('trial_number'),
    spec: jsonb('spec').$type<JsonObject>().notNull(),
    status: text('status').$type<JobStatus>().notNull(),
    error: text('error'),
    finalMetrics: jsonb('final_metrics').$type<Metrics>(),
    resumes: integer('resumes').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    startedAt: time('started_at'),
    endedAt: time('ended_at'),
  },
  (t) => [index('jobs_study_idx').on(t.studyId, t.trialNumber), index('jobs_status_idx').on(t.status)],
);

export const checkpoints = pgTable(
  'checkpoints',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    jobId: text('job_id').notNull(),
    step: integer('step').notNull(),
    uri: text('uri').notNull(),
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
    /** Null until uploaded (hard-linked checkpoints are hashed by the upload). */
    sha256: text('sha256'),
    /** What the trainer reported: one file (restored under its name) or a folder. */
    kind: text('kind').$type<CheckpointKind>().notNull().default('directory'),
    files: jsonb('files').$type<CheckpointFile[]>().notNull(),
    metrics: jsonb('metrics').$type<Metrics>().notNull(),
    isBest: boolean('is_best').notNull().default(false),
    status: text('status').$type<CheckpointStatus>().notNull(),
    failureReason: text('failure_reason'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    uploadedAt: time('uploaded_at'),
    committedAt: time('committed_at'),
  },
  (t) => [
    uniqueIndex('checkpoints_job_uri_idx').on(t.jobId, t.uri),
    index('checkpoints_job_status_step_idx').on(t.jobId, t.status, t.step),
  ],
);

export const trials = pgTable(
  'trials',
  {
    studyId: text('study_id').notNull(),
    number: integer('number').notNull(),
    params: jsonb('params').$type<JsonObject>().notNull(),
    state: text('state').$type<TrialState>().notNull(),
    value: doublePrecision('value'),
    jobId: text('job_id'),
    attempts: integer('attempts').notNull().default(0),
    error: text('error'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    startedAt: time('started_at'),
    endedAt: time('ended_at'),
  },
  (t) => [
    primaryKey({ columns: [t.studyId, t.number] }),
    index('trials_study_state_value_idx').on(t.studyId, t.state, t.value),
  ],
);

export const trialValues = pgTable(
  'trial_values',
  {
    studyId: text('study_id').notNull(),
    trialNumber: integer('trial_number').notNull(),
    step: integer('step').notNull(),
    value: doublePrecision('value').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.studyId, t.trialNumber, t.step] }),
    index('trial_values_study_step_idx').on(t.studyId, t.step),
  ],
);
