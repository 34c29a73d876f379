// A committed checkpoint corrupted in storage and the one before it deleted, before a resume
// (issue #7), on the shared MinIO. The trainer is frozen (SIGSTOP) once checkpoints are committed,
// so nothing moves while storage is tampered with; then it is killed, and the next attempt's
// restore must find both bad by checksum / absence, mark them failed with the reason, fall back to
// the committed checkpoint before them, and the job's progress must say so while it runs.
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { listCheckpoints } from '@keel/db';
import { progressQuery, trainingJob } from '@keel/workflows';
import { expect, inject, test } from 'vitest';
import { checkCheckpointInvariants, trainerProcesses, waitFor } from '../harness/fault-job.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { useS3Environment } from '../harness/s3-env.ts';

const services = inject('services');
const trainer = new URL('../../../examples/mlp/src/train.ts', import.meta.url).pathname;
const bucket = `corrupt-${process.pid}`;

const worker = useInProcessWorker('storage-corrupt', services.temporal, async () => {
  await useS3Environment(services.minio, bucket);
});

test('a corrupted and a deleted committed checkpoint: resume falls back past both, marks them failed, progress says so', async () => {
  const jobId = `corrupt-${Date.now()}`;
  const storageUri = `s3://${bucket}/runs`;
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        params: { seed: 11, steps: 1200, checkpointEvery: 100, evalEvery: 100, stepDelayMs: 10 },
        storage: storageUri,
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        checkpoints: { keepLast: 1000 },
        failures: { maxFailures: 2 },
      },
    ],
  });
  await waitFor('three checkpoints committed', async () => {
    return ((await handle.query(progressQuery)).newestCommittedStep ?? 0) >= 300;
  });
  const pids = trainerProcesses(jobId);
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  // Everything it staged is committed before storage is touched.
  await waitFor('every staged checkpoint committed', async () => {
    const p = await handle.query(progressQuery);
    return p.checkpoints.committed === p.checkpoints.staged && p.checkpoints.uploading === 0;
  });
  const committed = (await listCheckpoints(worker.keel.db, jobId)).filter((r) => r.status === 'committed');
  expect(committed.length).toBeGreaterThanOrEqual(3);
  const [fallback, deleted, corrupted] = committed.slice(-3);
  if (!fallback || !deleted || !corrupted) throw new Error('unreachable');

  const s3 = new S3Client({});
  const objectKey = (uri: string, file: string) => `${uri.slice(`s3://${bucket}/`.length)}/${file}`;
  try {
    // Corrupt: other bytes under the same key, keeping the sha256 metadata (bit rot, a bad copy).
    const file = corrupted.files[0];
    if (!file) throw new Error('no file');
    const key = objectKey(corrupted.uri, file.path);
    const original = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from((await original.Body?.transformToByteArray()) ?? []);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, Metadata: original.Metadata }));
    // Delete: one object of the checkpoint before it.
    const lost = deleted.files[0];
    if (!lost) throw new Error('no file');
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(deleted.uri, lost.path) }));
  } finally {
    s3.destroy();
  }

  // The trainer dies; the next attempt restores.
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await waitFor(
    'progress shows the skipped checkpoints while attempt 2 runs',
    async () => (await handle.query(progressQuery)).failedCheckpoints.length === 2,
    60_000,
  );
  const running = await handle.query(progressQuery);
  expect(running.attempt).toBe(2);
  expect(running.failedCheckpoints).toEqual([
    { step: corrupted.step, reason: expect.stringMatching(/^restore failed: .*sha256 mismatch/) },
    { step: deleted.step, reason: expect.stringMatching(/^restore failed: .*no object with key/) },
  ]);
  expect(running.lastError).toContain(`step ${deleted.step} could not be restored`);

  const result = await handle.result();
  expect(result).toMatchObject({ status: 'completed', attempts: 2, step: 1200 });
  const progress = await handle.query(progressQuery);
  expect(progress.resumedFromStep).toBe(fallback.step);
  expect(progress.failures).toBe(1);
  expect(progress.failedCheckpoints.map((f) => f.step)).toEqual([corrupted.step, deleted.step]);
  // The failed checkpoints' objects (the corrupt one's, what was left of the deleted one's) were
  // deleted when they were marked: storage holds the committed rows' objects and nothing else.
  const rows = await checkCheckpointInvariants(worker, jobId, undefined, { progress, noOrphansIn: storageUri });
  const byId = (id: number) => rows.find((r) => r.id === id);
  expect(byId(corrupted.id)).toMatchObject({ status: 'failed', failureReason: expect.stringContaining('sha256') });
  expect(byId(deleted.id)).toMatchObject({ status: 'failed', failureReason: expect.stringContaining('no object') });
  expect(byId(fallback.id)?.status).toBe('committed');
  // Attempt 2 trained on from the fallback and committed its own checkpoints after it.
  const second = rows.filter((r) => r.uri.includes('/attempt-2/'));
  expect(second[0]?.step).toBe(fallback.step + 100);
  expect(second.every((r) => r.status === 'committed')).toBe(true);
}, 120_000);
