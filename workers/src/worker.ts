import { createRequire } from 'node:module';
import * as activities from '@keel/activities';
import { type KeelDatabase, migrateDatabase, openDatabase } from '@keel/db';
import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerConfig } from './config.ts';

const require = createRequire(import.meta.url);
/** The workflows module; Temporal bundles it into its deterministic sandbox at worker start. */
const workflowsPath = require.resolve('@keel/workflows');

export interface KeelWorker {
  worker: Worker;
  connection: NativeConnection;
  db: KeelDatabase;
  /** Closes the Temporal connection and the database, once the worker has stopped. */
  close(): Promise<void>;
}

/**
 * Opens the database and brings its schema up to date (safe when several workers start at once),
 * then connects to Temporal and creates a worker serving keel's workflows and activities.
 */
export async function createKeelWorker(config: WorkerConfig): Promise<KeelWorker> {
  const db = await openDatabase({ url: config.databaseUrl });
  let connection: NativeConnection | undefined;
  try {
    await migrateDatabase(db);
    connection = await NativeConnection.connect(config.temporal.connectionOptions);
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace ?? 'default',
      taskQueue: config.taskQueue,
      workflowsPath,
      activities,
    });
    const opened = connection;
    return { worker, connection, db, close: async () => Promise.all([opened.close(), db.close()]).then(() => {}) };
  } catch (err) {
    await connection?.close();
    await db.close();
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
