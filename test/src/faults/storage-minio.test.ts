import { openStorage, StorageError } from '@keel/storage';
import { progressQuery, trainingJob } from '@keel/workflows';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, expect, inject, test } from 'vitest';
import { checkStorageInvariants, waitFor } from '../harness/fault-job.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { useS3Environment } from '../harness/s3-env.ts';
import { type PrivateMinio, startPrivateMinio } from '../harness/services.ts';

const services = inject('services');
const trainer = new URL('../../../examples/mlp/src/train.ts', import.meta.url).pathname;
const bucket = 'faults';
let minio: PrivateMinio;

const worker = useInProcessWorker('storage-minio', services.temporal, async () => {
  minio = await startPrivateMinio();
  await useS3Environment(minio.endpoint, bucket);
});

afterAll(async () => {
  await minio?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startJob(name: string, steps: number) {
  const jobId = `${name}-${Date.now()}`;
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        // ~21 ms a step, a checkpoint every ~2 s.
        params: { seed: 3, steps, checkpointEvery: 100, evalEvery: 100, stepDelayMs: 20 },
        storage: `s3://${bucket}/${name}`,
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        checkpoints: { keepLast: 1000 }, // keep every one, so each staged one can be checked
        timeouts: { heartbeatSeconds: 10 },
      },
    ],
  });
  await waitFor('the first checkpoint committed', async () => {
    return (await handle.query(progressQuery)).newestCommittedStep !== null;
  });
  return { jobId, handle };
}

/** Upload attempts after the first, from the history (each a retry by Temporal). */
async function retriedUploads(handle: WorkflowHandle) {
  const scheduled = new Map<string, string>();
  let retried = 0;
  for (const event of (await handle.fetchHistory()).events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), s.activityType?.name ?? '');
    const started = event.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId)) === 'uploadCheckpoint' && (started.attempt ?? 1) > 1)
      retried += 1;
  }
  return retried;
}

test('MinIO hung (SIGSTOP) for 40 s: requests time out instead of waiting, training goes on, all commit after', async () => {
  const { jobId, handle } = await startJob('hung', 2000);
  minio.pause();
  const pausedAt = Date.now();
  const before = await handle.query(progressQuery);
  try {
    // The client's idle timeout at work (shortened here): a request to the hung server fails,
    // named, instead of waiting for an answer that never comes. Before the fix it hung until SIGCONT.
    const probe = openStorage(`s3://${bucket}/probe`, { s3: { idleTimeoutMs: 1000, connectTimeoutMs: 1000 } });
    const started = Date.now();
    const error = await probe.head('nothing').catch((e: unknown) => e);
    await probe.close();
    expect(error).toBeInstanceOf(StorageError);
    expect(String((error as Error).message)).toMatch(/timed out after 1000 ms of inactivity/);
    expect(Date.now() - started).toBeLessThan(15_000); // the SDK's 3 attempts of 1 s idle each, with backoff

    await sleep(Math.max(0, pausedAt + 38_000 - Date.now()));
    const during = await handle.query(progressQuery);
    expect(during.status).toBe('running');
    expect(during.step ?? 0).toBeGreaterThan((before.step ?? 0) + 1000); // ~38 s of steps at ~21 ms
    expect(during.checkpoints.staged).toBeGreaterThan(before.checkpoints.staged + 10);
    expect(during.checkpoints.committed).toBeLessThanOrEqual(before.checkpoints.committed + 1); // one may have been past its upload
    expect(during.checkpoints.failed).toBe(0);
  } finally {
    minio.resume();
  }
  const result = await handle.result();
  expect(result).toMatchObject({ status: 'completed', attempts: 1, step: 2000 });
  const progress = await handle.query(progressQuery);
  expect(progress.checkpoints).toMatchObject({ staged: 20, committed: 20, failed: 0, collected: 0 });
  expect(progress.failedCheckpoints).toEqual([]);
  const rows = await checkStorageInvariants(worker, jobId, progress);
  expect(rows.map((r) => r.step)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 100));
  const retried = await retriedUploads(handle);
  expect(retried).toBeGreaterThan(0);
  console.log(`MinIO hung 40 s: ${retried} upload attempts were retries; all 20 checkpoints committed`);
}, 120_000);

test('MinIO down (SIGKILL) for 60 s: training goes on, uploads retry after the restart, all commit', async () => {
  const { jobId, handle } = await startJob('down', 1500); // ~32 s of training: it ends during the outage
  await minio.stop('SIGKILL');
  const stoppedAt = Date.now();
  const before = await handle.query(progressQuery);
  await sleep(30_000);
  const during = await handle.query(progressQuery);
  await sleep(Math.max(0, stoppedAt + 60_000 - Date.now()));
  const beforeRestart = await handle.query(progressQuery);
  await minio.restart();
  const restartedAt = Date.now();

  expect(during.step ?? 0).toBeGreaterThan((before.step ?? 0) + 700);
  expect(beforeRestart.checkpoints.staged).toBe(15); // training ended while the store was down
  expect(beforeRestart.status).toBe('running'); // waiting for its uploads, not failed
  expect(beforeRestart.checkpoints.committed).toBe(during.checkpoints.committed);
  expect(beforeRestart.checkpoints.failed).toBe(0);

  const result = await handle.result();
  expect(result).toMatchObject({ status: 'completed', attempts: 1, step: 1500 });
  const progress = await handle.query(progressQuery);
  expect(progress.checkpoints).toMatchObject({ staged: 15, committed: 15, failed: 0 });
  await checkStorageInvariants(worker, jobId, progress);
  expect(await retriedUploads(handle)).toBeGreaterThan(0);
  console.log(
    `MinIO down 60 s: the job completed ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart`,
  );
}, 150_000);
