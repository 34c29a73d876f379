// MinIO down at the moment a job resumes: the trainer crashed (SIGKILL) while storage was stopped,
// so the next attempt cannot fetch its checkpoint. It waits for storage (heartbeating) instead of
// failing, so the outage does not use up the job's crash budget: with maxFailures 1, the crash
// takes the one allowed failure, and the job still completes once MinIO is back, resumed from the
// checkpoint it could not fetch at first.
import { progressQuery, trainingJob } from '@keel/workflows';
import { afterAll, expect, inject, test } from 'vitest';
import { trainerProcesses, waitFor } from '../harness/fault-job.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { useS3Environment } from '../harness/s3-env.ts';
import { type PrivateMinio, startPrivateMinio } from '../harness/services.ts';

const services = inject('services');
const trainer = new URL('../../../examples/mlp/src/train.ts', import.meta.url).pathname;
const bucket = 'restore';
let minio: PrivateMinio;

const worker = useInProcessWorker('storage-restore', services.temporal, async () => {
  minio = await startPrivateMinio();
  await useS3Environment(minio.endpoint, bucket);
});
afterAll(async () => {
  await minio?.close();
});

test('storage down when a crashed job resumes: the attempt waits for it; the crash budget is not spent on the outage', async () => {
  const jobId = `restore-${Date.now()}`;
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        params: { seed: 5, steps: 1200, checkpointEvery: 100, evalEvery: 100, stepDelayMs: 20 },
        storage: `s3://${bucket}/job`,
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        failures: { maxFailures: 1 },
        timeouts: { heartbeatSeconds: 10 },
      },
    ],
  });
  await waitFor('a committed checkpoint', async () => (await handle.query(progressQuery)).newestCommittedStep !== null);
  await minio.stop();
  const committedBefore = (await handle.query(progressQuery)).newestCommittedStep;
  for (const pid of trainerProcesses(jobId)) process.kill(pid, 'SIGKILL');

  // The next attempt starts and cannot restore; storage stays down well past the crash backoff.
  await waitFor('the second attempt', async () => (await handle.query(progressQuery)).attempt === 2);
  await new Promise((r) => setTimeout(r, 8000));
  const during = await handle.query(progressQuery);
  expect(during).toMatchObject({ status: 'running', attempt: 2, failures: 1 });
  await minio.restart();

  const result = await handle.result();
  expect(result).toMatchObject({ status: 'completed', attempts: 2, step: 1200 });
  const after = await handle.query(progressQuery);
  expect(after.failures).toBe(1);
  expect(after.resumedFromStep).toBe(committedBefore);
});
