import type { WorkerConfig } from './config.ts';
import { freeLoopbackAddress } from './metrics-server.ts';
import { watchPreemptionNotice } from './preemption.ts';
import { configureRuntime, createKeelWorker } from './worker.ts';

/**
 * Runs the worker until SIGINT or SIGTERM. keel handles those itself rather than Temporal's
 * runtime, because a stopping worker is usually a host being taken away (a spot preemption, a pod
 * deleted): its trainers are told to save and exit first, then the workers drain.
 */
export async function runWorker(config: WorkerConfig): Promise<void> {
  // With KEEL_METRICS_PORT, Core exports Temporal's metrics on a loopback port of its own, which
  // the worker's /metrics appends (metrics-server.ts).
  const temporalMetrics = config.metrics ? { temporalMetricsAddress: await freeLoopbackAddress() } : {};
  configureRuntime({ handleSignals: false, ...temporalMetrics });
  const keel = await createKeelWorker(config);
  if (keel.metricsUrl) console.log(`keel worker: metrics on ${keel.metricsUrl}`);
  let stopping = false;
  const preempt = (why: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`keel worker: ${why}, preempting ${keel.deps.trainers.size} trainer(s) and shutting down`);
    keel.shutdown();
  };
  process.once('SIGINT', () => preempt('SIGINT'));
  process.once('SIGTERM', () => preempt('SIGTERM'));
  let stopWatching = () => {};
  const notice = config.preemptionNotice;
  try {
    if (notice) {
      const onNotice = (n: { reason: string }) => preempt(`preemption notice (${n.reason})`);
      stopWatching = watchPreemptionNotice(notice.source, onNotice, { header: notice.header });
    }
  } catch (err) {
    await keel.close(); // a bad KEEL_PREEMPTION_NOTICE: refuse to start, having taken no work
    throw err;
  }
  console.log(
    `keel worker: serving task queues '${config.taskQueue}', '${config.gpuTaskQueue}', '${config.hostTaskQueue}' ` +
      `on ${config.temporal.connectionOptions.address} (namespace ${config.temporal.namespace}), ` +
      `database ${keel.db.location} (${keel.db.dialect}), host ${keel.host.hostId}, ` +
      `${keel.host.gpus.length} GPU(s)${keel.host.models.length > 0 ? ` (${keel.host.models.join(', ')})` : ''}, ` +
      `GPU class ${keel.host.gpuClass ?? '(none)'}, trainer slots ${keel.host.trainerSlots ?? 'no limit'}`,
  );
  try {
    await keel.run();
  } finally {
    stopWatching();
    await keel.close();
  }
}
