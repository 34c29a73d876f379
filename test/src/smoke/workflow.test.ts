// A trivial workflow runs on the real dev server through a real keel worker.
import { connectClient } from '@keel/client';
import { createKeelWorker } from '@keel/workers';
import { smokeCheck } from '@keel/workflows';
import { KeelKind } from '@keel/workflows/search-attributes';
import { expect, inject, test } from 'vitest';

const { temporal } = inject('services');

test('smokeCheck runs through a real worker and returns what that worker saw', async () => {
  const taskQueue = `smoke-${process.pid}`;
  const { worker, connection } = await createKeelWorker({
    temporal: { connectionOptions: { address: temporal.address }, namespace: temporal.namespace },
    taskQueue,
  });
  const client = await connectClient({
    connectionOptions: { address: temporal.address },
    namespace: temporal.namespace,
  });
  try {
    const workflowId = `smoke-${Date.now()}`;
    const result = await worker.runUntil(
      client.workflow.execute(smokeCheck, { taskQueue, workflowId, args: [{ message: 'ping' }] }),
    );
    expect(result).toMatchObject({ message: 'ping', workflowId });
    // The activity ran in this process's worker, on the queue the workflow was started on.
    expect(result.worker).toMatchObject({ pid: process.pid, taskQueue, nodeVersion: process.version });

    // The workflow tagged itself with keel's search attribute, which the server has registered.
    const description = await client.workflow.getHandle(workflowId).describe();
    expect(description.typedSearchAttributes.get(KeelKind)).toBe('smoke');
  } finally {
    await client.connection.close();
    await connection.close();
  }
});
