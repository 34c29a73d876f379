// Every activity a keel worker registers: createActivities builds them around the worker's
// database, storage, GPU slots and host queue. Workflows import only this module's types (and the
// pure names in ./jobs/contract.ts).
import { describeTaskQueue, describeWorker } from './describe-worker.ts';
import type { ActivityDeps } from './jobs/deps.ts';
import { createJobActivities } from './jobs/job-activities.ts';
import { createStudyActivities } from './studies/study-activities.ts';

export type { TaskQueuePollers, WorkerDescription } from './describe-worker.ts';
export { type ActivityDeps, StorageCache } from './jobs/deps.ts';
export { removeSettledStaging } from './jobs/settled-staging.ts';
export type { TrialEndInput, TrialStartInput } from './studies/study-activities.ts';
export type { RunningTrainer } from './trainer/launch.ts';

export function createActivities(deps: ActivityDeps) {
  return { describeWorker, describeTaskQueue, ...createJobActivities(deps), ...createStudyActivities(deps) };
}

export type KeelActivities = ReturnType<typeof createActivities>;
