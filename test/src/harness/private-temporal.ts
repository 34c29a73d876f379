// A Temporal dev server of one test's own, keeping its state in a SQLite file, which the test may
// stop and start again on the same port (the state survives, as it does for `keel dev`), with its
// Web UI when asked for.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { devServerArgs, temporalAnswers } from '@keel/client/dev';
import { httpOk, type ManagedProcess, spawnManaged, stopManaged, waitUntilReady } from '@keel/client/processes';
import getPort from 'get-port';

export interface PrivateTemporal {
  address: string;
  namespace: string;
  /** The Web UI (http://127.0.0.1:<port>) when started with `{ ui: true }`; else undefined. */
  uiUrl: string | undefined;
  /** Stops the server (SIGTERM, or SIGKILL for a crash); its db file stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port over the same db file; waits until it answers. */
  restart(): Promise<void>;
  /** Stops it for good and deletes its folder. */
  close(): Promise<void>;
}

export interface PrivateTemporalOptions {
  /** Serve the Web UI too, on a free port (default: headless, as the shared test server is). */
  ui?: boolean;
}

export async function startPrivateTemporal(options: PrivateTemporalOptions = {}): Promise<PrivateTemporal> {
  const bin = process.env.KEEL_TEMPORAL_BIN;
  if (!bin) throw new Error("KEEL_TEMPORAL_BIN is not set. Fix: run the tests with 'npm test'.");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-temporal-'));
  const host = '127.0.0.1';
  const port = await getPort({ host });
  const address = `${host}:${port}`;
  const uiPort = options.ui ? await getPort({ host }) : undefined;
  const uiUrl = uiPort === undefined ? undefined : `http://${host}:${uiPort}`;
  const args = devServerArgs({
    ip: host,
    port,
    ui: uiPort ?? 'headless',
    logLevel: 'error',
    dbFile: path.join(dir, 'temporal.db'),
  });
  let proc: ManagedProcess | undefined;
  const start = async () => {
    proc = spawnManaged('Temporal dev server (private)', bin, args, { logFile: path.join(dir, 'server.log') });
    await waitUntilReady(proc, () => temporalAnswers(address));
    if (uiUrl) await waitUntilReady(proc, () => httpOk(uiUrl));
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc) await stopManaged(proc, signal);
    proc = undefined;
  };
  await start();
  return {
    address,
    namespace: 'default',
    uiUrl,
    stop,
    restart: start,
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
