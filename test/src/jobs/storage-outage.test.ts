// MinIO stopped for 30 s mid-training (issue #4): the trainer keeps stepping and staging
// checkpoints, their uploads fail and are retried by Temporal, and once MinIO is back every
// checkpoint is uploaded, verified and committed. The MinIO is the test's own (the harness's
// startPrivateMinio), killed with SIGKILL and restarted on the same port over the same data folder,
// so the shared server the other tests use is never disturbed.
import fs from 'node:fs';
import path from 'node:path';
import { getJob, listCheckpoints } from '@keel/db';
import { openStorage } from '@keel/storage';
import { progressQuery, trainingJob } from '@keel/workflows';
import { afterAll, expect, inject, test } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { useS3Environment } from '../harness/s3-env.ts';
import { type PrivateMinio, startPrivateMinio } from '../harness/services.ts';

const services = inject('services');
const trainer = path.resolve('examples/mlp/src/train.ts');
const storageUri = 's3://outage/runs';
const outageMs = 30_000;
let minio: PrivateMinio;

const worker = useInProcessWorker('outage', services.temporal, async () => {
  minio = await startPrivateMinio();
  await useS3Environment(minio.endpoint, 'outage');
});
const { name } = worker;

afterAll(async () => {
  await minio?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('MinIO stopped for 30 s mid-training: training goes on, uploads retry, all checkpoints commit', async () => {
  const jobId = `outage-${Date.now()}`;
  // About 45 s of training (2000 steps of ~21 ms), a checkpoint every ~2 s: the outage covers most.
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        params: { seed: 5, steps: 2000, checkpointEvery: 100, evalEvery: 100, stepDelayMs: 20 },
        storage: storageUri,
        gpus: 0,
        gpuTaskQueue: `${name}-gpu`,
        // Keep every checkpoint, so each one that was staged can be checked committed at the end.
        checkpoints: { keepLast: 1000 },
        timeouts: { heartbeatSeconds: 10 },
      },
    ],
  });

  // The first checkpoint is committed: MinIO works. Then it goes down.
  for (let i = 0; (await handle.query(progressQuery)).newestCommittedStep === null; i++) {
    if (i > 300) throw new Error('no checkpoint was committed within 30 s');
    await sleep(100);
  }
  await minio.stop('SIGKILL');
  const down = await handle.query(progressQuery);
  const stoppedAt = Date.now();

  // During the outage: training goes on (new checkpoints staged), nothing new commits, and the
  // uploads fail and are retried.
  await sleep(outageMs - 5_000);
  const during = await handle.query(progressQuery);
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  const uploads = pending.filter((a) => a.activityType?.name === 'uploadCheckpoint');
  await sleep(Math.max(0, stoppedAt + outageMs - Date.now()));
  const beforeRestart = await handle.query(progressQuery);
  await minio.restart();
  const downForMs = Date.now() - stoppedAt;

  expect(beforeRestart.status).toBe('running');
  expect(during.step ?? 0).toBeGreaterThan((down.step ?? 0) + 500); // ~25 s of steps at ~21 ms
  expect(beforeRestart.checkpoints.staged).toBeGreaterThan(down.checkpoints.staged + 5);
  // Commits that were already past their upload may land just after the stop; none after that.
  expect(beforeRestart.checkpoints.committed).toBe(during.checkpoints.committed);
  expect(beforeRestart.checkpoints.failed).toBe(0);
  expect(uploads.length).toBeGreaterThan(0);
  expect(Math.max(...uploads.map((a) => a.attempt ?? 0))).toBeGreaterThan(1);
  expect(uploads.map((a) => a.lastFailure?.message ?? '').join('\n')).toMatch(/\S/);

  // MinIO is back: the job completes and every staged checkpoint is committed.
  const result = await handle.result();
  const finishedAfterRestartMs = Date.now() - stoppedAt - downForMs;
  expect(result).toMatchObject({ status: 'completed', attempts: 1, step: 2000 });
  const progress = await handle.query(progressQuery);
  expect(progress.checkpoints).toMatchObject({ staged: 20, committed: 20, failed: 0, collected: 0 });
  expect(progress.failedCheckpoints).toEqual([]);
  expect(await getJob(worker.keel.db, jobId)).toMatchObject({ status: 'completed' });

  const rows = await listCheckpoints(worker.keel.db, jobId);
  expect(rows.map((r) => r.step)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 100));
  expect(rows.every((r) => r.status === 'committed')).toBe(true);
  // Each row's objects are in MinIO with the sha256 on record (metadata and bytes), and no
  // object lacks its row.
  const storage = openStorage(storageUri);
  const downloads = fs.mkdtempSync(path.join(worker.home, 'downloads-'));
  const expected: string[] = [];
  try {
    for (const row of rows) {
      const rowStorage = openStorage(row.uri);
      try {
        for (const file of row.files) {
          const head = await rowStorage.head(file.path);
          expect(head?.sha256).toBe(file.sha256);
          expect(head?.bytes).toBe(file.bytes);
          const got = await rowStorage.get(file.path, path.join(downloads, String(row.step), file.path));
          expect(got.sha256).toBe(file.sha256);
          expected.push(`${row.uri.slice(`${storageUri}/`.length)}/${file.path}`);
        }
      } finally {
        await rowStorage.close();
      }
    }
    const objects: string[] = [];
    for await (const o of storage.list()) objects.push(o.key);
    expect(objects.sort()).toEqual(expected.sort());
  } finally {
    await storage.close();
  }

  // The uploads that ran into the outage were retried by Temporal (attempt > 1 in the history).
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  let retriedUploads = 0;
  let maxAttempt = 0;
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), s.activityType?.name ?? '');
    const started = event.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId)) === 'uploadCheckpoint') {
      const attempt = started.attempt ?? 1;
      if (attempt > 1) retriedUploads += 1;
      maxAttempt = Math.max(maxAttempt, attempt);
    }
  }
  expect(retriedUploads).toBeGreaterThan(0);
  console.log(
    `storage outage: MinIO down ${(downForMs / 1000).toFixed(1)}s from step ${down.step} to step ${beforeRestart.step} ` +
      `(${beforeRestart.checkpoints.staged - down.checkpoints.staged} checkpoints staged meanwhile); ` +
      `${retriedUploads} uploads retried, up to attempt ${maxAttempt}; job done ${(finishedAfterRestartMs / 1000).toFixed(1)}s after the restart. ` +
      `Upload failures seen during the outage:\n${uploads.map((a) => `  attempt ${a.attempt}: ${a.lastFailure?.message}`).join('\n')}`,
  );
}, 150_000);
