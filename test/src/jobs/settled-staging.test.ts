// A host removes the staged copies of settled checkpoints (activities/src/jobs/settled-staging.ts,
// swept every few seconds by each worker). The case it is for: a job took the host for lost while
// it was away (a restart slower than the job's look for it, a network cut that healed), marked
// what the host staged failed and sent nobody to remove the files. The soak found one such copy.
// A real SQLite database and real folders; the rows are made as the activities make them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeSettledStaging } from '@keel/activities';
import {
  createJob,
  type KeelDatabase,
  markCheckpoint,
  migrateDatabase,
  openDatabase,
  recordCheckpoint,
} from '@keel/db';
import { afterAll, beforeAll, expect, test } from 'vitest';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-settled-'));
const workDir = path.join(home, 'work');
const jobId = 'study 1/trial-0'; // a job id that needs encoding, as folder and key segment
let db: KeelDatabase;

beforeAll(async () => {
  db = await openDatabase({ url: `file:${path.join(home, 'keel.db')}` });
  await migrateDatabase(db);
  await createJob(db, { id: jobId, spec: {} });
});
afterAll(async () => {
  await db?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

/** A staged copy on this host, with (unless `status` is undefined) its row in that state. */
async function staged(attempt: number, step: number, status?: 'pending' | 'uploaded' | 'committed' | 'failed') {
  const dir = path.join(workDir, encodeURIComponent(jobId), `attempt-${attempt}`, 'staged', `step-${step}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.pt'), 'weights');
  if (!status) return dir;
  const uri = `file:///bucket/${encodeURIComponent(jobId)}/attempt-${attempt}/step-${step}`;
  const row = await recordCheckpoint(db, { jobId, step, uri, bytes: 7, kind: 'file' });
  if (status === 'uploaded' || status === 'committed') await markCheckpoint(db, row.id, 'uploaded', { sha256: 'x' });
  if (status === 'committed') await markCheckpoint(db, row.id, 'committed');
  if (status === 'failed') await markCheckpoint(db, row.id, 'failed', { reason: 'host keel-host-b was lost' });
  return dir;
}

test('the copies of failed and committed checkpoints go; pending, uploaded, unrecorded and half-built ones stay', async () => {
  const failed = await staged(1, 5, 'failed');
  const committed = await staged(1, 10, 'committed');
  const pending = await staged(2, 5, 'pending');
  const uploaded = await staged(2, 10, 'uploaded'); // its commit is on the way
  const unrecorded = await staged(2, 15); // staged, its record on the way
  const building = path.join(workDir, encodeURIComponent(jobId), 'attempt-2', 'staged', '.step-20.building-1');
  fs.mkdirSync(building, { recursive: true });

  expect((await removeSettledStaging(db, workDir)).sort()).toEqual([failed, committed].sort());
  for (const gone of [failed, committed]) expect(fs.existsSync(gone), gone).toBe(false);
  for (const kept of [pending, uploaded, unrecorded, building]) expect(fs.existsSync(kept), kept).toBe(true);
  // Nothing more to do the second time.
  expect(await removeSettledStaging(db, workDir)).toEqual([]);
});

test('a work dir that does not exist yet is nothing to sweep', async () => {
  expect(await removeSettledStaging(db, path.join(home, 'no-such-dir'))).toEqual([]);
});
