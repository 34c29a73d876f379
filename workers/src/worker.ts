import { createRequire } from 'node:module';
import { type ActivityDeps, createActivities, StorageCache } from '@keel/activities';
import { detectGpus, GpuSlots } from '@keel/activities/trainer';
import { type KeelDatabase, migrateDatabase, openDatabase } from '@keel/db';
import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerConfig } from './config.ts';

const require = createRequire(import.meta.url);
/** The workflows module; Temporal bundles it into its deterministic sandbox at worker start. */
const workflowsPath = require.resolve('@keel/workflows');

export interface KeelWorker {
  /** One Temporal worker per queue this process serves: main (workflows, records), GPU, host. */
  workers: Worker[];
  connection: NativeConnection;
  db: KeelDatabase;
  deps: ActivityDeps;
  run(): Promise<void>;
  runUntil<T>(until: Promise<T>): Promise<T>;
  /** Preempts running trainers (they save and exit), then shuts every worker down. */
  shutdown(): void;
  /** Closes the Temporal connection, storage clients and the database, once the workers stopped. */
  close(): Promise<void>;
}

/** How long a stopping worker lets trainers save and uploads finish before cancelling them. */
const shutdownGraceTime = 120_000; // ms

/**
 * Opens the database and brings its schema up to date (safe when several workers start at once),
 * then connects to Temporal and creates the workers for the main queue, the GPU queue and this
 * host's queue, all sharing one set of activities.
 */
export async function createKeelWorker(config: WorkerConfig): Promise<KeelWorker> {
  const db = await openDatabase({ url: config.databaseUrl });
  const storages = new StorageCache();
  let connection: NativeConnection | undefined;
  try {
    await migrateDatabase(db);
    connection = await NativeConnection.connect(config.temporal.connectionOptions);
    const deps: ActivityDeps = {
      db,
      hostQueue: config.hostTaskQueue,
      workDir: config.workDir,
      defaultStorageUri: config.storageUri,
      gpuSlots: new GpuSlots(detectGpus()),
      trainers: new Set(),
      storages,
    };
    const activities = createActivities(deps);
    const common = {
      connection,
      namespace: config.temporal.namespace ?? 'default',
      activities,
      shutdownGraceTime,
      // Heartbeats are how a running attempt learns it was stopped or cancelled: send them often
      // enough that a stop takes seconds, not the default's tens of seconds.
      maxHeartbeatThrottleInterval: 2_000,
    };
    const workers = [
      await Worker.create({
        ...common,
        taskQueue: config.taskQueue,
        workflowsPath,
        // A workflow's next task first goes to the worker that ran the last one. If that worker
        // was killed (a lost pod), the task waits this long before any worker may take it: the
        // SDK's 10 s would add 10 s to every resume after a dead worker.
        stickyQueueScheduleToStartTimeout: '3 seconds',
      }),
      await Worker.create({ ...common, taskQueue: config.gpuTaskQueue }),
      await Worker.create({ ...common, taskQueue: config.hostTaskQueue }),
    ];
    const opened = connection;
    return {
      workers,
      connection,
      db,
      deps,
      run: () => Promise.all(workers.map((w) => w.run())).then(() => {}),
      runUntil: async (until) => {
        const [result] = await Promise.all([until, ...workers.map((w) => w.runUntil(until))]);
        return result;
      },
      shutdown() {
        for (const trainer of deps.trainers) trainer.stop('preempt');
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      },
      close: async () => {
        await Promise.all([opened.close(), storages.close()]);
        await db.close();
      },
    };
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
  const print = new DefaultLogger(logLevel);
  Runtime.install({
    // The GPU and host workers serve activities only, by design; the SDK warns about each.
    logger: new DefaultLogger(logLevel, (entry) => {
      if (entry.message !== 'No workflows registered, not polling for workflow tasks')
        print.log(entry.level, entry.message, entry.meta);
    }),
    ...(handleSignals ? {} : { shutdownSignals: [] }),
  });
}
