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
