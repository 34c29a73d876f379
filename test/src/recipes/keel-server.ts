// What a person has after `npm run keel -- dev`, for the recipe tests: a Temporal dev server of the
// test file's own (optionally with its Web UI) and a keel worker in the test's process serving the
// real queue names (`keel`, `keel-gpu`), so documented commands and specs run unchanged. A private
// server keeps `temporal workflow list` answers to the file's own workflows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '@keel/client';
import { createKeelWorker, type KeelWorker } from '@keel/workers';
import { KEEL_GPU_TASK_QUEUE, KEEL_TASK_QUEUE } from '@keel/workflows';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll } from 'vitest';
import { type PrivateTemporal, startPrivateTemporal } from '../harness/private-temporal.ts';
import { testWorkerConfig } from '../harness/workers.ts';

export interface KeelServer {
  temporal: PrivateTemporal;
  /** The worker's home: its SQLite database and checkpoints. */
  home: string;
  keel: KeelWorker;
  client: Client;
}

/** Starts the server and the worker before the file's tests, and stops both after them. */
export function useKeelServer(options: { ui?: boolean } = {}): KeelServer {
  const server = {} as KeelServer;
  let running: Promise<void> | undefined;
  beforeAll(async () => {
    server.temporal = await startPrivateTemporal({ ui: options.ui ?? false });
    server.home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-recipes-'));
    const config = testWorkerConfig(server.home, server.temporal, KEEL_TASK_QUEUE);
    if (config.gpuTaskQueue !== KEEL_GPU_TASK_QUEUE) throw new Error(`unexpected GPU queue ${config.gpuTaskQueue}`);
    server.keel = await createKeelWorker(config);
    running = server.keel.run();
    server.client = await connectClient({ connectionOptions: { address: server.temporal.address } });
  });
  afterAll(async () => {
    server.keel?.shutdown();
    await running;
    await server.keel?.close();
    await server.client?.connection.close();
    await server.temporal?.close();
    if (server.home) fs.rmSync(server.home, { recursive: true, force: true });
  });
  return server;
}
