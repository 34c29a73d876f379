// A keel worker inside a test file's own process, for the file's tests (vitest hooks: not part of
// the harness's index, which benchmarks import too).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '@keel/client';
import { createKeelWorker, type KeelWorker } from '@keel/workers';
import type { WorkerConfig } from '@keel/workers/config';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, vi } from 'vitest';
import type { ServiceEndpoints } from './services.ts';
import { testWorkerConfig } from './workers.ts';

export interface InProcessWorker {
  /** The worker's queue (workflows); `<name>-gpu` takes trainer launches. */
  name: string;
  home: string;
  config: WorkerConfig;
  keel: KeelWorker;
  client: Client;
}

/**
 * A keel worker in the test's own process for the whole file, on queues named for the file, with
 * its home in a temporary folder, and a client; both closed after the file's tests. `prepare`
 * runs first (e.g. to set the environment the worker reads).
 */
export function useInProcessWorker(
  prefix: string,
  temporal: ServiceEndpoints['temporal'],
  prepare?: () => void | Promise<void>,
): InProcessWorker {
  const worker = { name: `${prefix}-${process.pid}` } as InProcessWorker;
  let running: Promise<void> | undefined;
  beforeAll(async () => {
    await prepare?.();
    worker.home = fs.mkdtempSync(path.join(os.tmpdir(), `keel-${prefix}-`));
    worker.config = testWorkerConfig(worker.home, temporal, worker.name);
    worker.keel = await createKeelWorker(worker.config);
    running = worker.keel.run();
    worker.client = await connectClient({ connectionOptions: { address: temporal.address } });
  });
  afterAll(async () => {
    worker.keel?.shutdown();
    await running;
    await worker.keel?.close();
    await worker.client?.connection.close();
    vi.unstubAllEnvs();
    if (worker.home) fs.rmSync(worker.home, { recursive: true, force: true });
  });
  return worker;
}
