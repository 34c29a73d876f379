// Where a worker or client finds Temporal and which queue it serves. Temporal's standard
// environment variables and config profiles (@temporalio/envconfig): TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE.
// The database: DATABASE_URL, else a SQLite file under KEEL_HOME (default .keel).
// This module loads no native code, so clients on Bun and Deno can import it.
import { resolveDatabaseUrl } from '@keel/db/url';
import { KEEL_TASK_QUEUE } from '@keel/workflows/task-queues';
import { type ClientConnectConfig, loadClientConnectConfig } from '@temporalio/envconfig';

export type Env = Record<string, string | undefined>;

export interface WorkerConfig {
  temporal: ClientConnectConfig;
  taskQueue: string;
  /** postgres://… or file:… (see @keel/db). */
  databaseUrl: string;
}

/** Temporal connection settings; without any, a local dev server (localhost:7233, default). */
export function loadTemporalConfig(env: Env = process.env): ClientConnectConfig {
  const defined = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const config = loadClientConnectConfig({ overrideEnvVars: defined });
  config.connectionOptions.address ??= 'localhost:7233';
  config.namespace ??= 'default';
  return config;
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  return {
    temporal: loadTemporalConfig(env),
    taskQueue: env.KEEL_TASK_QUEUE ?? KEEL_TASK_QUEUE,
    databaseUrl: resolveDatabaseUrl({ env }),
  };
}
