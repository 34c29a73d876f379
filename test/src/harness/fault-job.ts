// What the fault tests share (test/src/faults/): a keel worker in the test's process with settings
// the test picks (a private database, a work dir on a small file system), a job running the
// steady trainer (faults/fixtures/steady-trainer.ts), and the one check of the invariants every
// fault must leave standing (checkCheckpointInvariants), against the trainer's own log, the job's
// progress, or both, and of what storage holds beyond the committed checkpoints (orphanObjects).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { connectClient } from '@keel/client';
import { type Checkpoint, type KeelDatabase, listCheckpoints } from '@keel/db';
import { openStorage } from '@keel/storage';
import { createKeelWorker, type KeelWorker } from '@keel/workers';
import type { WorkerConfig } from '@keel/workers/config';
import { type JobProgress, type JobSpecInput, trainingJob } from '@keel/workflows';
import type { Client } from '@temporalio/client';
import { expect } from 'vitest';
import { liveInGroup, liveProcess } from './processes.ts';
import type { ServiceEndpoints } from './services.ts';
import { testWorkerConfig } from './workers.ts';

const steadyTrainer = fileURLToPath(new URL('../faults/fixtures/steady-trainer.ts', import.meta.url));

export interface TrainerEvent {
  attempt: number;
  pid?: number;
  resumeStep?: number | null;
  checkpoint?: number;
  path?: string;
  files?: Record<string, string>;
  reply?: { type: string; step?: number; code?: string; error?: string };
  /** When it was logged (ms since the epoch): for a checkpoint, when keel answered. */
  at?: number;
  /** What keel's staging folder held right after the reply (disk faults). */
  stagedAfter?: string[];
  [more: string]: unknown;
}

export interface FaultWorker {
  name: string;
  home: string;
  config: WorkerConfig;
  keel: KeelWorker;
  client: Client;
  /** Shuts the worker down and closes it; the caller removes what it set up around it. */
  close(): Promise<void>;
}

/** Starts a keel worker with the test's settings (queues named for `prefix`, home in a temp dir). */
export async function startFaultWorker(
  prefix: string,
  temporal: ServiceEndpoints['temporal'],
  overrides: (home: string) => Partial<WorkerConfig> | Promise<Partial<WorkerConfig>> = () => ({}),
): Promise<FaultWorker> {
  const name = `${prefix}-${process.pid}`;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `keel-${prefix}-`));
  const config = testWorkerConfig(home, temporal, name, await overrides(home));
  const keel = await createKeelWorker(config);
  const running = keel.run();
  const client = await connectClient({ connectionOptions: { address: temporal.address } });
  return {
    name,
    home,
    config,
    keel,
    client,
    async close() {
      keel.shutdown();
      await running;
      await keel.close();
      await client.connection.close();
    },
  };
}

/**
 * Starts a job running the steady trainer with `params` on the worker's queues (`extra` may
 * replace any field of the spec, the command included); returns its handle and the trainer's log.
 */
export async function startSteadyJob(
  worker: Pick<FaultWorker, 'name' | 'home' | 'client'>,
  label: string,
  params: object,
  extra: Partial<JobSpecInput> = {},
) {
  const jobId = `${label}-${Date.now()}`;
  const log = path.join(worker.home, `${jobId}.log`);
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, steadyTrainer],
        params: { log, ...params },
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        checkpoints: { keepLast: 100 },
        ...extra,
      },
    ],
  });
  return { jobId, handle, log };
}

export const readTrainerLog = (file: string): TrainerEvent[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * The worker whose job is checked: one in the test's process (its database is read, and it must
 * run on holding no trainer), or one in a process of its own (the test's connection to its
 * database, and its pid, which must still be alive).
 */
export type CheckedWorker =
  | Pick<FaultWorker, 'keel' | 'config'>
  | { config: WorkerConfig; db: KeelDatabase; pid: number };

export interface InvariantOptions {
  /** Also list each committed checkpoint's objects: exactly its files, nothing more. */
  exactObjects?: boolean;
  /** An ack may carry no file digests (a hostile trainer's); compare only those it has. */
  digestsOptional?: boolean;
  /** The job's progress once it ended: its counts and failed list must agree with the rows. */
  progress?: JobProgress;
  /**
   * The job's storage URI: once the job ended and retention ran, storage must hold the committed
   * rows' objects and nothing else under the job (orphanObjects).
   */
  noOrphansIn?: string;
}

/**
 * The invariants after a fault; returns the job's rows. Every checkpoint the trainer was acked
 * for (its log; or, for trainers that keep none, the progress query's staged count) has a row
 * that is committed, collected, or failed with a reason shown in the progress; nothing it was not
 * acked for is on record; every committed row's objects are in storage with the row's sha256 and
 * size, and downloaded they hash to it (and to the digest of the bytes the trainer wrote, where
 * its log has them); every staged copy was freed; no trainer process is left and the worker runs
 * on; and, given the job's storage (noOrphansIn), storage holds nothing else under the job.
 */
export async function checkCheckpointInvariants(
  worker: CheckedWorker,
  jobId: string,
  log: TrainerEvent[] | undefined,
  options: InvariantOptions = {},
): Promise<Checkpoint[]> {
  const db = 'keel' in worker ? worker.keel.db : worker.db;
  const rows = await listCheckpoints(db, jobId);
  for (const row of rows) {
    expect(['committed', 'gc', 'failed'], `step ${row.step} (${row.uri}) ended ${row.status}`).toContain(row.status);
    if (row.status === 'failed') expect(row.failureReason, `failed step ${row.step} has a reason`).toBeTruthy();
  }
  const acked = (log ?? []).filter((e) => e.checkpoint !== undefined && e.reply?.type === 'ack');
  const rowOf = (e: TrainerEvent) => rows.find((r) => r.uri.endsWith(`/attempt-${e.attempt}/step-${e.checkpoint}`));
  if (log) {
    for (const ack of acked) {
      expect(rowOf(ack), `acked step ${ack.checkpoint} of attempt ${ack.attempt} has no row`).toBeDefined();
    }
    expect(rows.length, 'rows for checkpoints the trainer was never acked for').toBe(acked.length);
  }
  const { progress } = options;
  if (progress) {
    expect(['completed', 'failed', 'stopped', 'cancelled']).toContain(progress.status);
    expect(rows.length, 'a row for every staged (acked) checkpoint').toBe(progress.checkpoints.staged);
    for (const row of rows.filter((r) => r.status === 'failed')) {
      expect(progress.failedCheckpoints.map((f) => f.step)).toContain(row.step);
    }
    // The progress counts every commit; those retention collected since are counted collected too.
    const count = (status: string) => rows.filter((r) => r.status === status).length;
    expect(progress.checkpoints.committed - progress.checkpoints.collected).toBe(count('committed'));
    expect(progress.checkpoints.collected).toBe(count('gc'));
    expect(progress.checkpoints.failed).toBe(count('failed'));
  }
  await checkCommittedObjects(rows, (row) => acked.find((e) => rowOf(e) === row), options);

  const attempts = log ? new Set(log.map((e) => e.attempt)) : range(progress?.attempt ?? 0);
  for (const attempt of attempts) {
    const staged = path.join(worker.config.workDir, encodeURIComponent(jobId), `attempt-${attempt}`, 'staged');
    if (log || fs.existsSync(staged)) {
      const left = fs.readdirSync(staged);
      expect(left, `attempt ${attempt}'s staging folder`).toEqual([]);
    }
  }
  for (const { pid } of (log ?? []).filter((e) => e.pid)) {
    expect(liveInGroup(pid as number), `group ${pid}`).toEqual([]);
  }
  expect(trainerProcesses(jobId), 'trainer processes left').toEqual([]);
  if ('keel' in worker) {
    expect(worker.keel.deps.trainers.size).toBe(0);
    for (const w of worker.keel.workers) expect(w.getState()).toBe('RUNNING');
  } else {
    expect(liveProcess(worker.pid), `worker process ${worker.pid}`).toBe(true);
  }
  if (options.noOrphansIn) {
    const orphans = await orphanObjects(options.noOrphansIn, jobId, rows);
    expect(orphans, 'orphans').toEqual([]);
  }
  return rows;
}

/** For jobs whose trainer keeps no log (the example MLP): the invariants against the job's progress. */
export const checkStorageInvariants = (worker: CheckedWorker, jobId: string, progress: JobProgress) =>
  checkCheckpointInvariants(worker, jobId, undefined, { progress });

/** Every committed row's objects: in storage with its sha256 and size, and those bytes downloaded. */
async function checkCommittedObjects(
  rows: Checkpoint[],
  ackOf: (row: Checkpoint) => TrainerEvent | undefined,
  options: InvariantOptions,
) {
  const downloads = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-verify-'));
  try {
    for (const row of rows.filter((r) => r.status === 'committed')) {
      const storage = openStorage(row.uri);
      try {
        if (options.exactObjects) {
          const keys: string[] = [];
          for await (const object of storage.list()) keys.push(object.key);
          expect(keys.sort()).toEqual(row.files.map((f) => f.path).sort());
        }
        const ack = ackOf(row);
        const digests = ack && (!options.digestsOptional || Object.keys(ack.files ?? {}).length > 0);
        for (const file of row.files) {
          const head = await storage.head(file.path);
          expect(head?.sha256, `${row.uri}/${file.path}`).toBe(file.sha256);
          expect(head?.bytes).toBe(file.bytes);
          const local = path.join(downloads, String(row.id), file.path);
          await storage.get(file.path, local);
          expect(sha256(fs.readFileSync(local)), `${row.uri}/${file.path} downloaded`).toBe(file.sha256);
          fs.rmSync(local);
          if (digests) expect(file.sha256, 'the bytes the trainer wrote').toBe(ack.files?.[file.path]);
        }
      } finally {
        await storage.close();
      }
    }
  } finally {
    fs.rmSync(downloads, { recursive: true, force: true });
  }
}

/**
 * What the job's storage holds beyond its committed rows' objects, once the job has ended and
 * retention ran: objects of collected or failed rows, objects no row names, and what a transfer
 * cut short left behind, which a listing does not show: the file backend's `.keel-partial-`
 * files and `.sha256` sidecars without their object (read from the folder itself), and S3
 * multipart uploads never completed nor aborted (asked of the bucket for each of the job's keys:
 * MinIO lists those of one key only). Each as a line naming it; none is what keel promises.
 */
export async function orphanObjects(storageUri: string, jobId: string, rows: Checkpoint[]): Promise<string[]> {
  const keyOf = (row: Checkpoint, file: string) => `${row.uri.slice(storageUri.length + 1)}/${file}`;
  const kept = new Set(
    rows.filter((r) => r.status === 'committed').flatMap((r) => r.files.map((f) => keyOf(r, f.path))),
  );
  const jobPrefix = `${encodeURIComponent(jobId)}/`;
  const orphans: string[] = [];
  if (storageUri.startsWith('file://')) {
    const root = fileURLToPath(storageUri);
    for (const file of filesUnder(path.join(root, jobPrefix))) {
      const key = path.relative(root, file).split(path.sep).join('/');
      const sidecarOf = key.endsWith(sidecarSuffix) ? key.slice(0, -sidecarSuffix.length) : undefined;
      if (kept.has(key) || (sidecarOf && kept.has(sidecarOf))) continue;
      orphans.push(`${key} (${fs.statSync(file).size} bytes)`);
    }
    return orphans;
  }
  const storage = openStorage(storageUri);
  try {
    for await (const object of storage.list(jobPrefix)) {
      if (!kept.has(object.key)) orphans.push(`${object.key} (${object.bytes} bytes)`);
    }
  } finally {
    await storage.close();
  }
  if (storageUri.startsWith('s3://')) {
    const [bucket, ...prefix] = storageUri.slice('s3://'.length).split('/');
    const s3 = new S3Client({ forcePathStyle: true });
    try {
      const keys = new Set(rows.flatMap((r) => r.files.map((f) => keyOf(r, f.path))));
      for (const key of keys) {
        const Key = [...prefix.filter(Boolean), key].join('/');
        const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: Key }));
        for (const upload of listed.Uploads ?? []) {
          if (upload.Key === Key) orphans.push(`${key}: a multipart upload never completed (${upload.UploadId})`);
        }
      }
    } finally {
      s3.destroy();
    }
  }
  return orphans;
}

/** The file backend's checksum sidecar (`<object>.sha256`, storage/src/keys.ts). */
const sidecarSuffix = '.sha256';

/** Every regular file below `dir`, hidden ones included. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Live processes whose environment names this job (KEEL_JOB_ID): trainers and anything they forked. */
export function trainerProcesses(jobId: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || !liveProcess(Number(entry))) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (env.split('\0').includes(`KEEL_JOB_ID=${jobId}`)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Waits until `ready()` holds, polling every 100 ms, or throws naming `what`. */
export async function waitFor(what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
