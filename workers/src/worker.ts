import { createRequire } from 'node:module';
import * as activities from '@keel/activities';
import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerConfig } from './config.ts';

const require = createRequire(import.meta.url);
/** The workflows module; Temporal bundles it into its deterministic sandbox at worker start. */
const workflowsPath = require.resolve('@keel/workflows');

export interface KeelWorker {
  worker: Worker;
  connection: NativeConnection;
}

/** Connects to Temporal and creates a worker serving keel's workflows and activities. */
export async function createKeelWorker(config: WorkerConfig): Promise<KeelWorker> {
  const connection = await NativeConnection.connect(config.temporal.connectionOptions);
  try {
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace ?? 'default',
      taskQueue: config.taskQueue,
      workflowsPath,
      activities,
    });
    return { worker, connection };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

export interface RuntimeOptions {
  /** Temporal SDK log level (default INFO; the bundler's output is INFO). */
  logLevel?: LogLevel;
  /** Let the runtime shut workers down on SIGINT/SIGTERM (default true). Processes that stop
   *  their workers themselves, like `keel dev`, turn this off. */
  handleSignals?: boolean;
}

/** Configures Temporal's process-wide runtime; call once, before the first worker is created. */
export function configureRuntime({ logLevel = 'INFO', handleSignals = true }: RuntimeOptions): void {
  Runtime.install({
    logger: new DefaultLogger(logLevel),
    ...(handleSignals ? {} : { shutdownSignals: [] }),
  });
}
