// The invariants the storage fault tests (storage-*.test.ts) check after each fault, for jobs of
// the example MLP trainer (examples/mlp), which keel acks for every checkpoint it stages:
// - every acked checkpoint (each one the workflow counted staged) has a row, committed, collected
//   or failed with a reason, and each failed one is in the progress query's failedCheckpoints;
// - every committed row's objects are in storage with the row's sha256 (metadata, and the bytes
//   downloaded and hashed);
// - the job ended (the caller awaited its result) and no trainer process is left.
import fs from 'node:fs';
import path from 'node:path';
import { listCheckpoints } from '@keel/db';
import { openStorage } from '@keel/storage';
import type { JobProgress } from '@keel/workflows';
import { expect } from 'vitest';
import type { InProcessWorker } from '../harness/in-process-worker.ts';

export async function checkStorageInvariants(worker: InProcessWorker, jobId: string, progress: JobProgress) {
  expect(['completed', 'failed', 'stopped', 'cancelled']).toContain(progress.status);
  const rows = await listCheckpoints(worker.keel.db, jobId);
  expect(rows.length, 'a row for every staged (acked) checkpoint').toBe(progress.checkpoints.staged);
  for (const row of rows) {
    expect(['committed', 'gc', 'failed'], `step ${row.step} ended ${row.status}`).toContain(row.status);
    if (row.status === 'failed') {
      expect(row.failureReason, `failed step ${row.step} has a reason`).toBeTruthy();
      expect(progress.failedCheckpoints.map((f) => f.step)).toContain(row.step);
    }
  }
  expect(progress.checkpoints.committed).toBe(rows.filter((r) => r.status === 'committed').length);
  expect(progress.checkpoints.failed).toBe(rows.filter((r) => r.status === 'failed').length);
  const downloads = fs.mkdtempSync(path.join(worker.home, 'verify-'));
  try {
    for (const row of rows.filter((r) => r.status === 'committed')) {
      const storage = openStorage(row.uri);
      try {
        for (const file of row.files) {
          const head = await storage.head(file.path);
          expect(head?.sha256, `${row.uri}/${file.path}`).toBe(file.sha256);
          expect(head?.bytes).toBe(file.bytes);
          const got = await storage.get(file.path, path.join(downloads, String(row.id), file.path));
          expect(got.sha256).toBe(file.sha256);
        }
      } finally {
        await storage.close();
      }
    }
  } finally {
    fs.rmSync(downloads, { recursive: true, force: true });
  }
  expect(worker.keel.deps.trainers.size).toBe(0);
  expect(trainerProcesses(jobId), 'trainer processes left').toEqual([]);
  for (const w of worker.keel.workers) expect(w.getState()).toBe('RUNNING');
  return rows;
}

/** Live processes whose environment names this job (KEEL_JOB_ID): trainers and anything they forked. */
export function trainerProcesses(jobId: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if ('ZX'.includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3))) continue;
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (env.split('\0').includes(`KEEL_JOB_ID=${jobId}`)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Waits until `ready()` holds, polling every 100 ms, or throws naming `what`. */
export async function waitFor(what: string, ready: () => Promise<boolean>, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
