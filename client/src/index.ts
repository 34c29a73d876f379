// @keel/client: what scripts use to talk to keel. Today: a Temporal client configured like the
// workers. The typed job and study client (startJob, startStudy, progress, ...) comes with #4-#6.
import { loadTemporalConfig } from '@keel/workers/config';
import { Client, Connection } from '@temporalio/client';
import type { ClientConnectConfig } from '@temporalio/envconfig';

/** A Temporal client configured like keel's workers (TEMPORAL_ADDRESS, namespace, TLS, API key). */
export async function connectClient(config: ClientConnectConfig = loadTemporalConfig()): Promise<Client> {
  const connection = await Connection.connect(config.connectionOptions);
  return new Client({ connection, namespace: config.namespace ?? 'default' });
}
