import type { WorkerConfig } from './config.ts';
import { createKeelWorker } from './worker.ts';

/** Runs one worker until it is shut down (SIGINT/SIGTERM, via Temporal's runtime, or shutdown()). */
export async function runWorker(config: WorkerConfig): Promise<void> {
  const { worker, db, close } = await createKeelWorker(config);
  console.log(
    `keel worker: serving task queue '${config.taskQueue}' on ${config.temporal.connectionOptions.address} ` +
      `(namespace ${config.temporal.namespace}), database ${db.location} (${db.dialect})`,
  );
  try {
    await worker.run();
  } finally {
    await close();
  }
}
