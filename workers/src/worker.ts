import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { type ActivityDeps, createActivities, removeSettledStaging, StorageCache } from '@keel/activities';
import { detectGpus, GpuSlots, removeInterruptedStaging } from '@keel/activities/trainer';
import { type KeelDatabase, migrateDatabase, openDatabase } from '@keel/db';
import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { WorkerConfig } from './config.ts';
import { heartbeatWhileRunning } from './heartbeat-while-running.ts';
import { describeHost, type HostInventory } from './host.ts';
import { addProcessMetrics, createKeelMetrics, type KeelMetrics } from './metrics.ts';
import { type Health, type MetricsServer, startMetricsServer } from './metrics-server.ts';

const require = createRequire(import.meta.url);
/** The workflows module; Temporal bundles it into its deterministic sandbox at worker start. */
const workflowsPath = require.resolve('@keel/workflows');

export interface KeelWorker {
  /** One Temporal worker per queue this process serves: main (workflows, records), GPU, host. */
  workers: Worker[];
  connection: NativeConnection;
  db: KeelDatabase;
  deps: ActivityDeps;
  /** keel's Prometheus registry for this worker (served at /metrics when config.metrics is set). */
  metrics: KeelMetrics;
  /** This host: its name, GPU class, launch queue and GPUs. */
  host: HostInventory;
  /** `http://host:port/metrics` when config.metrics is set (the port picked, if 0 was asked). */
  metricsUrl?: string;
  /** What /healthz answers: ok while every worker runs and Temporal answers. */
  health(): Promise<Health>;
  run(): Promise<void>;
  runUntil<T>(until: Promise<T>): Promise<T>;
  /** Preempts running trainers (they save and exit), then shuts every worker down. */
  shutdown(): void;
  /** Closes the Temporal connection, storage clients and the database, once the workers stopped. */
  close(): Promise<void>;
}

/** How often a worker removes the staged copies of settled checkpoints (removeSettledStaging). */
const sweepStagingMs = 10_000;

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
  let server: MetricsServer | undefined;
  try {
    await migrateDatabase(db);
    connection = await NativeConnection.connect(config.temporal.connectionOptions);
    const host = describeHost(config, process.env, detectGpus());
    // Stagings cut short by a killed worker on this host whose jobs went on elsewhere: nobody
    // else will clear them (an attempt clears only its own job's).
    await removeInterruptedStagingIn(config.workDir);
    const deps: ActivityDeps = {
      db,
      hostQueue: config.hostTaskQueue,
      workDir: config.workDir,
      defaultStorageUri: config.storageUri,
      gpuSlots: new GpuSlots(host.gpus),
      trainers: new Set(),
      storages,
    };
    const metrics = createKeelMetrics(deps, host);
    deps.metrics = metrics.job;
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
        interceptors: { activity: [heartbeatWhileRunning] },
      }),
      await Worker.create({
        ...common,
        taskQueue: config.gpuTaskQueue,
        // A host takes only the launches it can run now; the rest stay queued for any host
        // with a free slot, instead of waiting here for a GPU while another host idles.
        ...(host.trainerSlots !== null ? { maxConcurrentActivityTaskExecutions: host.trainerSlots } : {}),
      }),
      await Worker.create({ ...common, taskQueue: config.hostTaskQueue }),
    ];
    const opened = connection;
    const sweeper = sweepSettledStaging(db, config.workDir, metrics.job.pendingUploads);
    let shuttingDown = false;
    const health = () => workerHealth(opened, workers, shuttingDown, deps, host);
    if (config.metrics) {
      addProcessMetrics(metrics.registry);
      server = await startMetricsServer({ ...config.metrics, registry: metrics.registry, temporalMetricsUrl, health });
    }
    const metricsServer = server;
    return {
      workers,
      connection,
      db,
      deps,
      metrics,
      host,
      ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
      health,
      run: () => Promise.all(workers.map((w) => w.run())).then(() => {}),
      runUntil: async (until) => {
        const [result] = await Promise.all([until, ...workers.map((w) => w.runUntil(until))]);
        return result;
      },
      shutdown() {
        if (shuttingDown) return;
        shuttingDown = true;
        for (const trainer of deps.trainers) trainer.stop('preempt');
        // No new trainers here; but the checkpoints the stopping trainers save, and any staged
        // ones not yet uploaded, exist only on this host: keep serving its queue (and workflow
        // tasks, which schedule those uploads) until they are uploaded or the drain time is up.
        const [main, gpu, host] = workers as [Worker, Worker, Worker];
        if (gpu.getState() === 'RUNNING') gpu.shutdown();
        void drained(deps, metrics.job.pendingUploads, config.drainSeconds ?? defaultDrainSeconds).then(() => {
          for (const w of [main, host]) if (w.getState() === 'RUNNING') w.shutdown();
        });
      },
      close: async () => {
        clearInterval(sweeper);
        await metricsServer?.close();
        await Promise.all([opened.close(), storages.close()]);
        await db.close();
      },
    };
  } catch (err) {
    await server?.close();
    await connection?.close();
    await db.close();
    throw err;
  }
}

/** How long a stopping worker waits for its trainers' last checkpoints to upload (KEEL_DRAIN_SECONDS). */
export const defaultDrainSeconds = 90;

/** Resolves once no trainer runs and nothing staged here waits for upload, or after `seconds`. */
async function drained(deps: ActivityDeps, pendingUploads: Set<string>, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline && (deps.trainers.size > 0 || pendingUploads.size > 0)) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Healthy while every Temporal worker of this process runs and the Temporal frontend answers (a
 * cheap call, at most 3 s); not once shutdown began, or when a worker failed or stopped.
 */
async function workerHealth(
  connection: NativeConnection,
  workers: Worker[],
  shuttingDown: boolean,
  deps: ActivityDeps,
  host: HostInventory,
): Promise<Health> {
  const states = Object.fromEntries(workers.map((w) => [w.options.taskQueue, w.getState()]));
  const details = {
    host: host.hostId,
    workers: states,
    gpus: {
      total: deps.gpuSlots.devices.length,
      busy: deps.gpuSlots.devices.length - deps.gpuSlots.freeCount,
      class: host.gpuClass,
      models: host.models,
    },
    trainers: deps.trainers.size,
  };
  const notOk = (reason: string): Health => ({ ok: false, reason, ...details });
  const failed = Object.entries(states).find(([, state]) => state === 'FAILED');
  if (failed) return notOk(`the worker of task queue '${failed[0]}' failed`);
  if (shuttingDown) return notOk('shutting down');
  const stopped = Object.entries(states).find(([, state]) => state !== 'RUNNING');
  if (stopped) {
    const [queue, state] = stopped;
    return notOk(
      state === 'INITIALIZED' ? 'starting' : `the worker of task queue '${queue}' is ${state.toLowerCase()}`,
    );
  }
  try {
    await connection.withDeadline(Date.now() + 3000, () => connection.workflowService.getSystemInfo({}));
  } catch (err) {
    return notOk(`Temporal does not answer: ${(err as Error).message}`);
  }
  return { ok: true, ...details };
}

/** Where Core serves Temporal's metrics, when configureRuntime was asked to export them. */
let temporalMetricsUrl: string | undefined;

export interface RuntimeOptions {
  /** Temporal SDK log level (default INFO; the bundler's output is INFO). */
  logLevel?: LogLevel;
  /** Let the runtime shut workers down on SIGINT/SIGTERM (default true). Processes that stop
   *  their workers themselves, like `keel dev`, turn this off. */
  handleSignals?: boolean;
  /** host:port where Core serves the Temporal SDK's metrics as Prometheus text (a loopback
   *  address: workers append them to their own /metrics). Default: not exported. */
  temporalMetricsAddress?: string;
}

/** Configures Temporal's process-wide runtime; call once, before the first worker is created. */
export function configureRuntime({
  logLevel = 'INFO',
  handleSignals = true,
  temporalMetricsAddress,
}: RuntimeOptions): void {
  const print = new DefaultLogger(logLevel);
  Runtime.install({
    // The GPU and host workers serve activities only, by design; the SDK warns about each.
    logger: new DefaultLogger(logLevel, (entry) => {
      if (entry.message !== 'No workflows registered, not polling for workflow tasks')
        print.log(entry.level, entry.message, entry.meta);
    }),
    ...(handleSignals ? {} : { shutdownSignals: [] }),
    ...(temporalMetricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: temporalMetricsAddress } } } }
      : {}),
  });
  if (temporalMetricsAddress) temporalMetricsUrl = `http://${temporalMetricsAddress}/metrics`;
}

/**
 * Every few seconds, removes the staged copies on this host whose checkpoints are settled. Above
 * all those of a job that took this host for lost while it was away (a restart slower than the
 * job's look for it, a network cut that healed): the job marked them failed and sent nobody.
 */
function sweepSettledStaging(db: KeelDatabase, workDir: string, pendingUploads: Set<string>): NodeJS.Timeout {
  let sweeping = false;
  const timer = setInterval(async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      for (const dir of await removeSettledStaging(db, workDir)) pendingUploads.delete(dir);
    } catch (err) {
      console.warn(`keel worker: could not sweep staged checkpoints in ${workDir}: ${(err as Error).message}`);
    } finally {
      sweeping = false;
    }
  }, sweepStagingMs);
  timer.unref(); // never what keeps a process alive
  return timer;
}

/** removeInterruptedStaging for every job folder under the host's work dir. */
async function removeInterruptedStagingIn(workDir: string): Promise<void> {
  const jobs = await fs.readdir(workDir).catch(() => [] as string[]);
  for (const job of jobs) await removeInterruptedStaging(path.join(workDir, job));
}
