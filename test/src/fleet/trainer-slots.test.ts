// Trainer slots across hosts: a host takes only as many trainer launches as it has slots (one per
// GPU), so a job started while its GPUs are busy stays queued for any host with a free one,
// instead of being taken by the busy host and waiting there while another host idles. Two keel
// workers in this process, each with one GPU named by KEEL_GPUS (this machine has none: the
// devices are named, not found by nvidia-smi; the scheduling is keel's and Temporal's own).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectClient } from '@keel/client';
import { createKeelWorker, type KeelWorker } from '@keel/workers';
import { type JobSpecInput, trainingJob } from '@keel/workflows';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, expect, inject, test, vi } from 'vitest';
import { testWorkerConfig } from '../harness/workers.ts';

const services = inject('services');
const trainer = fileURLToPath(new URL('../jobs/fixtures/device-trainer.ts', import.meta.url));
const name = `slots-${process.pid}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-slots-'));
const databaseUrl = `file:${path.join(home, 'keel.db')}`;
const logFile = path.join(home, 'held.jsonl');
let client: Client;
const hosts: { keel: KeelWorker; running: Promise<void>; workDir: string }[] = [];

/** A worker with one GPU on its own host queue and work dir, sharing the queues and database. */
async function startHost(id: string) {
  const config = testWorkerConfig(path.join(home, id), services.temporal, name, {
    databaseUrl,
    hostId: id,
    hostTaskQueue: `${name}-host-${id}`,
  });
  const keel = await createKeelWorker(config);
  const host = { keel, running: keel.run(), workDir: config.workDir };
  hosts.push(host);
  return host;
}

const start = (label: string, holdMs: number) => {
  const spec: JobSpecInput = {
    command: [process.execPath, trainer],
    params: { label, logFile, holdMs },
    gpus: 1,
    gpuTaskQueue: `${name}-gpu`,
  };
  return client.workflow.start(trainingJob, { taskQueue: name, workflowId: `${name}-${label}`, args: [spec] });
};
const started = () => (fs.existsSync(`${logFile}.started`) ? fs.readFileSync(`${logFile}.started`, 'utf8') : '');

beforeAll(async () => {
  vi.stubEnv('KEEL_GPUS', '0');
  client = await connectClient({ connectionOptions: { address: services.temporal.address } });
});
afterAll(async () => {
  for (const h of hosts) h.keel.shutdown();
  for (const h of hosts) {
    await h.running;
    await h.keel.close();
  }
  await client?.connection.close();
  vi.unstubAllEnvs();
  fs.rmSync(home, { recursive: true, force: true });
});

test('a host with its one GPU busy leaves the next job queued, and a host that comes takes it at once', async () => {
  const first = await startHost('a');
  expect(first.keel.host.trainerSlots).toBe(1);
  const a = await start('a', 20_000);
  await vi.waitFor(() => expect(started()).toContain('a'), { timeout: 30_000, interval: 100 });

  // Host a's slot is taken: b's launch is not handed to it (it would wait there for the GPU).
  const b = await start('b', 1_000);
  const launchOf = async () =>
    (await b.describe()).raw.pendingActivities?.find((p) => p.activityType?.name === 'runTrainer');
  await vi.waitFor(async () => expect(await launchOf()).toBeDefined(), { timeout: 15_000, interval: 100 });
  for (let look = 0; look < 10; look++) {
    const launch = await launchOf();
    // Scheduled (1), never started (2) by host a; no heartbeat ('waiting for GPUs') from it.
    expect(launch?.state, 'state of b’s runTrainer').toBe(1);
    expect(launch?.heartbeatDetails).toBeFalsy();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // A second host comes: it takes b while a still trains on the first.
  const second = await startHost('b');
  await b.result();
  const held = fs
    .readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { label: string; startedAt: number; endedAt: number });
  expect(held.map((h) => h.label)).toEqual(['b']); // b is done, a still holds its GPU
  expect(started().trim().split('\n')).toEqual(['a', 'b']);
  expect(fs.existsSync(path.join(second.workDir, encodeURIComponent(b.workflowId)))).toBe(true);
  expect(fs.existsSync(path.join(first.workDir, encodeURIComponent(b.workflowId)))).toBe(false);
  await a.result();
}, 120_000);
