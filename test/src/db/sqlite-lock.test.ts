// Another process holds the SQLite write lock past keel's busy timeout. The writes made meanwhile
// must fail with a named error, and every write reported as done, during the lock or after it,
// must be in the file as another process reads it. (libsql loses the writes made after an
// autocommit write failed with SQLITE_BUSY; db/src/sqlite-writes.ts is how keel avoids it.)
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createJob, markCheckpoint, migrateDatabase, openDatabase, recordCheckpoint } from '@keel/db';
import { afterAll, expect, test } from 'vitest';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-sqlite-lock-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Takes the write lock on argv[1] for argv[2] seconds, saying when it has it.
const holdLock = `
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute('BEGIN IMMEDIATE')
print('locked', flush=True)
time.sleep(float(sys.argv[2]))
db.execute('COMMIT')
`;

test('writes that met another process lock fail by name; every write reported done is in the file', async () => {
  const file = path.join(dir, 'keel.db');
  const db = await openDatabase({ url: `file:${file}`, busyTimeoutMs: 300 });
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  try {
    await migrateDatabase(db);
    await createJob(db, { id: 'locked-job', spec: {} });
    const locker = spawn('python3', ['-c', holdLock, file, '1.5'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(locker, 'exit');
    await once(locker.stdout, 'data');

    const done: { id: number; uri: string; status: string }[] = [];
    const failures: string[] = [];
    let step = 0;
    let lockGone = false;
    void exited.then(() => (lockGone = true));
    loopDelay.enable();
    // Writes go on through the lock and after it, as a worker's would, until ten more have been
    // done once it was gone (or two hundred attempts, which the assertions below would catch).
    let doneAfterLock = 0;
    while (doneAfterLock < 10 && step < 200) {
      const afterLock = lockGone;
      step++;
      const uri = `file:///ckpt/${step}`;
      try {
        const row = await recordCheckpoint(db, { jobId: 'locked-job', step, uri, bytes: step, sha256: 'a'.repeat(64) });
        const write = { id: row.id, uri, status: 'pending' };
        done.push(write);
        await markCheckpoint(db, row.id, 'committed');
        write.status = 'committed';
        if (afterLock) doneAfterLock++;
      } catch (err) {
        failures.push((err as Error & { cause?: Error }).cause?.name ?? (err as Error).name); // Drizzle wraps it
      }
      await new Promise((r) => setTimeout(r, 40));
    }
    loopDelay.disable();
    expect((await exited)[0]).toBe(0);

    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures)).toEqual(new Set(['DatabaseBusyError']));
    expect(doneAfterLock).toBe(10);
    // What another process finds in the file: each reported write, with the id it was reported under.
    const { stdout } = await promisify(execFile)('python3', [
      '-c',
      `import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(json.dumps([{'id': r[0], 'uri': r[1], 'status': r[2]} for r in db.execute("select id, uri, status from checkpoints where job_id = 'locked-job' order by id")]))`,
      file,
    ]);
    const seen = JSON.parse(stdout);
    expect(seen).toEqual(expect.arrayContaining(done));
    console.log(
      `${done.length} writes done, ${failures.length} refused while locked; longest event-loop stall ` +
        `${Math.round(loopDelay.max / 1e6)} ms (busy timeout 300 ms)`,
    );
  } finally {
    await db.close();
  }
});
