// The GCS emulator (fake-gcs-server) down for 20 s mid-training (issue #7), on the test's own
// server (startPrivateFakeGcs): training goes on, uploads retry once it is back, and the
// invariants hold (checkStorageInvariants, harness/fault-job.ts).
import { Storage as GcsClient } from '@google-cloud/storage';
import { progressQuery, trainingJob } from '@keel/workflows';
import { afterAll, expect, inject, test, vi } from 'vitest';
import { checkStorageInvariants, waitFor } from '../harness/fault-job.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { type PrivateFakeGcs, startPrivateFakeGcs } from '../harness/services.ts';

const services = inject('services');
const trainer = new URL('../../../examples/mlp/src/train.ts', import.meta.url).pathname;
const bucket = 'faults-gcs';
let gcs: PrivateFakeGcs;

const worker = useInProcessWorker('storage-gcs', services.temporal, async () => {
  gcs = await startPrivateFakeGcs();
  // As a worker would be configured: KEEL_GCS_ENDPOINT (see storage/README.md on STORAGE_EMULATOR_HOST).
  vi.stubEnv('STORAGE_EMULATOR_HOST', undefined);
  vi.stubEnv('KEEL_GCS_ENDPOINT', gcs.endpoint.endpoint);
  const client = new GcsClient({ apiEndpoint: gcs.endpoint.endpoint, projectId: gcs.endpoint.projectId });
  await client.createBucket(bucket);
});

afterAll(async () => {
  await gcs?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fake-gcs-server down for 20 s: training goes on, uploads retry after the restart, all commit', async () => {
  const jobId = `gcs-down-${Date.now()}`;
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        params: { seed: 7, steps: 1200, checkpointEvery: 100, evalEvery: 100, stepDelayMs: 20 },
        storage: `gs://${bucket}/runs`,
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        checkpoints: { keepLast: 1000 },
        timeouts: { heartbeatSeconds: 10 },
      },
    ],
  });
  await waitFor('the first checkpoint committed', async () => {
    return (await handle.query(progressQuery)).newestCommittedStep !== null;
  });
  await gcs.stop();
  const stoppedAt = Date.now();
  const before = await handle.query(progressQuery);
  await sleep(20_000);
  const during = await handle.query(progressQuery);
  await gcs.restart();
  const restartedAt = Date.now();

  expect(during.status).toBe('running');
  expect(during.step ?? 0).toBeGreaterThan((before.step ?? 0) + 500);
  expect(during.checkpoints.staged).toBeGreaterThan(before.checkpoints.staged + 5);
  expect(during.checkpoints.committed).toBeLessThanOrEqual(before.checkpoints.committed + 1);
  expect(during.checkpoints.failed).toBe(0);

  const result = await handle.result();
  expect(result).toMatchObject({ status: 'completed', attempts: 1, step: 1200 });
  const progress = await handle.query(progressQuery);
  expect(progress.checkpoints).toMatchObject({ staged: 12, committed: 12, failed: 0 });
  expect(progress.failedCheckpoints).toEqual([]);
  await checkStorageInvariants(worker, jobId, progress);
  console.log(
    `fake-gcs down ${((restartedAt - stoppedAt) / 1000).toFixed(1)} s; the job completed ` +
      `${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart`,
  );
}, 120_000);
