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
