import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { getJob, listCheckpoints, openDatabase } from '@keel/db';
import { openStorage } from '@keel/storage';
import { type JobSpecInput, progressQuery, stopSignal, trainingJob } from '@keel/workflows';
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, inject, test, vi } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';

const services = inject('services');
const trainer = fileURLToPath(new URL('./fixtures/counting-trainer.ts', import.meta.url));

const worker = useInProcessWorker('job', services.temporal, async () => {
  const { minio } = services;
  vi.stubEnv('AWS_ACCESS_KEY_ID', minio.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', minio.secretAccessKey);
  vi.stubEnv('AWS_REGION', minio.region);
  vi.stubEnv('AWS_ENDPOINT_URL_S3', minio.endpoint);
  const s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: 'jobs' }));
  s3.destroy();
});
const { name } = worker;

const spec = (params: object, extra: Partial<JobSpecInput> = {}): JobSpecInput => ({
  command: [process.execPath, trainer],
  params: { checkpointEvery: 10, ...params },
  gpus: 0,
  gpuTaskQueue: `${name}-gpu`,
  ...extra,
});

const start = (workflowId: string, input: JobSpecInput) =>
  worker.client.workflow.start(trainingJob, { taskQueue: name, workflowId, args: [input] });

async function waitFor(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('trainingJob', () => {
  test('completes; every committed row has its object in storage with the same sha256, and no object lacks a row', async () => {
    const jobId = `complete-${Date.now()}`;
    const handle = await start(jobId, spec({ steps: 50 }, { storage: 's3://jobs/runs' }));
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', attempts: 1, step: 50, committedCheckpoints: 5 });

    const rows = await listCheckpoints(worker.keel.db, jobId);
    // Retention kept the newest 3; the first two were collected (objects deleted, rows gc).
    expect(rows.map((r) => [r.step, r.status])).toEqual([
      [10, 'gc'],
      [20, 'gc'],
      [30, 'committed'],
      [40, 'committed'],
      [50, 'committed'],
    ]);
    const objects: string[] = [];
    for await (const o of openStorage('s3://jobs/runs').list()) objects.push(o.key);
    const expected = [];
    for (const row of rows.filter((r) => r.status === 'committed')) {
      const storage = openStorage(row.uri);
      for (const file of row.files) {
        const head = await storage.head(file.path);
        expect(head?.sha256).toBe(file.sha256);
        expect(head?.bytes).toBe(file.bytes);
        expected.push(`${row.uri.slice('s3://jobs/runs/'.length)}/${file.path}`);
      }
    }
    expect(objects.sort()).toEqual(expected.sort());
    expect(await getJob(worker.keel.db, jobId)).toMatchObject({ status: 'completed', finalMetrics: { loss: 1 / 51 } });
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({
      status: 'completed',
      checkpoints: { staged: 5, committed: 5, failed: 0, collected: 2 },
    });
  });

  test('a trainer that keeps crashing is retried, then the job fails naming the exit code and its output', async () => {
    const jobId = `crash-${Date.now()}`;
    const handle = await start(jobId, spec({ steps: 50, crash: 'always' }, { failures: { maxFailures: 1 } }));
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const message = ((error as WorkflowFailedError).cause as Error).message;
    expect(message).toContain('failed 2 times (maxFailures 1)');
    expect(message).toContain('exit code 3');
    expect(message).toContain('boom at step 1');
    expect(await getJob(worker.keel.db, jobId)).toMatchObject({ status: 'failed' });
  });

  test('a crash mid-run resumes from the newest committed checkpoint and ends in the same state', async () => {
    const jobId = `resume-${Date.now()}`;
    const handle = await start(jobId, spec({ steps: 30, crash: 'first-attempt', delayMs: 20 }));
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', attempts: 2, step: 30 });
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ resumedFromStep: 10, failures: 1 });
    expect(progress.lastError).toContain('boom at step 15');
  });

  test('stop: the trainer saves a final checkpoint, it is committed, and the job ends stopped', async () => {
    const jobId = `stop-${Date.now()}`;
    const handle = await start(jobId, spec({ steps: 100000, checkpointEvery: 1000, delayMs: 5 }));
    await waitFor(async () => ((await handle.query(progressQuery)).step ?? 0) > 20, 'training to start');
    await handle.signal(stopSignal);
    expect(await handle.result()).toMatchObject({ status: 'stopped' });
    // The final checkpoint, at the step where the trainer stopped, is committed.
    const rows = await listCheckpoints(worker.keel.db, jobId);
    const last = rows[rows.length - 1];
    expect(rows.every((r) => r.status === 'committed')).toBe(true);
    expect(last?.step).toBeGreaterThan(20);
    expect(last?.step).not.toBe(1000 * rows.length);
    expect(await getJob(worker.keel.db, jobId)).toMatchObject({ status: 'stopped' });
  });

  test('cancel (temporal workflow cancel): final checkpoint committed, job recorded as cancelled', async () => {
    const jobId = `cancel-${Date.now()}`;
    const handle = await start(jobId, spec({ steps: 100000, checkpointEvery: 1000, delayMs: 5 }));
    await waitFor(async () => ((await handle.query(progressQuery)).step ?? 0) > 20, 'training to start');
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    const rows = await listCheckpoints(worker.keel.db, jobId);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.status === 'committed')).toBe(true);
    expect(await getJob(worker.keel.db, jobId)).toMatchObject({ status: 'cancelled' });
    expect((await handle.describe()).status.name).toBe('CANCELLED');
  });

  test('no GPU worker picks the job up in time: it moves to the fallback queue and completes there', async () => {
    const handle = await start(
      `fallback-${Date.now()}`,
      spec(
        { steps: 20 },
        { gpuTaskQueue: `nobody-serves-${name}`, fallbackTaskQueue: `${name}-gpu`, fallbackAfterSeconds: 1 },
      ),
    );
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 1, step: 20 });
    const progress = await handle.query(progressQuery);
    expect(progress.taskQueue).toBe(`${name}-gpu`);
    expect(progress.lastError).toContain(`no worker on nobody-serves-${name} took the job within 1s`);
  });

  test.each([
    // on-end: nothing during training; at the end the best (20) and the last (50).
    ['on-end', [20, 50], [10, 30, 40]],
    // best-and-last: each new best at once (10, then 20); of the rest only the last (50).
    ['best-and-last', [10, 20, 50], [30, 40]],
  ] as const)(
    'upload policy %s commits %j and marks the others failed with the policy as the reason',
    async (upload, kept, skipped) => {
      const jobId = `policy-${upload}-${Date.now()}`;
      const objective = { metric: 'loss', direction: 'minimize' } as const;
      const handle = await start(
        jobId,
        spec({ steps: 50, bestAt: 20 }, { checkpoints: { upload, objective, keepLast: 5 } }),
      );
      expect(await handle.result()).toMatchObject({
        status: 'completed',
        committedCheckpoints: kept.length,
        bestStep: 20,
      });
      const rows = await listCheckpoints(worker.keel.db, jobId);
      expect(rows.filter((r) => r.status === 'committed').map((r) => r.step)).toEqual([...kept]);
      const failed = rows.filter((r) => r.status === 'failed');
      expect(failed.map((r) => r.step)).toEqual([...skipped]);
      for (const row of failed) expect(row.failureReason).toContain(`upload: ${upload}`);
      expect(rows.find((r) => r.isBest)?.step).toBe(20);
    },
  );

  test('a hung trainer is killed after the progress timeout and the job carries on from its checkpoint', async () => {
    const jobId = `hang-${Date.now()}`;
    const handle = await start(
      jobId,
      spec({ steps: 20, checkpointEvery: 2, hang: true }, { timeouts: { progressSeconds: 10 } }),
    );
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 2, step: 20 });
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ failures: 1, resumedFromStep: 4 });
    expect(progress.lastError).toBe('the trainer was silent for 10s and was killed');
  });

  test('a bad spec is rejected at start, naming the field', async () => {
    const handle = await start(`bad-${Date.now()}`, { command: [], gpus: -1 } as JobSpecInput);
    const error = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error.cause as Error).message).toMatch(/invalid job spec:\n {2}- command: .*\n {2}- gpus: /);
  });
});

export { openDatabase };
