// A study outlives its processes: mid-study, the worker is killed with SIGKILL (trainers and all)
// and the Temporal dev server is stopped, then both come back (the server from its db file, the
// worker as a new process). The study finishes with every trial accounted for, and the trials that
// were running resume from their checkpoints instead of starting over.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '@keel/client';
import { listTrials, openDatabase } from '@keel/db';
import { hpoStudy, progressQuery, studyProgressQuery } from '@keel/workflows';
import { afterAll, expect, test, vi } from 'vitest';
import { type PrivateTemporal, startPrivateTemporal } from '../harness/private-temporal.ts';
import { killTree, startWorkerProcess } from '../harness/worker-process.ts';
import { testWorkerConfig } from '../harness/workers.ts';

const trainer = path.resolve('test/src/studies/fixtures/objective_trainer.py');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-study-survives-'));
const name = `survive-${process.pid}`;
const pids: number[] = [];
let temporal: PrivateTemporal | undefined;

afterAll(async () => {
  for (const pid of pids) killTree(pid);
  await temporal?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

test('the study survives kill -9 of its worker and a restart of the dev server, and accounts for every trial', async () => {
  temporal = await startPrivateTemporal();
  const config = testWorkerConfig(home, { address: temporal.address, namespace: temporal.namespace }, name);
  pids.push(startWorkerProcess(config).child.pid as number);
  const connect = () => connectClient({ connectionOptions: { address: (temporal as PrivateTemporal).address } });
  let client = await connect();
  const studyId = `survive-${Date.now()}`;
  const handle = await client.workflow.start(hpoStudy, {
    taskQueue: name,
    workflowId: studyId,
    args: [
      {
        space: { x: { type: 'float', low: -1, high: 1 }, y: { type: 'float', low: -1, high: 1 } },
        objective: { metric: 'loss', direction: 'minimize' },
        nTrials: 5,
        maxConcurrency: 2,
        sampler: { type: 'random' },
        trial: {
          command: ['python3', trainer],
          env: { PYTHONPATH: path.resolve('sdk/python/src') },
          params: { steps: 60, delay_ms: 100, checkpoint_every: 5 },
          gpus: 0,
          gpuTaskQueue: config.gpuTaskQueue,
          timeouts: { heartbeatSeconds: 5 },
        },
      },
    ],
  });
  // Wait until a trial has ended and another is midway (a checkpoint or more, far from its end).
  let running: string[] = [];
  await vi.waitFor(
    async () => {
      const p = await handle.query(studyProgressQuery);
      expect(p.counts.completed).toBeGreaterThanOrEqual(1);
      running = [];
      for (const t of p.trials.filter((t) => t.state === 'running')) {
        const job = await client.workflow.getHandle(t.jobId).query(progressQuery);
        if ((job.step ?? 0) >= 10 && (job.step ?? 0) <= 40) running.push(t.jobId);
      }
      expect(running.length).toBeGreaterThanOrEqual(1);
    },
    { timeout: 60_000, interval: 200 },
  );

  killTree(pids[0] as number);
  await client.connection.close();
  await temporal.stop();
  await temporal.restart();
  pids.push(startWorkerProcess(config).child.pid as number);
  client = await connect();

  const result = await client.workflow.getHandle(studyId).result();
  expect(result.status).toBe('completed');
  expect(result.counts.completed).toBe(5);
  // The trials that were running went on from a checkpoint after the worker died.
  for (const jobId of running) {
    const job = await client.workflow.getHandle(jobId).query(progressQuery);
    expect(job.status).toBe('completed');
    expect(job.preemptions).toBeGreaterThanOrEqual(1);
    expect(job.resumedFromStep).toBeGreaterThanOrEqual(5);
  }
  const db = await openDatabase({ url: config.databaseUrl });
  try {
    const trials = await listTrials(db, studyId);
    expect(trials.map((t) => [t.number, t.state])).toEqual([0, 1, 2, 3, 4].map((n) => [n, 'completed']));
  } finally {
    await db.close();
    await client.connection.close();
  }
}, 240_000);
