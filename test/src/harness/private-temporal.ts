// A Temporal dev server of one test's own, keeping its state in a SQLite file, which the test may
// stop and start again on the same port (the state survives, as it does for `keel dev`).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { devServerArgs, temporalAnswers } from '@keel/client/dev';
import { type ManagedProcess, spawnManaged, stopManaged, waitUntilReady } from '@keel/client/processes';
import getPort from 'get-port';

export interface PrivateTemporal {
  address: string;
  namespace: string;
  /** Stops the server (SIGTERM, or SIGKILL for a crash); its db file stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port over the same db file; waits until it answers. */
  restart(): Promise<void>;
  /** Stops it for good and deletes its folder. */
  close(): Promise<void>;
}

export async function startPrivateTemporal(): Promise<PrivateTemporal> {
  const bin = process.env.KEEL_TEMPORAL_BIN;
  if (!bin) throw new Error("KEEL_TEMPORAL_BIN is not set. Fix: run the tests with 'npm test'.");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-temporal-'));
  const host = '127.0.0.1';
  const port = await getPort({ host });
  const address = `${host}:${port}`;
  const args = devServerArgs({
    ip: host,
    port,
    ui: 'headless',
    logLevel: 'error',
    dbFile: path.join(dir, 'temporal.db'),
  });
  let proc: ManagedProcess | undefined;
  const start = async () => {
    proc = spawnManaged('Temporal dev server (private)', bin, args, { logFile: path.join(dir, 'server.log') });
    await waitUntilReady(proc, () => temporalAnswers(address));
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc) await stopManaged(proc, signal);
    proc = undefined;
  };
  await start();
  return {
    address,
    namespace: 'default',
    stop,
    restart: start,
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
