// smokeCheck: the smallest end-to-end proof that a client, the Temporal server and a keel worker
// (its workflow and activity sides) are wired together. Used by the demo and the smoke tests.

import type { KeelActivities, WorkerDescription } from '@keel/activities';
import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { KeelKind } from './search-attributes.ts';

export interface SmokeCheckInput {
  message: string;
}

export interface SmokeCheckResult {
  message: string;
  workflowId: string;
  worker: WorkerDescription;
}

const { describeWorker } = proxyActivities<KeelActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

export async function smokeCheck(input: SmokeCheckInput): Promise<SmokeCheckResult> {
  upsertSearchAttributes([{ key: KeelKind, value: 'smoke' }]);
  const worker = await describeWorker();
  return { message: input.message, workflowId: workflowInfo().workflowId, worker };
}
