// Where a worker or client finds Temporal and which queue it serves. Temporal's standard
// environment variables and config profiles (@temporalio/envconfig): TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE.
// The database: DATABASE_URL, else a SQLite file under KEEL_HOME (default .keel).
// This module loads no native code, so clients on Bun and Deno can import it.
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolveDatabaseUrl } from '@keel/db/url';
import {
  gpuClassHint,
  gpuClassPattern,
  gpuClassTaskQueue,
  hostTaskQueue,
  KEEL_GPU_TASK_QUEUE,
  KEEL_TASK_QUEUE,
} from '@keel/workflows/task-queues';
import { type ClientConnectConfig, loadClientConnectConfig } from '@temporalio/envconfig';

export type Env = Record<string, string | undefined>;

export interface WorkerConfig {
  temporal: ClientConnectConfig;
  taskQueue: string;
  /** postgres://… or file:… (see @keel/db). */
  databaseUrl: string;
  /** Where trainers are launched from: KEEL_GPU_TASK_QUEUE (default `keel-gpu`), with
   *  KEEL_GPU_CLASS appended when set (`keel-gpu-a100`): jobs with that `gpuClass` launch there. */
  gpuTaskQueue: string;
  /** This host's GPU class (KEEL_GPU_CLASS), shown by `keel worker --check`, /healthz and the metrics. */
  gpuClass?: string;
  /** How many trainer launches this host takes at once (KEEL_TRAINER_SLOTS); unset: one per GPU,
   *  and no limit on a CPU-only host. */
  trainerSlots?: number;
  /** This host's own queue, `keel-host-<KEEL_HOST_ID or hostname>`: uploads of what it staged. */
  hostTaskQueue: string;
  /** Attempts' folders (checkpoints, staged files, logs): KEEL_WORK_DIR, else <KEEL_HOME>/work. */
  workDir: string;
  /** Where jobs that name no storage keep checkpoints: KEEL_STORAGE_URI, else file://<KEEL_HOME>/checkpoints. */
  storageUri: string;
  /** How long a stopping worker keeps serving its host's uploads (KEEL_DRAIN_SECONDS, default 90). */
  drainSeconds?: number;
  /** Where a warning of preemption comes from (KEEL_PREEMPTION_NOTICE; see preemption.ts). */
  preemptionNotice?: { source: string; header?: string };
  /** This host's name (KEEL_HOST_ID, else the hostname): the `host` label of keel's metrics. */
  hostId?: string;
  /** Serve /healthz and /metrics (KEEL_METRICS_PORT, 0 = any free port; KEEL_METRICS_HOST). */
  metrics?: { host: string; port: number };
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
    ...hostSettings(env),
    ...metricsSettings(env),
    ...drainSettings(env),
    ...trainerSlotSettings(env),
    ...(env.KEEL_PREEMPTION_NOTICE
      ? {
          preemptionNotice: {
            source: env.KEEL_PREEMPTION_NOTICE,
            ...(env.KEEL_PREEMPTION_NOTICE_HEADER ? { header: env.KEEL_PREEMPTION_NOTICE_HEADER } : {}),
          },
        }
      : {}),
  };
}

/** The settings of the host a worker runs on (also used by `keel dev`, with its own home). */
export function hostSettings(env: Env = process.env) {
  const home = path.resolve(env.KEEL_HOME || '.keel');
  const hostId = env.KEEL_HOST_ID || os.hostname();
  const gpuClass = gpuClassSetting(env);
  return {
    hostId,
    ...(gpuClass ? { gpuClass } : {}),
    gpuTaskQueue: gpuClassTaskQueue(env.KEEL_GPU_TASK_QUEUE || KEEL_GPU_TASK_QUEUE, gpuClass),
    hostTaskQueue: hostTaskQueue(hostId),
    workDir: path.resolve(env.KEEL_WORK_DIR || path.join(home, 'work')),
    storageUri: env.KEEL_STORAGE_URI || pathToFileURL(path.join(home, 'checkpoints')).href,
  };
}

/** KEEL_GPU_CLASS: the class of this host's GPUs, the name jobs ask for in `gpuClass`. */
function gpuClassSetting(env: Env): string | undefined {
  const value = env.KEEL_GPU_CLASS?.trim();
  if (!value) return undefined;
  if (!gpuClassPattern.test(value)) throw new Error(`KEEL_GPU_CLASS: '${value}': ${gpuClassHint}`);
  return value;
}

/** KEEL_TRAINER_SLOTS: how many trainer launches this host takes at once. */
function trainerSlotSettings(env: Env): { trainerSlots?: number } {
  const value = env.KEEL_TRAINER_SLOTS?.trim();
  if (!value) return {};
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new Error(`KEEL_TRAINER_SLOTS: '${value}' is not a whole number of trainers, 1 or more (unset: one per GPU)`);
  }
  return { trainerSlots: Number(value) };
}

/** KEEL_DRAIN_SECONDS: how long a stopping worker keeps uploading what its host staged. */
function drainSettings(env: Env): { drainSeconds?: number } {
  const value = env.KEEL_DRAIN_SECONDS?.trim();
  if (!value) return {};
  if (!/^\d+$/.test(value)) throw new Error(`KEEL_DRAIN_SECONDS: '${value}' is not a whole number of seconds`);
  return { drainSeconds: Number(value) };
}

/** KEEL_METRICS_PORT (unset: no HTTP endpoint; 0: any free port) and KEEL_METRICS_HOST. */
function metricsSettings(env: Env): { metrics?: { host: string; port: number } } {
  const port = env.KEEL_METRICS_PORT?.trim();
  if (!port) return {};
  if (!/^\d+$/.test(port) || Number(port) > 65_535) {
    throw new Error(`KEEL_METRICS_PORT: '${port}' is not a port number (0 picks a free one)`);
  }
  return { metrics: { host: env.KEEL_METRICS_HOST?.trim() || '127.0.0.1', port: Number(port) } };
}
