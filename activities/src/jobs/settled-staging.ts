// Staged copies whose checkpoint is settled: committed or collected (its upload frees them; a
// worker killed just after marking the row leaves them), or failed (most often: a job took this
// host for lost while it was away, marked what it staged failed and, the host not answering, sent
// nobody to remove the files). Nothing will read them again. Uploads only read the copies of
// pending checkpoints, and a copy with no row yet (staged, its record on the way) is left alone.
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Checkpoint, type KeelDatabase, listCheckpoints } from '@keel/db';

const settled = new Set<Checkpoint['status']>(['committed', 'gc', 'failed']);

/** Removes the staged copies of settled checkpoints under a worker's work dir; returns their paths. */
export async function removeSettledStaging(db: KeelDatabase, workDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const job of await entries(workDir)) {
    let rows: Checkpoint[] | undefined; // read once per job, only when it has staged copies
    for (const attempt of (await entries(path.join(workDir, job))).filter((a) => /^attempt-\d+$/.test(a))) {
      const stagingDir = path.join(workDir, job, attempt, 'staged');
      for (const step of (await entries(stagingDir)).filter((s) => /^step-\d+$/.test(s))) {
        rows ??= await listCheckpoints(db, decodeURIComponent(job));
        // The row's URI ends with checkpointPrefix(jobId, attempt, step): `<encoded job>/attempt-N/step-M`.
        const row = rows.find((r) => r.uri.endsWith(`/${job}/${attempt}/${step}`));
        if (!row || !settled.has(row.status)) continue;
        await fs.rm(path.join(stagingDir, step), { recursive: true, force: true });
        removed.push(path.join(stagingDir, step));
      }
    }
  }
  return removed;
}

const entries = (dir: string) => fs.readdir(dir).catch(() => [] as string[]);
