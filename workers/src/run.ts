import type { WorkerConfig } from './config.ts';
import { configureRuntime, createKeelWorker } from './worker.ts';

/**
 * Runs the worker until SIGINT or SIGTERM. keel handles those itself rather than Temporal's
 * runtime, because a stopping worker is usually a host being taken away (a spot preemption, a pod
 * deleted): its trainers are told to save and exit first, then the workers drain.
 */
export async function runWorker(config: WorkerConfig): Promise<void> {
  configureRuntime({ handleSignals: false });
  const keel = await createKeelWorker(config);
  const onSignal = (signal: NodeJS.Signals) => {
    console.log(`keel worker: ${signal}, preempting ${keel.deps.trainers.size} trainer(s) and shutting down`);
    keel.shutdown();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  console.log(
    `keel worker: serving task queues '${config.taskQueue}', '${config.gpuTaskQueue}', '${config.hostTaskQueue}' ` +
      `on ${config.temporal.connectionOptions.address} (namespace ${config.temporal.namespace}), ` +
      `database ${keel.db.location} (${keel.db.dialect}), ${keel.deps.gpuSlots.devices.length} GPU(s)`,
  );
  try {
    await keel.run();
  } finally {
    await keel.close();
  }
}
