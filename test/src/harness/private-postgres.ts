// A PostgreSQL cluster of one test's own, which the test may stop (a fast shutdown, as `pg_ctl -m
// fast` does: SIGINT to the postmaster, every session cut) and start again on the same port over
// the same data folder, so clients see a database restart rather than a new server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ManagedProcess, spawnManaged, stopManaged, waitUntilReady } from '@keel/client/processes';
import { initPostgresCluster, postgresAnswers } from './services.ts';

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, loopback only). */
  url: string;
  /** The postmaster's process group (a new one after each restart). */
  readonly pid: number;
  /** Fast shutdown (SIGINT: sessions are terminated, no waiting for clients); waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port over the same data; waits until it answers. */
  restart(): Promise<void>;
  /** Stops it for good and deletes its folder. */
  close(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bindir = process.env.KEEL_PG_BINDIR;
  if (!bindir) throw new Error("KEEL_PG_BINDIR is not set. Fix: run the tests with 'npm test'.");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-pg-'));
  fs.chmodSync(dir, 0o755);
  const cluster = await initPostgresCluster(bindir, dir);
  const { url } = cluster;
  let proc: ManagedProcess | undefined;
  let last: ManagedProcess | undefined;
  const start = async () => {
    proc = spawnManaged('PostgreSQL (private)', cluster.postgres, cluster.args, cluster.spawnOptions);
    last = proc;
    await waitUntilReady(proc, () => postgresAnswers(url));
  };
  const stop = async (signal: NodeJS.Signals = 'SIGINT') => {
    if (proc) await stopManaged(proc, signal);
    proc = undefined;
  };
  try {
    await start();
  } catch (err) {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    get pid() {
      return (last as ManagedProcess).pid;
    },
    stop,
    async restart() {
      if (proc) throw new Error('PostgreSQL is still running: stop() it before restart()');
      await start();
    },
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
