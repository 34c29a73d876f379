// The activities of an HPO study: its record, its trials' records and its end. Each is idempotent
// (Temporal may run an activity again), and each is small: the study workflow batches nothing, so
// a row is written as soon as the workflow knows it.
import {
  createStudy,
  type Direction,
  type JsonObject,
  recordTrial,
  type StudyStatus,
  type TrialState,
  updateStudy,
  updateTrial,
} from '@keel/db';
import type { ActivityDeps } from '../jobs/deps.ts';

export interface TrialStartInput {
  studyId: string;
  number: number;
  params: JsonObject;
  jobId: string;
  /** Runs of this trial started so far, this one included (2 and more: retries). */
  run: number;
}

export interface TrialEndInput {
  studyId: string;
  number: number;
  state: Extract<TrialState, 'completed' | 'pruned' | 'failed' | 'stopped'>;
  value: number | null;
  error: string | null;
}

export function createStudyActivities(deps: ActivityDeps) {
  return {
    async startStudy(input: {
      studyId: string;
      name: string;
      spec: JsonObject;
      objective: { metric: string; direction: Direction };
    }): Promise<void> {
      await createStudy(deps.db, { id: input.studyId, name: input.name, spec: input.spec, objective: input.objective });
      await updateStudy(deps.db, input.studyId, { status: 'running' });
    },

    async startTrial(input: TrialStartInput): Promise<void> {
      await recordTrial(deps.db, { studyId: input.studyId, number: input.number, params: input.params });
      await updateTrial(deps.db, input.studyId, input.number, {
        state: 'running',
        jobId: input.jobId,
        // Cleared on a retry: the error belongs to the run that failed.
        ...(input.run > 1 ? { error: null } : {}),
        attempts: input.run,
      });
    },

    async endTrial(input: TrialEndInput): Promise<void> {
      await updateTrial(deps.db, input.studyId, input.number, {
        state: input.state,
        value: input.value,
        error: input.error,
      });
    },

    async setStudyStatus(input: { studyId: string; status: StudyStatus; stopReason?: string }): Promise<void> {
      await updateStudy(deps.db, input.studyId, {
        status: input.status,
        ...(input.stopReason !== undefined ? { stopReason: input.stopReason } : {}),
      });
    },
  };
}
