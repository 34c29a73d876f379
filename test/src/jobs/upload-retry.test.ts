// uploadCheckpoint retried after its worker died, or run after the job gave up on its checkpoint.
// The soak (test/src/faults/soak.test.ts) found a study stuck forever: a worker killed after marking
// the row uploaded and freeing the staged files, before Temporal heard, left every retry failing
// with ENOENT. And a host the job took for lost (training.job's CheckpointPipeline) may come back
// and run, or finish, an upload whose checkpoint was marked failed meanwhile. The real activity runs
// here against a real SQLite database and folder storage, inside Temporal's
// MockActivityEnvironment (the activity context: heartbeats, cancellation), calling it the way
// Temporal would.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createActivities, StorageCache } from '@keel/activities';
import type { StagedCheckpointEvent } from '@keel/activities/contract';
import { GpuSlots } from '@keel/activities/trainer';
import { createJob, getCheckpoint, type KeelDatabase, markCheckpoint, migrateDatabase, openDatabase } from '@keel/db';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-upload-retry-'));
fs.mkdirSync(path.join(home, 'bucket'));
const storageUri = pathToFileURL(path.join(home, 'bucket')).href;
let db: KeelDatabase;
let activities: ReturnType<typeof createActivities>;

beforeAll(async () => {
  db = await openDatabase({ url: `file:${path.join(home, 'keel.db')}` });
  await migrateDatabase(db);
  await createJob(db, { id: 'job-1', spec: {} });
  activities = createActivities({
    db,
    hostQueue: 'keel-host-test',
    workDir: path.join(home, 'work'),
    defaultStorageUri: storageUri,
    gpuSlots: new GpuSlots([]),
    trainers: new Set(),
    storages: new StorageCache(),
  });
});
afterAll(async () => {
  await db?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

/** Runs an activity as Temporal would, once. */
const runActivity = <A, R>(fn: (input: A) => Promise<R>, input: A, env = new MockActivityEnvironment()) =>
  env.run(fn, input) as Promise<R>;
const failureOf = (run: Promise<unknown>) =>
  run.then(
    () => new Error('it succeeded'),
    (e: Error) => e,
  );
/** The files under the checkpoint's folder in the bucket. */
const objectsAt = (uri: string) => {
  const dir = new URL(uri);
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
};
const lost =
  'host keel-host-test was lost before uploading it (attempt 1 stopped heartbeating; no worker polls its queue)';

/** A staged checkpoint of one file, recorded as pending, as the workflow hands it to the upload. */
async function staged(step: number) {
  const dir = path.join(home, 'work', 'job-1', 'attempt-1', 'staged', `step-${step}`);
  fs.mkdirSync(dir, { recursive: true });
  const bytes = crypto.randomBytes(4096);
  fs.writeFileSync(path.join(dir, 'model.pt'), bytes);
  const event: StagedCheckpointEvent = {
    attempt: 1,
    step,
    hostQueue: 'keel-host-test',
    dir,
    kind: 'file',
    name: 'model.pt',
    files: [{ path: 'model.pt', bytes: bytes.length }],
    bytes: bytes.length,
    metrics: {},
  };
  const { checkpointId, uri } = await runActivity(activities.recordStagedCheckpoint, {
    jobId: 'job-1',
    storageUri,
    staged: event,
  });
  return { input: { checkpointId, storageUri, uri, staged: event } };
}

test('a retry after the worker died past marking the row returns what the row says, instead of ENOENT forever', async () => {
  const { input } = await staged(2);
  const first = await runActivity(activities.uploadCheckpoint, input);
  expect(fs.existsSync(input.staged.dir)).toBe(false); // freed, as the worker did before it died
  expect((await getCheckpoint(db, input.checkpointId))?.status).toBe('uploaded');

  const retried = await runActivity(activities.uploadCheckpoint, input);
  expect(retried).toEqual(first);
});

test('staged files gone before their upload fail it for good, by name, so the checkpoint can be marked failed', async () => {
  const { input } = await staged(4);
  fs.rmSync(input.staged.dir, { recursive: true });
  const failure = await failureOf(runActivity(activities.uploadCheckpoint, input));
  expect(failure).toMatchObject({ type: 'StagedCheckpointMissing', nonRetryable: true });
  expect(failure.message).toContain('staged file model.pt of the checkpoint at step 4 is gone');
  expect((await getCheckpoint(db, input.checkpointId))?.status).toBe('pending');
});

test('an upload whose checkpoint was marked failed before it ran (its host taken for lost) uploads nothing and frees the staged files', async () => {
  const { input } = await staged(6);
  await markCheckpoint(db, input.checkpointId, 'failed', { reason: lost });
  const failure = await failureOf(runActivity(activities.uploadCheckpoint, input));
  expect(failure).toMatchObject({ type: 'CheckpointAbandoned', nonRetryable: true });
  expect(failure.message).toContain(`the checkpoint at step 6 was marked failed before its upload ended (${lost})`);
  expect(fs.existsSync(input.staged.dir)).toBe(false);
  expect(objectsAt(input.uri)).toEqual([]);
  expect(await getCheckpoint(db, input.checkpointId)).toMatchObject({ status: 'failed', failureReason: lost });
});

test('an upload whose checkpoint is marked failed while it runs removes what it wrote and its staged files; the row stays failed', async () => {
  const { input } = await staged(8);
  const env = new MockActivityEnvironment();
  let marked: Promise<unknown> | undefined;
  // The job gives up on the checkpoint while the bytes go out (the first progress heartbeat):
  // SQLite writes are queued in order, so this lands before the upload's own 'uploaded'.
  env.on('heartbeat', () => {
    marked ??= markCheckpoint(db, input.checkpointId, 'failed', { reason: lost });
  });
  const failure = await failureOf(runActivity(activities.uploadCheckpoint, input, env));
  expect(marked).toBeDefined();
  await marked;
  expect(failure).toMatchObject({ type: 'CheckpointAbandoned', nonRetryable: true });
  expect(fs.existsSync(input.staged.dir)).toBe(false);
  expect(objectsAt(input.uri)).toEqual([]);
  expect(await getCheckpoint(db, input.checkpointId)).toMatchObject({ status: 'failed', failureReason: lost });
});
