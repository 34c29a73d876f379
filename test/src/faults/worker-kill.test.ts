// kill -9 of a worker at each phase of a checkpoint's life (issue #7): while training, while
// staging a checkpoint, while uploading one (to a folder and to MinIO), and while committing one.
// The worker runs in a process of its own (harness/worker-process.ts) with the steady trainer
// (fixtures/steady-trainer.ts, which logs every ack and the digest of the bytes it wrote). The
// phase is caught from real signals, never from sleeps: the worker is frozen (SIGSTOP) the
// moment a phase shows (rows in the database, files in the staging folder or in storage, an
// unfinished multipart upload in MinIO), looked at again while frozen (had the phase passed, it
// goes on and the next checkpoint is tried), then killed with its trainer (SIGKILL) and a new
// worker process is started on the same host (the same queues and work dir, as a restarted pod
// with its disk). The job must complete on it, resumed from the newest committed checkpoint,
// with every invariant standing (harness/fault-job.ts): every acked checkpoint committed,
// collected or failed with a reason; rows and objects agreeing by sha256; staged copies freed;
// no trainer left; and, after retention collected the old checkpoints (keepLast 2), nothing in
// storage but the committed checkpoints' objects.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { connectClient } from '@keel/client';
import { type Checkpoint, type KeelDatabase, listCheckpoints, migrateDatabase, openDatabase } from '@keel/db';
import type { WorkerConfig } from '@keel/workers/config';
import { progressQuery } from '@keel/workflows';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, test, vi } from 'vitest';
import { checkCheckpointInvariants, readTrainerLog, startSteadyJob } from '../harness/fault-job.ts';
import { tmpfsRefused } from '../harness/mounts.ts';
import { procStat } from '../harness/processes.ts';
import { useS3Environment } from '../harness/s3-env.ts';
import { killTree, startWorkerProcess, type WorkerProcess } from '../harness/worker-process.ts';
import { testWorkerConfig } from '../harness/workers.ts';

const services = inject('services');
const bucket = `worker-kill-${process.pid}`;
const tmpfsTrainer = fileURLToPath(new URL('./fixtures/tmpfs-checkpoints.ts', import.meta.url));
const MiB = 1024 * 1024;

/** What a phase's look is given: where the job's rows, files and objects are. */
interface Scene {
  db: KeelDatabase;
  config: WorkerConfig;
  jobId: string;
  storageUri: string;
  params: { steps: number; every: number; bytes: number };
}

interface Phase {
  name: string;
  storage: 'file' | 's3';
  params: { steps: number; every: number; stepMs: number; bytes: number; tmpfsMiB?: number };
  /** Staging by copy needs the trainer's checkpoints on a filesystem of their own (mount: root). */
  needsMount?: boolean;
  /** Whether the phase shows now, and at which step; undefined when it does not. */
  look(scene: Scene): Promise<{ step: number; seen: string } | undefined>;
  /** What became of the checkpoint the kill caught, from the rows and the trainer's log. */
  after(rows: Checkpoint[], step: number, acked: Set<string>): void;
}

const rowOf = (rows: Checkpoint[], attempt: number, step: number) =>
  rows.find((r) => r.uri.endsWith(`/attempt-${attempt}/step-${step}`));
const attemptDir = (scene: Scene, attempt: number) =>
  path.join(scene.config.workDir, encodeURIComponent(scene.jobId), `attempt-${attempt}`);
const stagedNames = (scene: Scene) => {
  const dir = path.join(attemptDir(scene, 1), 'staged');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
};
/** The job's rows, if one of them is committed (so the kill leaves a checkpoint to resume from). */
async function rowsPastFirstCommit(scene: Scene): Promise<Checkpoint[] | undefined> {
  const rows = await listCheckpoints(scene.db, scene.jobId);
  return rows.some((r) => r.status === 'committed') ? rows : undefined;
}
/** The upload's S3 key for a row's only file. */
function objectKey(scene: Scene, row: Checkpoint): string {
  const [, ...prefix] = scene.storageUri.slice('s3://'.length).split('/');
  return [...prefix, row.uri.slice(scene.storageUri.length + 1), row.files[0]?.path].join('/');
}

const phases: Phase[] = [
  {
    name: 'training (every acked checkpoint committed, the trainer between two)',
    storage: 'file',
    params: { steps: 30, every: 5, stepMs: 150, bytes: 64 * 1024 },
    async look(scene) {
      const rows = await rowsPastFirstCommit(scene);
      if (!rows || rows.some((r) => r.status !== 'committed' && r.status !== 'gc') || stagedNames(scene).length > 0)
        return;
      // The trainer's output as keel logged it: the newest step it printed.
      const output = fs.readFileSync(path.join(attemptDir(scene, 1), 'trainer.log'), 'utf8');
      const step = Number([...output.matchAll(/^step (\d+)$/gm)].at(-1)?.[1] ?? 0);
      const newest = Math.max(...rows.map((r) => r.step));
      if (step % scene.params.every === 0 || step - (step % scene.params.every) !== newest) return;
      return { step: newest, seen: `the trainer at step ${step}, every checkpoint up to step ${newest} committed` };
    },
    after(rows, step, acked) {
      expect(acked.has(`1/${step}`)).toBe(true);
      expect(['committed', 'gc']).toContain(rowOf(rows, 1, step)?.status);
    },
  },
  {
    name: 'staging (a 256 MiB checkpoint half copied into staging)',
    storage: 'file',
    needsMount: true,
    params: { steps: 12, every: 3, stepMs: 300, bytes: 256 * MiB, tmpfsMiB: 300 },
    async look(scene) {
      if (!(await rowsPastFirstCommit(scene))) return;
      for (const name of stagedNames(scene).filter((n) => /^\.step-\d+\.building-/.test(n))) {
        const dir = path.join(attemptDir(scene, 1), 'staged', name);
        for (const file of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
          const copied = fs.statSync(path.join(dir, file), { throwIfNoEntry: false })?.size ?? 0;
          if (copied > 0 && copied < scene.params.bytes) {
            const step = Number(/^\.step-(\d+)\./.exec(name)?.[1]);
            return { step, seen: `staged/${name}/${file}: ${copied} of ${scene.params.bytes} bytes copied` };
          }
        }
      }
    },
    // The half-built copy stays in the dead attempt's staging folder: nothing removes
    // The dead worker's `.step-N.building-<pid>` is removed by the next attempt on the host
    // (removeInterruptedStaging); the invariants find nothing left in staging.
    after(rows, step, acked) {
      // Never staged, never acked: not on record, and the trainer heard nothing it could rely on.
      expect(rowOf(rows, 1, step)).toBeUndefined();
      expect(acked.has(`1/${step}`)).toBe(false);
    },
  },
  {
    name: 'uploading to a folder (a partial file in storage)',
    storage: 'file',
    // Each upload done before the next checkpoint: the one in flight is then alone in staging.
    params: { steps: 24, every: 4, stepMs: 400, bytes: 64 * MiB },
    async look(scene) {
      const rows = await rowsPastFirstCommit(scene);
      if (!rows || stagedNames(scene).length !== 1) return;
      for (const row of rows.filter((r) => r.status === 'pending')) {
        const dir = fileURLToPath(row.uri);
        const partial = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).find((n) => n.includes('.keel-partial-'));
        if (partial) return { step: row.step, seen: `${row.uri}/${partial} being written` };
      }
    },
    // The cut upload's partial file is removed once the retry has written the object (and when
    // the object is deleted); the invariants find no orphan.
    after(rows, step, acked) {
      expect(acked.has(`1/${step}`)).toBe(true);
      expect(['committed', 'gc']).toContain(rowOf(rows, 1, step)?.status); // uploaded again by the new worker
    },
  },
  {
    name: 'uploading to MinIO (a multipart upload in flight)',
    storage: 's3',
    params: { steps: 24, every: 4, stepMs: 400, bytes: 64 * MiB },
    async look(scene) {
      const rows = await rowsPastFirstCommit(scene);
      if (!rows || stagedNames(scene).length !== 1) return;
      const s3 = new S3Client({ forcePathStyle: true });
      try {
        for (const row of rows.filter((r) => r.status === 'pending')) {
          const Key = objectKey(scene, row);
          const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: Key }));
          const upload = listed.Uploads?.find((u) => u.Key === Key);
          if (upload) return { step: row.step, seen: `multipart upload ${upload.UploadId} of ${Key} in flight` };
        }
      } finally {
        s3.destroy();
      }
    },
    // The cut multipart upload is aborted once the retry has written the object (and when the
    // object is deleted); the invariants find no pending upload.
    after(rows, step, acked) {
      expect(acked.has(`1/${step}`)).toBe(true);
      expect(['committed', 'gc']).toContain(rowOf(rows, 1, step)?.status);
    },
  },
  {
    name: 'committing (a checkpoint uploaded, its row not yet committed)',
    storage: 's3',
    params: { steps: 30, every: 5, stepMs: 150, bytes: 4 * MiB },
    async look(scene) {
      const rows = await rowsPastFirstCommit(scene);
      if (!rows || stagedNames(scene).length > 0) return;
      const uploaded = rows.find((r) => r.status === 'uploaded');
      if (uploaded) return { step: uploaded.step, seen: `step ${uploaded.step} uploaded, not committed` };
    },
    after(rows, step, acked) {
      expect(acked.has(`1/${step}`)).toBe(true);
      expect(['committed', 'gc']).toContain(rowOf(rows, 1, step)?.status); // committed by the new worker
    },
  },
];

const mountRefused = tmpfsRefused();
if (mountRefused)
  console.warn(`worker-kill.test.ts: no staging case, mounting a tmpfs is not permitted (${mountRefused})`);

/** Unmounts whatever a killed trainer left mounted under `dir` (lazily: nothing may hold it). */
function unmountUnder(dir: string): void {
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n').reverse()) {
    const target = line.split(' ')[1];
    if (!target?.startsWith(`${dir}/`)) continue;
    try {
      execFileSync('umount', ['-l', target], { stdio: 'pipe' });
    } catch {} // gone already
  }
}

/** Whether every thread of `pid` is stopped (SIGSTOP takes effect thread by thread). */
function frozen(pid: number): boolean {
  return fs.readdirSync(`/proc/${pid}/task`).every((tid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return 'Tt'.includes(stat.charAt(stat.lastIndexOf(')') + 2));
    } catch {
      return true; // the thread ended
    }
  });
}

/**
 * Freezes the worker (SIGSTOP) the moment `look` sees the phase, then looks again while nothing
 * moves: if the phase is still there, the worker stays frozen in it and that second look is
 * returned; if it had passed in between, the worker goes on (SIGCONT) and the next one is awaited.
 */
async function freezeIn(phase: Phase, pid: number, scene: Scene, timeoutMs = 120_000) {
  const until = Date.now() + timeoutMs;
  let misses = 0;
  while (Date.now() < until) {
    if (procStat(pid) === undefined) throw new Error(`the worker died before the phase: ${phase.name}`);
    // Caught at the last checkpoint, the trainer may be done before the kill: nothing to resume.
    const early = await phase.look(scene);
    if (early && early.step < scene.params.steps) {
      process.kill(pid, 'SIGSTOP');
      while (!frozen(pid)) await new Promise((r) => setTimeout(r, 1));
      const seen = await phase.look(scene);
      if (seen && seen.step < scene.params.steps) return { ...seen, misses };
      misses += 1;
      process.kill(pid, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`the worker was never caught ${phase.name} within ${timeoutMs / 1000} s (${misses} near misses)`);
}

/** For a failure's message: each job's progress, its attempts' trainer output, the workers' warnings. */
async function whatHappened(config: WorkerConfig, workers: WorkerProcess[]): Promise<string> {
  const lines: string[] = [];
  for (const job of fs.existsSync(config.workDir) ? fs.readdirSync(config.workDir) : []) {
    const progress = await client.workflow
      .getHandle(decodeURIComponent(job))
      .query(progressQuery)
      .catch((e: Error) => e.message);
    lines.push(`job ${job}: ${JSON.stringify(progress)}`);
    for (const attempt of fs.readdirSync(path.join(config.workDir, job))) {
      const output = path.join(config.workDir, job, attempt, 'trainer.log');
      if (fs.existsSync(output)) lines.push(`${attempt} printed:`, fs.readFileSync(output, 'utf8').slice(-2000));
    }
  }
  for (const [i, worker] of workers.entries()) {
    const warnings = worker
      .output()
      .split('\n')
      .filter((l) => /WARN|ERROR|Error/.test(l));
    lines.push(`worker ${i + 1} warned:`, ...warnings.slice(-30));
  }
  return lines.join('\n');
}

/** A guard, not a timing assertion: a job that never ends fails with what it was doing. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${ms / 1000} s for ${what}`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

let client: Client;
/** Every worker process and home, for afterAll: a test that timed out never reaches its finally. */
const started: { workers: WorkerProcess[]; homes: string[] } = { workers: [], homes: [] };
/** SIGKILL to a worker and its trainers, if it still runs (a dead one's pid may be another's now). */
function stopWorker(worker: WorkerProcess): void {
  if (worker.child.exitCode === null && worker.child.signalCode === null) killTree(worker.child.pid as number);
}
beforeAll(async () => {
  await useS3Environment(services.minio, bucket); // the worker processes inherit this environment
  client = await connectClient({ connectionOptions: { address: services.temporal.address } });
});
afterAll(async () => {
  for (const worker of started.workers) stopWorker(worker);
  for (const home of started.homes) {
    unmountUnder(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
  await client?.connection.close();
  vi.unstubAllEnvs();
});

describe('kill -9 of a worker', () => {
  test.each(phases.filter((p) => !p.needsMount || !mountRefused))(
    'while $name: a new worker completes the job from the newest committed checkpoint, nothing lost, no orphans',
    async (phase) => {
      const label = phase.name.split(' ')[0] as string;
      const home = fs.mkdtempSync(path.join(os.tmpdir(), `keel-kill-${label}-`));
      const name = `kill-${label}-${process.pid}`;
      const storageUri =
        phase.storage === 's3' ? `s3://${bucket}/${label}` : pathToFileURL(path.join(home, 'checkpoints')).href;
      const config = testWorkerConfig(home, services.temporal, name);
      const workers: WorkerProcess[] = [];
      const startWorker = () => {
        const worker = startWorkerProcess(config);
        workers.push(worker);
        started.workers.push(worker);
        return worker;
      };
      started.homes.push(home);
      const db = await openDatabase({ url: config.databaseUrl });
      await migrateDatabase(db); // before the worker does: the test reads rows from the start
      try {
        const first = startWorker();
        const { jobId, handle, log } = await startSteadyJob({ name, home, client }, `kill-${label}`, phase.params, {
          ...(phase.needsMount ? { command: [process.execPath, tmpfsTrainer] } : {}),
          gpuTaskQueue: config.gpuTaskQueue,
          storage: storageUri,
          checkpoints: { keepLast: 2 },
          // Short, so the dead worker is noticed soon; not shorter: a loaded machine delays beats.
          timeouts: { heartbeatSeconds: 10 },
        });
        const scene: Scene = { db, config, jobId, storageUri, params: phase.params };
        const caught = await freezeIn(phase, first.child.pid as number, scene);
        const committed = (await listCheckpoints(db, jobId, { status: ['committed'] })).map((r) => r.step);
        const committedAtKill = Math.max(...committed);
        console.log(`${phase.name}: caught ${caught.seen} (${caught.misses} near misses); killed`);
        stopWorker(first);
        const second = startWorker();

        const result = await within(200_000, 'the job to end', handle.result());
        expect(result).toMatchObject({ status: 'completed', attempts: 2, step: phase.params.steps });
        const progress = await handle.query(progressQuery);
        expect(progress.preemptions).toBe(1);
        expect(progress.lastError).toContain('stopped heartbeating');
        // Resumed from the newest checkpoint committed when the worker died (or one committed since).
        const events = readTrainerLog(log);
        const resumed = events.find((e) => e.attempt === 2 && e.pid !== undefined)?.resumeStep;
        expect(resumed).toBe(progress.resumedFromStep);
        expect(resumed).toBeGreaterThanOrEqual(committedAtKill);
        expect(events.filter((e) => e.attempt === 2 && e.checkpoint !== undefined)[0]?.checkpoint).toBe(
          (resumed as number) + phase.params.every,
        );

        const rows = await checkCheckpointInvariants({ config, db, pid: second.child.pid as number }, jobId, events, {
          progress,
          noOrphansIn: storageUri,
        });
        expect(rowOf(rows, 1, resumed as number)).toBeDefined();
        const acked = new Set(
          events.filter((e) => e.reply?.type === 'ack').map((e) => `${e.attempt}/${e.checkpoint as number}`),
        );
        phase.after(rows, caught.step, acked);
        expect(progress.checkpoints.collected).toBeGreaterThan(0); // retention ran (keepLast 2)
      } catch (err) {
        console.error(await whatHappened(config, workers));
        throw err;
      } finally {
        for (const worker of workers) stopWorker(worker);
        await db.close();
        unmountUnder(home);
        fs.rmSync(home, { recursive: true, force: true });
      }
    },
    300_000, // a kill costs the heartbeat timeouts: runTrainer's 10 s, an upload's 30 s, a commit's 30 s
  );
});
