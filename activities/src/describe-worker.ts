import os from 'node:os';
import { Context } from '@temporalio/activity';

export interface WorkerDescription {
  hostname: string;
  pid: number;
  nodeVersion: string;
  taskQueue: string;
}

/** Which worker process ran this activity: answers "is a worker really serving this queue?". */
export async function describeWorker(): Promise<WorkerDescription> {
  return {
    hostname: os.hostname(),
    pid: process.pid,
    nodeVersion: process.version,
    taskQueue: Context.current().info.taskQueue,
  };
}

export interface TaskQueuePollers {
  taskQueue: string;
  /** Workers that polled the queue for activities recently (Temporal keeps about 5 minutes). */
  pollers: { identity: string; lastAccessTime: string | null }[];
}

// The proto enums' values (@temporalio/proto is not a dependency of this package).
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;

/**
 * Who polls a task queue for activities, as Temporal's DescribeTaskQueue reports it: lets a job
 * whose attempt nobody takes say whether any worker serves that queue at all (a GPU class no host
 * has) or its workers are busy or gone. Runs with the worker's own client (same namespace).
 */
export async function describeTaskQueue(input: { taskQueue: string }): Promise<TaskQueuePollers> {
  const { client, info } = Context.current();
  const response = await client.workflowService.describeTaskQueue({
    namespace: info.workflowNamespace,
    taskQueue: { name: input.taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
    taskQueueType: TASK_QUEUE_TYPE_ACTIVITY,
  });
  return {
    taskQueue: input.taskQueue,
    pollers: (response.pollers ?? []).map((p) => ({
      identity: p.identity ?? '',
      lastAccessTime: p.lastAccessTime?.seconds
        ? new Date(Number(p.lastAccessTime.seconds) * 1000).toISOString()
        : null,
    })),
  };
}
