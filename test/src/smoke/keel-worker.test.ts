// `keel worker` as a fleet host runs it: configured only by the environment, stopped by SIGTERM.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '@keel/client';
import { openDatabase, pendingMigrations } from '@keel/db';
import { smokeCheck } from '@keel/workflows';
import { expect, inject, test } from 'vitest';
import { freshDatabase } from '../harness/databases.ts';

const { temporal, postgres } = inject('services');

test('keel worker serves the queue named by KEEL_TASK_QUEUE on TEMPORAL_ADDRESS with DATABASE_URL, and SIGTERM stops it cleanly', async () => {
  const database = await freshDatabase('postgres', postgres.url);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-worker-cli-'));
  const taskQueue = `keel-worker-cli-${process.pid}`;
  const child = spawn(process.execPath, [path.resolve('client/src/cli.ts'), 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      KEEL_TASK_QUEUE: taskQueue,
      DATABASE_URL: database.url,
      KEEL_HOME: home,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');

  const client = await connectClient({ connectionOptions: { address: temporal.address }, namespace: 'default' });
  try {
    const result = await client.workflow.execute(smokeCheck, {
      taskQueue,
      workflowId: `keel-worker-cli-${Date.now()}`,
      args: [{ message: 'fleet' }],
    });
    expect(result.worker).toMatchObject({ pid: child.pid, taskQueue });
    expect(output).toContain(`keel worker: serving task queues '${taskQueue}', 'keel-gpu', 'keel-host-`);
    expect(output).toContain(`on ${temporal.address} (namespace default)`);
    expect(output).toContain(`database ${database.url} (postgres)`);
    // The worker migrated the fleet's database before it took work.
    const db = await openDatabase({ url: database.url });
    expect(await pendingMigrations(db)).toBe(0);
    await db.close();
  } finally {
    await client.connection.close();
  }

  child.kill('SIGTERM');
  const [code, signal] = await exited;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  await database.drop();
  fs.rmSync(home, { recursive: true, force: true });
});
