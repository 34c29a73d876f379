// PostgreSQL restarted mid-job (issue #7): the worker's database is a private cluster, stopped
// with a fast shutdown (SIGINT, as `pg_ctl -m fast`: every session is cut) right after the
// trainer's first ack, kept down for 10 s while the job trains and checkpoints, then started
// again on the same port. postgres.js reconnects on the next query; the writes that failed while
// it was down are retried by Temporal's activity retry: the job completes, every acked checkpoint
// is committed with its objects in storage, and nothing the trainer was not acked for is recorded.
// A second test stops the server while a worker waits on the migration lock: the wait fails (no
// hang), and after the restart the lock is free and migrating succeeds.
import fs from 'node:fs';
import { migrateDatabase, openDatabase, pendingMigrations } from '@keel/db';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import {
  checkCheckpointInvariants,
  type FaultWorker,
  readTrainerLog,
  startFaultWorker,
  startSteadyJob,
  waitFor,
} from '../harness/fault-job.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../harness/private-postgres.ts';
import { liveInGroup } from '../harness/processes.ts';

const services = inject('services');
const downSeconds = 10;
const migrationLockKey = 0x6b65656c; // db/src/migrate.ts

let pg: PrivatePostgres;
let worker: FaultWorker;
beforeAll(async () => {
  pg = await startPrivatePostgres();
  worker = await startFaultWorker('db-postgres', services.temporal, () => ({ databaseUrl: pg.url }));
});
afterAll(async () => {
  await worker?.close();
  if (worker?.home) fs.rmSync(worker.home, { recursive: true, force: true });
  const pid = pg?.pid;
  await pg?.close();
  if (pid) expect(liveInGroup(pid)).toEqual([]);
});

test('PostgreSQL restarted mid-job: activities retry, the job completes, nothing is lost', async () => {
  expect(worker.keel.db.dialect).toBe('postgres');
  const { jobId, handle, log } = await startSteadyJob(worker, 'pg-restart', { steps: 40, every: 2, stepMs: 250 });
  await waitFor('the first ack', () => fs.existsSync(log) && readTrainerLog(log).some((e) => e.reply?.type === 'ack'));
  const oldPid = pg.pid;
  await pg.stop('SIGINT');
  const downAt = Date.now();
  expect(liveInGroup(oldPid)).toEqual([]);
  await new Promise((r) => setTimeout(r, downSeconds * 1000));
  await pg.restart();
  const upAt = Date.now();

  expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 1, step: 40 });
  const events = readTrainerLog(log);
  const rows = await checkCheckpointInvariants(worker, jobId, events);
  expect(rows.filter((r) => r.status === 'committed').map((r) => r.step)).toEqual(
    Array.from({ length: 20 }, (_, i) => 2 * (i + 1)),
  );
  // Training went on while the database was down, and what was acked then was committed after.
  const ackedWhileDown = events.filter(
    (e) => e.reply?.type === 'ack' && (e.at as number) > downAt + 500 && (e.at as number) < upAt - 500,
  );
  expect(ackedWhileDown.length).toBeGreaterThan(0);
  for (const ack of ackedWhileDown) {
    const row = rows.find((r) => r.step === ack.checkpoint);
    expect(row?.committedAt?.getTime()).toBeGreaterThanOrEqual(upAt - 500);
  }
});

test('PostgreSQL restarted while a worker waits on the migration lock: the wait fails by name, then migrating works', async () => {
  // A database with no schema yet, and another session holding the migration lock.
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  await admin.unsafe('create database keel_migrate_lock');
  await admin.end();
  const url = pg.url.replace(/\/postgres$/, '/keel_migrate_lock');
  const holder = postgres(url, { max: 1, onnotice: () => {} });
  await holder`select pg_advisory_lock(${migrationLockKey})`;
  const db = await openDatabase({ url });
  try {
    const migrating = migrateDatabase(db).then(
      () => 'migrated',
      (err: Error) => err.message,
    );
    await new Promise((r) => setTimeout(r, 1000));
    await pg.stop('SIGINT');
    // The session waiting on the lock is cut: the migration fails, naming why, instead of hanging.
    expect(await migrating).toMatch(/terminat|shut|connect/i);
    await pg.restart();
    await holder.end({ timeout: 1 }).catch(() => {});
    // The old sessions, and the lock with them, are gone; the pool reconnects on its own.
    await migrateDatabase(db);
    expect(await pendingMigrations(db)).toBe(0);
  } finally {
    await db.close();
  }
});
