// A trivial workflow runs on the real dev server through a real keel worker.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '@keel/client';
import { appliedMigrations, pendingMigrations } from '@keel/db';
import { createKeelWorker } from '@keel/workers';
import { smokeCheck } from '@keel/workflows';
import { KeelKind } from '@keel/workflows/search-attributes';
import { expect, inject, test } from 'vitest';
import { testWorkerConfig } from '../harness/workers.ts';

const { temporal } = inject('services');

test('smokeCheck runs through a real worker and returns what that worker saw', async () => {
  const taskQueue = `smoke-${process.pid}`;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-smoke-'));
  const keel = await createKeelWorker(testWorkerConfig(home, temporal, taskQueue));
  const { db } = keel;
  const client = await connectClient({
    connectionOptions: { address: temporal.address },
    namespace: temporal.namespace,
  });
  try {
    const workflowId = `smoke-${Date.now()}`;
    const result = await keel.runUntil(
      client.workflow.execute(smokeCheck, { taskQueue, workflowId, args: [{ message: 'ping' }] }),
    );
    expect(result).toMatchObject({ message: 'ping', workflowId });
    // The activity ran in this process's worker, on the queue the workflow was started on.
    expect(result.worker).toMatchObject({ pid: process.pid, taskQueue, nodeVersion: process.version });

    // The workflow tagged itself with keel's search attribute, which the server has registered.
    const description = await client.workflow.getHandle(workflowId).describe();
    expect(description.typedSearchAttributes.get(KeelKind)).toBe('smoke');

    // The worker brought its database schema up to date before it started.
    expect(await pendingMigrations(db)).toBe(0);
    expect(await appliedMigrations(db)).toBeGreaterThan(0);
  } finally {
    await client.connection.close();
    await keel.close();
    fs.rmSync(home, { recursive: true });
  }
});
