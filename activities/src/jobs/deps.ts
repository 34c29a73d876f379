// What the job activities need from the worker process that runs them. Built once per worker
// (workers/src/worker.ts); nothing here is a payload, so nothing here reaches Temporal's history.
import type { KeelDatabase } from '@keel/db';
import { openStorage, type Storage } from '@keel/storage';
import type { GpuSlots } from '../trainer/gpu-slots.ts';
import type { RunningTrainer } from '../trainer/launch.ts';

export interface ActivityDeps {
  db: KeelDatabase;
  /** This host's task queue (`keel-host-<id>`): uploads of files staged here run on it. */
  hostQueue: string;
  /** Where attempts keep their checkpoints, staged files and logs: `<workDir>/<job>/attempt-<n>`. */
  workDir: string;
  /** Used when a job names no storage: KEEL_STORAGE_URI, else file://<KEEL_HOME>/checkpoints. */
  defaultStorageUri: string;
  gpuSlots: GpuSlots;
  /** Trainers running in this process, so a worker told to stop can preempt them gracefully. */
  trainers: Set<RunningTrainer>;
  storages: StorageCache;
  /** Counts of what the job activities do, for the worker's /metrics (workers/src/metrics.ts). */
  metrics?: JobMetrics;
}

/**
 * What the job activities count. The worker backs these with Prometheus metrics; the shapes are
 * prom-client's (`Counter.inc`, `Gauge.inc/dec`), so this package needs no metrics library.
 */
export interface JobMetrics {
  /** Checkpoints staged on this host and handed to the workflow. */
  checkpointsStaged: { inc(): void };
  /** Attempts that restored a committed checkpoint. */
  resumes: { inc(): void };
  /** Bytes put into storage by uploads. */
  uploadBytes: { inc(bytes: number): void };
  /** Upload attempts that threw (each retry that fails counts). */
  uploadsFailed: { inc(): void };
  uploadsInFlight: { inc(): void; dec(): void };
  /** Staged folders on this host whose upload has not finished (queued or in flight). */
  pendingUploads: Set<string>;
}

/** For activities built without a worker's metrics: counts nothing (the pending set is kept). */
export function noJobMetrics(): JobMetrics {
  const counter = { inc() {}, dec() {} };
  return {
    checkpointsStaged: counter,
    resumes: counter,
    uploadBytes: counter,
    uploadsFailed: counter,
    uploadsInFlight: counter,
    pendingUploads: new Set(),
  };
}

/** One Storage per URI for the life of the worker (SDK clients keep their connection pools). */
export class StorageCache {
  readonly #opened = new Map<string, Storage>();

  get(uri: string): Storage {
    let storage = this.#opened.get(uri);
    if (!storage) {
      storage = openStorage(uri);
      this.#opened.set(uri, storage);
    }
    return storage;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#opened.values()].map((s) => s.close()));
    this.#opened.clear();
  }
}
