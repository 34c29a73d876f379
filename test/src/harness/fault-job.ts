// What the database and disk fault tests share (test/src/faults/db-*, disk-*): a keel worker in
// the test's process with settings the test picks (a private database, a work dir on a small
// file system), a job running the steady trainer (faults/fixtures/steady-trainer.ts), and the
// invariants every fault must leave standing, checked against the trainer's own log.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectClient } from '@keel/client';
import { listCheckpoints } from '@keel/db';
import { openStorage } from '@keel/storage';
import { createKeelWorker, type KeelWorker } from '@keel/workers';
import type { WorkerConfig } from '@keel/workers/config';
import { type JobSpecInput, trainingJob } from '@keel/workflows';
import type { Client } from '@temporalio/client';
import { expect } from 'vitest';
import { liveInGroup } from './processes.ts';
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
  /** When keel answered (ms since the epoch). */
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

/** Starts a job running the steady trainer with `params`; returns its handle and the trainer's log. */
export async function startSteadyJob(
  worker: FaultWorker,
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
 * The invariants after a fault; returns the job's rows. Every checkpoint the trainer was acked
 * for (its log) has a row that is committed, collected, or failed with a reason; nothing it was
 * not acked for is on record; every committed row's objects are in storage with the row's
 * sha256, and are the bytes the trainer wrote; every staged copy was freed; no trainer process is
 * left and the worker runs on.
 */
export async function checkCheckpointInvariants(
  worker: Pick<FaultWorker, 'keel' | 'config'>,
  jobId: string,
  log: TrainerEvent[],
  options: {
    /** Also list each committed checkpoint's objects: exactly its files, nothing more. */
    exactObjects?: boolean;
    /** An ack may carry no file digests (a hostile trainer's); compare only those it has. */
    digestsOptional?: boolean;
  } = {},
) {
  const rows = await listCheckpoints(worker.keel.db, jobId);
  const acked = log.filter((e) => e.checkpoint !== undefined && e.reply?.type === 'ack');
  const rowOf = (e: TrainerEvent) => rows.find((r) => r.uri.endsWith(`/attempt-${e.attempt}/step-${e.checkpoint}`));
  for (const ack of acked) {
    const row = rowOf(ack);
    expect(row, `acked step ${ack.checkpoint} of attempt ${ack.attempt} has no row`).toBeDefined();
    expect(['committed', 'gc', 'failed']).toContain(row?.status);
    if (row?.status === 'failed') expect(row.failureReason).toBeTruthy();
  }
  expect(rows.length, 'rows for checkpoints the trainer was never acked for').toBe(acked.length);
  for (const row of rows.filter((r) => r.status === 'committed')) {
    const ack = acked.find((e) => rowOf(e) === row) as TrainerEvent;
    const storage = openStorage(row.uri);
    if (options.exactObjects) {
      const keys: string[] = [];
      for await (const object of storage.list()) keys.push(object.key);
      expect(keys.sort()).toEqual(row.files.map((f) => f.path).sort());
    }
    const digests = !options.digestsOptional || Object.keys(ack.files ?? {}).length > 0;
    for (const file of row.files) {
      expect((await storage.head(file.path))?.sha256).toBe(file.sha256);
      expect(sha256(fs.readFileSync(path.join(fileURLToPath(row.uri), file.path)))).toBe(file.sha256);
      if (digests) expect(file.sha256).toBe(ack.files?.[file.path]);
    }
  }
  for (const attempt of new Set(log.map((e) => e.attempt))) {
    const staged = path.join(worker.config.workDir, encodeURIComponent(jobId), `attempt-${attempt}`, 'staged');
    expect(fs.readdirSync(staged), `attempt ${attempt}'s staging folder`).toEqual([]);
  }
  for (const { pid } of log.filter((e) => e.pid)) expect(liveInGroup(pid as number), `group ${pid}`).toEqual([]);
  expect(worker.keel.deps.trainers.size).toBe(0);
  for (const w of worker.keel.workers) expect(w.getState()).toBe('RUNNING');
  return rows;
}
