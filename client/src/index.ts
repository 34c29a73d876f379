// @keel/client: what scripts use to talk to keel (Node, Bun and Deno).
//   const keel = await KeelClient.connect();
//   const { studyId } = await keel.startStudy(spec);
//   for await (const p of keel.watchStudy(studyId)) console.log(p.counts);
import { loadTemporalConfig } from '@keel/workers/config';
import { Client, Connection } from '@temporalio/client';
import type { ClientConnectConfig } from '@temporalio/envconfig';

export { InvalidSpecError } from '@keel/workflows/specs';
export * from './keel-client.ts';

/** A Temporal client configured like keel's workers (TEMPORAL_ADDRESS, namespace, TLS, API key). */
export async function connectClient(config: ClientConnectConfig = loadTemporalConfig()): Promise<Client> {
  const connection = await Connection.connect(config.connectionOptions);
  return new Client({ connection, namespace: config.namespace ?? 'default' });
}
