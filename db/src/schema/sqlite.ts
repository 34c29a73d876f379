// The SQLite tables (the default, one machine). schema/postgres.ts declares the same tables for
// Postgres; db/test/schema-parity.test.ts fails if the two drift apart. No foreign keys: SQLite
// enforces them only per connection, and both dialects must behave the same, so the repository
// checks the references it relies on.
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
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

const time = (name: string) => integer(name, { mode: 'timestamp_ms' });
const createdAt = () =>
  time('created_at')
    .notNull()
    .$defaultFn(() => new Date());
const updatedAt = () =>
  time('updated_at')
    .notNull()
    .$defaultFn(() => new Date())
    .$onUpdateFn(() => new Date());

export const studies = sqliteTable('studies', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  spec: text('spec', { mode: 'json' }).$type<JsonObject>().notNull(),
  objectiveMetric: text('objective_metric').notNull(),
  direction: text('direction').$type<Direction>().notNull(),
  status: text('status').$type<StudyStatus>().notNull(),
  stopReason: text('stop_reason'),
  bestTrialNumber: integer('best_trial_number'),
  bestValue: real('best_value'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  endedAt: time('ended_at'),
});

export const jobs = sqliteTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    studyId: text('study_id'),
    trialNumber: integer('trial_number'),
    spec: text('spec', { mode: 'json' }).$type<JsonObject>().notNull(),
    status: text('status').$type<JobStatus>().notNull(),
    error: text('error'),
    finalMetrics: text('final_metrics', { mode: 'json' }).$type<Metrics>(),
    resumes: integer('resumes').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    startedAt: time('started_at'),
    endedAt: time('ended_at'),
  },
  (t) => [index('jobs_study_idx').on(t.studyId, t.trialNumber), index('jobs_status_idx').on(t.status)],
);

export const checkpoints = sqliteTable(
  'checkpoints',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    jobId: text('job_id').notNull(),
    step: integer('step').notNull(),
    uri: text('uri').notNull(),
    bytes: integer('bytes').notNull(),
    /** Null until uploaded (hard-linked checkpoints are hashed by the upload). */
    sha256: text('sha256'),
    /** What the trainer reported: one file (restored under its name) or a folder. */
    kind: text('kind').$type<CheckpointKind>().notNull().default('directory'),
    files: text('files', { mode: 'json' }).$type<CheckpointFile[]>().notNull(),
    metrics: text('metrics', { mode: 'json' }).$type<Metrics>().notNull(),
    isBest: integer('is_best', { mode: 'boolean' }).notNull().default(false),
    status: text('status').$type<CheckpointStatus>().notNull(),
    failureReason: text('failure_reason'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    uploadedAt: time('uploaded_at'),
    committedAt: time('committed_at'),
  },
  (t) => [
    uniqueIndex('checkpoints_job_uri_idx').on(t.jobId, t.uri),
    // The resume query: the newest committed checkpoint of a job.
    index('checkpoints_job_status_step_idx').on(t.jobId, t.status, t.step),
  ],
);

export const trials = sqliteTable(
  'trials',
  {
    studyId: text('study_id').notNull(),
    number: integer('number').notNull(),
    params: text('params', { mode: 'json' }).$type<JsonObject>().notNull(),
    state: text('state').$type<TrialState>().notNull(),
    value: real('value'),
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
    // The best-trial query: completed trials of a study ordered by value.
    index('trials_study_state_value_idx').on(t.studyId, t.state, t.value),
  ],
);

export const trialValues = sqliteTable(
  'trial_values',
  {
    studyId: text('study_id').notNull(),
    trialNumber: integer('trial_number').notNull(),
    step: integer('step').notNull(),
    value: real('value').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.studyId, t.trialNumber, t.step] }),
    // Pruners compare trials at the same step.
    index('trial_values_study_step_idx').on(t.studyId, t.step),
  ],
);
