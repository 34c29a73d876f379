// A fleet on one machine: three keel worker "hosts", each a real `keel worker` process in a network
// namespace of its own (ip netns, a veth pair to a bridge), configured by the environment alone as
// a pod is (KEEL_HOST_ID, KEEL_HOME, DATABASE_URL, KEEL_STORAGE_URI, AWS_*, TEMPORAL_ADDRESS). They
// reach the test's Temporal dev server, PostgreSQL and MinIO only at the bridge's address. A study
// runs across them. Mid-training one host is cut off for good (its veth taken down: every packet
// dropped) while it holds an acked checkpoint it has not uploaded; then another host is SIGTERMed
// as a spot preemption. Their trials resume on the hosts left, from committed checkpoints, and
// train to the end; every acked checkpoint is on record; the migrations ran once; nothing is left
// running in any namespace.
//
// Which host runs which trial is Temporal's choice (it often hands one host several at once), so
// the victims are picked as the study runs: the cut-off host is the first one running a trial with
// a committed checkpoint; the preempted host is then another one running an attempt (it may be a
// trial resumed from the cut-off host); the third host is the survivor.
//
// To be sure the cut-off host holds an acked checkpoint that is not uploaded, its connections to
// MinIO go silent first (as when a big upload is in flight when the network fails): its trainer is
// acked for the next checkpoint (staging is local) whose upload cannot finish; then the link goes
// down.
//
// The acked checkpoints the lost host never uploaded are marked failed, naming the host, so that
// their jobs, and the study, finish: once a job's training is done elsewhere, it asks the lost
// host's queue (keel-host-<id>) whether a worker is there (CheckpointPipeline in
// workflows/src/training-job.ts); none answers, so the uploads waiting there are cancelled. Before,
// each waited out the upload's 10-minute schedule-to-start timeout, and the study completed about
// 11 minutes after the cut.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeelClient } from '@keel/client';
import { type Checkpoint, getJob, getStudy, listCheckpoints, listTrials, migrationsFolder } from '@keel/db';
import { openStorage } from '@keel/storage';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, test, vi } from 'vitest';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';
import { readTrainerLog, type TrainerEvent } from '../harness/fault-job.ts';
import {
  addressOf,
  createNetwork,
  forwardTcp,
  type NetnsHost,
  type NetnsNetwork,
  netnsUnavailable,
  type TcpForward,
} from '../harness/netns.ts';
import { liveProcess } from '../harness/processes.ts';
import { useS3Environment } from '../harness/s3-env.ts';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`multi-host test skipped: ${unavailable}`);

const services = inject('services');
const repo = path.resolve('.');
const cli = path.join(repo, 'client/src/cli.ts');
const trainer = fileURLToPath(new URL('./fixtures/fleet-trainer.ts', import.meta.url));
const tag = `fleet-${process.pid}`;
const bucket = `keel-fleet-${process.pid}`;
/** The hosts' homes and the trainers' logs, under one temp folder (made in beforeAll). */
let home = '';
let logDir = '';
const nTrials = 6;
const steps = 80;

interface Host {
  net: NetnsHost;
  /** KEEL_HOST_ID; its queue is keel-host-<id>. */
  id: string;
  home: string;
  child: ChildProcess;
  output: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let network: NetnsNetwork | undefined;
const forwards: Partial<Record<'temporal' | 'postgres' | 'minio', TcpForward>> = {};
let database: FreshDatabase | undefined;
let keel: KeelClient;
let sql: postgres.Sql;
const hosts: Host[] = [];
let studyId = '';
let trialJobs: string[] = [];
/** The host cut off, the host preempted, the host that survives (picked as the study runs). */
let cut: Host;
let preempted: Host;
let survivor: Host;
/** Jobs whose attempt was running on the cut-off / the preempted host at that moment. */
let cutJobs: string[] = [];
let preemptedJobs: string[] = [];
/** Checkpoints of the cut-off host it never uploaded: those acked after its storage went silent,
 *  then (from the third test on) every row of its attempts left pending. */
let stranded: { jobId: string; attempt: number; step: number }[] = [];
/** When the cut-off host's link went down (ms since the epoch). */
let cutAt = 0;

const logOf = (jobId: string) => path.join(logDir, `${encodeURIComponent(jobId)}.log`);
const readLog = (jobId: string): TrainerEvent[] => (fs.existsSync(logOf(jobId)) ? readTrainerLog(logOf(jobId)) : []);
const rowOf = (rows: Checkpoint[], attempt: number, step: number) =>
  rows.find((r) => r.uri.endsWith(`/attempt-${attempt}/step-${step}`));
const attemptOfRow = (row: Checkpoint) => Number(/\/attempt-(\d+)\/step-\d+$/.exec(row.uri)?.[1]);
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const running = (h: Host) => h.child.exitCode === null && h.child.signalCode === null;
const rowsOf = async (jobId: string) => listCheckpoints(await keel.database(), jobId);

/** Each attempt of a job that reached its trainer: where it ran (the trainer's KEEL_HOST_ID),
 *  what it resumed from, what it was acked for, how it ended; from the trainer's log. */
function attemptsOf(jobId: string) {
  const log = readLog(jobId);
  return [...new Set(log.map((e) => e.attempt))].map((attempt) => {
    const events = log.filter((e) => e.attempt === attempt);
    const start = events.find((e) => e.pid !== undefined);
    return {
      attempt,
      host: start?.host as string | undefined,
      pid: start?.pid as number,
      resumeStep: start?.resumeStep ?? null,
      startedAt: start?.at as number,
      doneAt: events.find((e) => e.done)?.at,
      restored: start?.restored as boolean | null | undefined,
      acked: events.filter((e) => e.checkpoint !== undefined && e.reply?.type === 'ack'),
      ended: events.some((e) => e.done || e.stopped),
      done: events.some((e) => e.done),
    };
  });
}

/**
 * The jobs whose newest attempt is training on `host` now, with a committed checkpoint and steps
 * to go. Read from the database and the trainers' logs: no query, because a query goes to the
 * worker that ran the workflow last, and that may be the host just cut off.
 */
async function trainingOn(host: Host): Promise<string[]> {
  const jobs: string[] = [];
  for (const t of await listTrials(await keel.database(), studyId, { state: 'running' })) {
    const jobId = t.jobId as string;
    const current = attemptsOf(jobId).at(-1);
    if (current?.host !== host.id || current.ended || current.acked.length === 0) continue;
    if ((current.acked.at(-1)?.checkpoint ?? 0) > steps - 30) continue;
    if (!(await rowsOf(jobId)).some((r) => r.status === 'committed')) continue;
    jobs.push(jobId);
  }
  return jobs;
}

/** Starts `keel worker` inside the host's namespace, configured by the environment alone. */
function startHost(net: NetnsHost): Host {
  const id = `${tag}-host${net.index}`;
  const hostHome = path.join(home, `host${net.index}`);
  const dbUrl = new URL((database as FreshDatabase).url);
  dbUrl.host = forwards.postgres?.address as string;
  const child = net.spawn(process.execPath, [cli, 'worker'], {
    cwd: repo,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: forwards.temporal?.address,
      TEMPORAL_NAMESPACE: services.temporal.namespace,
      KEEL_TASK_QUEUE: tag,
      KEEL_GPU_TASK_QUEUE: `${tag}-gpu`,
      KEEL_HOST_ID: id,
      KEEL_HOME: hostHome,
      DATABASE_URL: dbUrl.toString(),
      KEEL_STORAGE_URI: `s3://${bucket}/ckpt`,
      AWS_ENDPOINT_URL_S3: `http://${forwards.minio?.address}`,
      AWS_REGION: services.minio.region,
      AWS_ACCESS_KEY_ID: services.minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: services.minio.secretAccessKey,
    },
  });
  const host: Host = {
    net,
    id,
    home: hostHome,
    child,
    output: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (c: Buffer) => (host.output += c.toString()));
  return host;
}

/** What every trial's job and every host is doing, for failure messages (no queries: see trainingOn). */
async function fleetState(): Promise<string> {
  const lines: string[] = [];
  const db = await keel.database();
  for (const jobId of trialJobs) {
    try {
      const job = await getJob(db, jobId);
      lines.push(`job ${jobId}: ${job?.status ?? 'not started'} ${job?.error ?? ''}`);
      const described = await keel.temporal.workflow.getHandle(jobId).describe();
      for (const a of described.raw.pendingActivities ?? [])
        lines.push(`  waits on ${a.activityType?.name} (attempt ${a.attempt}): ${a.lastFailure?.message ?? ''}`);
      const rows = await rowsOf(jobId);
      lines.push(`  rows ${rows.map((r) => `${r.uri.split('/').slice(-2).join('/')}:${r.status}`).join(' ')}`);
    } catch (err) {
      lines.push(`  ${(err as Error).message}`);
    }
    const attempts = attemptsOf(jobId).map((a) => [a.attempt, a.host, a.resumeStep, a.acked.length, a.ended]);
    lines.push(`  attempts (number, host, resumed from, acks, ended): ${JSON.stringify(attempts)}`);
  }
  for (const h of hosts) lines.push(`--- ${h.id} (running: ${running(h)}):\n${h.output.slice(-2500)}`);
  return lines.join('\n');
}

/** Waits for `promise`; after `ms`, fails with what every trial's job and every host is doing. */
async function explainedWait<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void fleetState().then((state) => reject(new Error(`not done within ${ms / 1000}s:\n${state}`)));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `found` until it returns a value; after `ms`, fails naming `what` and the fleet's state. */
async function waitUntil<T>(what: string, ms: number, found: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await found();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000}s:\n${await fleetState()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(unavailable)(
  `a study across three hosts in network namespaces${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    beforeAll(async () => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-fleet-'));
      logDir = path.join(home, 'trainer-logs');
      fs.mkdirSync(logDir);
      network = createNetwork(3, 'keel-fleet');
      const { gateway } = network;
      forwards.temporal = await forwardTcp(gateway, services.temporal.address);
      forwards.postgres = await forwardTcp(gateway, addressOf(services.postgres.url));
      forwards.minio = await forwardTcp(gateway, addressOf(services.minio.endpoint));
      database = await freshDatabase('postgres', services.postgres.url);
      sql = postgres(database.url, { max: 2, onnotice: () => {} });
      await useS3Environment(services.minio, bucket); // this process reads the bucket directly
      keel = await KeelClient.connect({
        temporal: { connectionOptions: { address: services.temporal.address }, namespace: services.temporal.namespace },
        taskQueue: tag,
        databaseUrl: database.url,
      });
    });

    afterAll(async () => {
      // A test that failed may leave jobs running: end them with the study.
      for (const id of [studyId, ...trialJobs].filter(Boolean))
        await keel?.temporal.workflow
          .getHandle(id)
          .terminate('test over')
          .catch(() => {});
      network?.destroy(); // SIGKILLs whatever still runs in the namespaces
      for (const h of hosts) if (running(h)) await h.exited;
      await keel?.close();
      await sql?.end({ timeout: 5 });
      for (const f of Object.values(forwards)) await f.close();
      await database?.drop();
      vi.unstubAllEnvs();
      if (home) fs.rmSync(home, { recursive: true, force: true });
    });

    test('three hosts start at once on one fresh database: each migration is applied exactly once', async () => {
      for (const net of (network as NetnsNetwork).hosts) hosts.push(startHost(net));
      for (const h of hosts) {
        await vi.waitFor(
          () => {
            if (!running(h)) throw new Error(`host ${h.id} exited:\n${h.output.slice(-3000)}`);
            expect(h.output).toContain('keel worker: serving task queues');
          },
          { timeout: 90_000, interval: 200 },
        );
        // Its queues, and the fleet's servers at the bridge's address.
        expect(h.output).toContain(`'${tag}', '${tag}-gpu', 'keel-host-${h.id}'`);
        expect(h.output).toContain(`on ${forwards.temporal?.address} (namespace default)`);
        expect(h.output).toContain(`@${forwards.postgres?.address}/`);
      }
      const folder = migrationsFolder('postgres');
      const files = fs
        .readdirSync(folder)
        .filter((f) => f.endsWith('.sql'))
        .sort();
      expect(files.length).toBeGreaterThan(0);
      const applied = await sql<{ hash: string }[]>`select hash from drizzle.__drizzle_migrations order by id`;
      // drizzle records each migration's sha256: every file once, nothing twice.
      expect(applied.map((r) => r.hash)).toEqual(
        files.map((f) => sha256(fs.readFileSync(path.join(folder, f), 'utf8'))),
      );
    }, 120_000);

    test('one host is cut off mid-training, another preempted: their trials resume on the hosts left, from committed checkpoints, and train to the end', async () => {
      ({ studyId } = await keel.startStudy(
        {
          name: 'fleet',
          space: { x: { type: 'float', low: -1, high: 1 } },
          objective: { metric: 'loss', direction: 'minimize' },
          nTrials,
          // All at once: a trial held up by the lost host (see below) keeps its slot, and would
          // keep the trials after it from starting.
          maxConcurrency: nTrials,
          sampler: { type: 'random' },
          seed: 9,
          // A failed trial is not rerun: each must complete in its first job.
          failures: { retriesPerTrial: 0 },
          trial: {
            command: [process.execPath, trainer],
            params: { logDir, steps, every: 5, stepMs: 100, bytes: 64 * 1024 },
            gpus: 0,
            gpuTaskQueue: `${tag}-gpu`,
            checkpoints: { keepLast: 100 },
            // A silent host is taken for lost after 5 s (the least a spec may ask).
            timeouts: { heartbeatSeconds: 5 },
          },
        },
        { id: `${tag}-study-${Date.now()}` },
      ));
      trialJobs = Array.from({ length: nTrials }, (_, n) => `${studyId}-trial-${n}`);

      // The host to cut off: the first one training a trial that has a committed checkpoint.
      [cut, cutJobs] = await waitUntil('a host training a trial with a committed checkpoint', 60_000, async () => {
        for (const h of hosts) {
          const jobs = await trainingOn(h);
          if (jobs.length > 0) return [h, jobs] as const;
        }
      });
      // Its storage goes silent; its trainer is acked for a checkpoint that cannot be uploaded
      // now; at that moment its link goes down.
      const silentSince = Date.now();
      forwards.minio?.stall(cut.net.address);
      await vi.waitFor(
        () => {
          stranded = cutJobs.flatMap((jobId) =>
            attemptsOf(jobId)
              .filter((a) => a.host === cut.id)
              .flatMap((a) => a.acked.filter((e) => (e.at ?? 0) > silentSince))
              .map((e) => ({ jobId, attempt: e.attempt, step: e.checkpoint as number })),
          );
          expect(stranded.length).toBeGreaterThan(0);
        },
        { timeout: 20_000, interval: 20 },
      );
      cut.net.cut();
      cutAt = Date.now();

      // The host to preempt: another one training an attempt (a new trial, or one resumed from
      // the cut-off host) that was acked for a checkpoint of its own.
      [preempted, preemptedJobs] = await waitUntil('another host training an attempt', 90_000, async () => {
        for (const h of hosts.filter((h) => h !== cut)) {
          const jobs = await trainingOn(h);
          if (jobs.length > 0) return [h, jobs] as const;
        }
      });
      survivor = hosts.find((h) => h !== cut && h !== preempted) as Host;
      preempted.child.kill('SIGTERM');
      // Its trainers save and exit, it drains its uploads and exits 0.
      expect(await preempted.exited, preempted.output.slice(-3000)).toEqual({ code: 0, signal: null });
      expect(preempted.output).toContain('SIGTERM, preempting');

      for (const jobId of new Set([...cutJobs, ...preemptedJobs])) {
        // It trains to its last step on a host left: for a trial preempted, the survivor.
        const finishedOn = preemptedJobs.includes(jobId) ? [survivor.id] : [preempted.id, survivor.id];
        await vi.waitFor(
          () => {
            const last = attemptsOf(jobId).at(-1);
            expect(last?.done && finishedOn.includes(last.host as string), `${jobId} trained to the end`).toBe(true);
          },
          { timeout: 90_000, interval: 250 },
        );
        const attempts = attemptsOf(jobId);
        const rows = await rowsOf(jobId);
        for (const a of attempts.filter((a) => a.attempt > 1)) {
          // Every attempt after the first resumed from a committed checkpoint of an earlier one,
          // whose bytes the trainer checked; or from scratch, when none was committed as it
          // started (the trial's first attempt was on the cut-off host, its uploads stalled).
          // (Attempt numbers may skip: a task Temporal handed to the cut-off host's last polls
          // never reached it, and timed out.)
          const story = () =>
            `${JSON.stringify(attempts.map(({ acked, ...rest }) => ({ ...rest, acked: acked.map((e) => e.checkpoint) })))}; ` +
            `rows ${rows.map((r) => `${r.uri.split('/').slice(-2).join('/')}:${r.status}`).join(' ')}`;
          if (a.resumeStep === null) {
            const committedBefore = rows.filter(
              (r) => attemptOfRow(r) < a.attempt && r.committedAt && r.committedAt.getTime() < a.startedAt,
            );
            expect(committedBefore, `${jobId} attempt ${a.attempt} started from scratch: ${story()}`).toEqual([]);
            continue;
          }
          expect(a.restored, `${jobId} attempt ${a.attempt}: the restored bytes`).toBe(true);
          const from = rows.filter((r) => r.step === a.resumeStep && attemptOfRow(r) < a.attempt);
          expect(from.map((r) => r.status)).toContain('committed');
        }
        // The job hears of the attempt's end a moment after the trainer logged it.
        await vi.waitFor(
          async () => {
            const progress = await keel.jobProgress(jobId);
            expect(progress.attempt).toBeGreaterThan(1);
            expect(progress.preemptions).toBeGreaterThanOrEqual(1);
            expect(progress.resumedFromStep).toBe(attempts.at(-1)?.resumeStep);
            expect(progress.step).toBe(steps);
          },
          { timeout: 60_000, interval: 250 },
        );
      }
      // The preempted host uploaded what its trainers were acked for (their last checkpoints
      // too) before it exited: all of it gets committed.
      for (const jobId of preemptedJobs) {
        for (const a of attemptsOf(jobId).filter((a) => a.host === preempted.id)) {
          for (const ack of a.acked) {
            const step = ack.checkpoint as number;
            const committed = async () => expect(rowOf(await rowsOf(jobId), a.attempt, step)?.status).toBe('committed');
            await vi.waitFor(committed, { timeout: 60_000, interval: 250 });
          }
        }
      }
      // What the cut-off host was acked for after its storage went silent is on record, and
      // was never uploaded.
      for (const s of stranded) {
        await vi.waitFor(async () => expect(rowOf(await rowsOf(s.jobId), s.attempt, s.step)).toBeDefined(), {
          timeout: 60_000,
          interval: 250,
        });
        expect(['pending', 'failed']).toContain(rowOf(await rowsOf(s.jobId), s.attempt, s.step)?.status);
      }
    }, 240_000);

    test('every trial completes, and every acked checkpoint is on record: committed, collected, or failed with its reason', async () => {
      const db = await keel.database();
      await explainedWait(
        (async () => {
          for (;;) {
            const trials = await listTrials(db, studyId);
            const done = trials.length === nTrials && trials.every((t) => t.state === 'completed');
            if (done && (await getStudy(db, studyId))?.status === 'completed') return;
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        })(),
        120_000,
      );
      console.log(`the study completed ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut`);
      for (const jobId of trialJobs) {
        expect(await keel.jobResult(jobId), jobId).toMatchObject({ status: 'completed', step: steps });
        const log = readLog(jobId);
        const rows = await rowsOf(jobId);
        const acked = log.filter((e) => e.checkpoint !== undefined && e.reply?.type === 'ack');
        // Every checkpoint a trainer was acked for has a row, and none is left waiting.
        for (const ack of acked) {
          const row = rowOf(rows, ack.attempt, ack.checkpoint as number);
          expect(row, `${jobId}: acked step ${ack.checkpoint} of attempt ${ack.attempt} has no row`).toBeDefined();
          expect(['committed', 'gc', 'failed']).toContain(row?.status);
          if (row?.status === 'failed') expect(row.failureReason).toBeTruthy();
        }
        for (const row of rows) {
          expect(row.status, row.uri).not.toBe('pending');
          // A row without an ack can only come from the cut-off host (its link went down
          // between the job hearing of the checkpoint and the trainer's ack).
          if (!acked.some((e) => rowOf([row], e.attempt, e.checkpoint as number))) {
            const attempt = attemptsOf(jobId).find((a) => a.attempt === attemptOfRow(row));
            expect(attempt?.host, `${row.uri}: a row nobody was acked for`).toBe(cut.id);
          }
        }
        // Committed objects are in the bucket with the row's digest, which is the trainer's.
        for (const row of rows.filter((r) => r.status === 'committed')) {
          const ack = acked.find((e) => rowOf([row], e.attempt, e.checkpoint as number));
          const storage = openStorage(row.uri);
          for (const file of row.files) {
            expect((await storage.head(file.path))?.sha256, `${row.uri}/${file.path}`).toBe(file.sha256);
            if (ack) expect(file.sha256).toBe(ack.files?.[file.path]);
          }
          await storage.close();
        }
        // Nothing staged is left on the hosts that are up but what a failed row holds.
        for (const h of [preempted, survivor]) {
          for (const a of attemptsOf(jobId).filter((a) => a.host === h.id)) {
            const staged = path.join(h.home, 'work', encodeURIComponent(jobId), `attempt-${a.attempt}`, 'staged');
            for (const entry of fs.existsSync(staged) ? fs.readdirSync(staged) : []) {
              const step = Number(entry.replace('step-', ''));
              expect(rowOf(rows, a.attempt, step)?.status, `${staged}/${entry}`).toBe('failed');
            }
          }
        }
      }
    }, 150_000);

    test('what the lost host was acked for and never uploaded is marked failed, naming the host, and none of it is in the bucket', async () => {
      const lostReason = new RegExp(
        `^host keel-host-${cut.id} was lost before uploading it \\(attempt \\d+ stopped heartbeating`,
      );
      expect(stranded.length).toBeGreaterThan(0);
      for (const s of stranded) {
        const row = rowOf(await rowsOf(s.jobId), s.attempt, s.step);
        expect(row?.status, `${s.jobId} attempt ${s.attempt} step ${s.step}`).toBe('failed');
        expect(row?.failureReason).toMatch(lostReason);
      }
      console.log(
        `a stranded checkpoint's reason: ${(await rowsOf(stranded[0]?.jobId as string)).find((r) => r.status === 'failed')?.failureReason}`,
      );
      for (const jobId of cutJobs) {
        const onCut = attemptsOf(jobId)
          .filter((a) => a.host === cut.id)
          .map((a) => a.attempt);
        const failed = (await rowsOf(jobId)).filter((r) => onCut.includes(attemptOfRow(r)) && r.status === 'failed');
        // Each of the lost host's checkpoints was uploaded before the cut, or failed for that reason.
        for (const row of failed) {
          expect(row.failureReason, row.uri).toMatch(lostReason);
          const storage = openStorage(row.uri);
          for (const file of row.files)
            expect(await storage.head(file.path), `${row.uri}/${file.path}`).toBeUndefined();
          await storage.close();
        }
        // What it cost: the job waited this long after its training ended elsewhere.
        const closed = (await keel.temporal.workflow.getHandle(jobId).describe()).closeTime?.getTime() ?? 0;
        const trained = attemptsOf(jobId).at(-1)?.doneAt ?? 0;
        console.log(`${jobId} ended ${((closed - trained) / 1000).toFixed(1)} s after its training did`);
        // The job's progress tells the same.
        const progress = await keel.jobProgress(jobId);
        const told = progress.failedCheckpoints.filter((f) => lostReason.test(f.reason)).map((f) => f.step);
        expect(told.sort((a, b) => a - b)).toEqual(failed.map((r) => r.step).sort((a, b) => a - b));
      }
    }, 60_000);

    test('no process is left: the survivor stops cleanly, and the lost host, once reclaimed, leaves no trainer behind', async () => {
      // The lost host's pod is reclaimed (SIGKILL to its worker): its trainers notice their
      // worker is gone and exit. The survivor is stopped as an operator would.
      cut.child.kill('SIGKILL');
      survivor.child.kill('SIGTERM');
      expect(await survivor.exited, survivor.output.slice(-3000)).toEqual({ code: 0, signal: null });
      expect(await cut.exited).toEqual({ code: null, signal: 'SIGKILL' });
      for (const h of hosts) {
        await vi.waitFor(() => expect(h.net.pids(), `processes left in ${h.net.netns}`).toEqual([]), {
          timeout: 15_000,
          interval: 200,
        });
      }
      for (const jobId of trialJobs) {
        for (const a of attemptsOf(jobId)) expect(liveProcess(a.pid), `trainer ${a.pid} of ${jobId}`).toBe(false);
      }
    }, 60_000);
  },
);
