// A worker killed with SIGKILL mid-training (its trainer dies with it, as on a lost pod): after
// the heartbeat timeout the job resumes on another worker from the newest committed checkpoint
// and ends in exactly the state of a run that was never interrupted. The trainer is the example
// MLP (examples/mlp), whose final weights are bit-identical for a seed however often it resumes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '@keel/client';
import { listCheckpoints, openDatabase } from '@keel/db';
import { progressQuery, trainingJob } from '@keel/workflows';
import { afterAll, expect, inject, test } from 'vitest';
import { killTree, startWorkerProcess } from '../harness/worker-process.ts';
import { testWorkerConfig } from '../harness/workers.ts';

const services = inject('services');
const trainer = path.resolve('examples/mlp/src/train.ts');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-worker-death-'));
const name = `death-${process.pid}`;
const config = testWorkerConfig(home, services.temporal, name);
const children: number[] = [];

afterAll(() => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  fs.rmSync(home, { recursive: true, force: true });
});

function startWorker() {
  const worker = startWorkerProcess(config);
  children.push(worker.child.pid as number);
  return worker;
}

test('kill -9 of the worker mid-training: the job resumes from the newest committed checkpoint on a new worker, identical result', async () => {
  const params = { seed: 3, steps: 400, checkpointEvery: 50, evalEvery: 50 };
  // The reference: the same trainer and seed, never interrupted, without keel.
  const referenceOutput = execFileSync(process.execPath, [trainer], {
    env: { ...process.env, KEEL_PARAMS: JSON.stringify(params), KEEL_CHECKPOINT_DIR: path.join(home, 'reference') },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const reference = finalLine(referenceOutput);

  const first = startWorker();
  const client = await connectClient({ connectionOptions: { address: services.temporal.address } });
  try {
    const handle = await client.workflow.start(trainingJob, {
      taskQueue: name,
      workflowId: `worker-death-${Date.now()}`,
      args: [
        {
          command: [process.execPath, trainer],
          params: { ...params, stepDelayMs: 15 },
          gpus: 0,
          gpuTaskQueue: config.gpuTaskQueue,
          timeouts: { heartbeatSeconds: 5 },
        },
      ],
    });
    let committedBeforeKill = 0;
    for (let i = 0; i < 600 && committedBeforeKill < 100; i++) {
      committedBeforeKill = (await handle.query(progressQuery)).newestCommittedStep ?? 0;
      await new Promise((r) => setTimeout(r, 100));
    }
    killTree(first.child.pid as number);
    startWorker();

    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', attempts: 2, step: 400 });
    const progress = await handle.query(progressQuery);
    expect(progress.preemptions).toBe(1);
    expect(progress.resumedFromStep).toBeGreaterThanOrEqual(committedBeforeKill);
    expect(progress.resumedFromStep).toBeLessThan(400);
    expect(progress.lastError).toContain('stopped heartbeating');
    // Bit-identical to the uninterrupted run: the same weights and the same final metrics.
    const log = path.join(config.workDir, encodeURIComponent(handle.workflowId), 'attempt-2', 'trainer.log');
    const resumed = finalLine(fs.readFileSync(log, 'utf8'));
    expect(resumed.weightsSha256).toBe(reference.weightsSha256);
    expect(resumed.final).toEqual(reference.final);
    expect(result.finalMetrics).toMatchObject(reference.final);

    // Nothing acked vanished: every checkpoint is committed, collected, or failed with a reason.
    const db = await openDatabase({ url: config.databaseUrl });
    const rows = await listCheckpoints(db, handle.workflowId);
    await db.close();
    for (const row of rows) {
      expect(['committed', 'gc', 'failed']).toContain(row.status);
      if (row.status === 'failed') expect(row.failureReason).toBeTruthy();
    }
  } finally {
    await client.connection.close();
  }
});

function finalLine(output: string): { final: Record<string, number>; weightsSha256: string } {
  const line = output
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"final"'));
  if (!line) throw new Error(`no final line in:\n${output.slice(-2000)}`);
  return JSON.parse(line);
}
