// The soak (issue #7): a 100-trial study on two keel worker processes (two hosts) with real faults
// injected every few seconds from a seeded PRNG: kill -9 of a worker and its trainers (the host
// comes back), SIGKILL of a trainer, the study's MinIO killed and restarted, MinIO frozen with
// SIGSTOP; and trainers that crash at a step their params pick (once per job, or on every attempt
// for the few "poison" trials, which fail once retries run out). The study must finish with every
// trial accounted for, and nothing any trainer was acked for may be lost: every ack in the
// trainers' logs has a committed row whose object is in MinIO with the trainer's own sha256, or a
// row failed with a reason. Then: database and storage agree, no staged copy is left, no process.
//
// The seed is printed; KEEL_SOAK_SEED=<seed> gives the same trials' params and the same schedule
// of faults again. Run alone:
//   bash scripts/with-tools.sh pnpm exec vitest run --project integration test/src/faults/soak.test.ts
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectClient } from '@keel/client';
import {
  type Checkpoint,
  type Job,
  type KeelDatabase,
  listCheckpoints,
  listJobs,
  listTrials,
  openDatabase,
} from '@keel/db';
import { openStorage } from '@keel/storage';
import { hpoStudy, type StudyResult, studyProgressQuery } from '@keel/workflows';
import type { Client } from '@temporalio/client';
import { afterAll, expect, inject, test, vi } from 'vitest';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';
import { readTrainerLog, type TrainerEvent } from '../harness/fault-job.ts';
import { liveInGroup, liveProcess } from '../harness/processes.ts';
import { useS3Environment } from '../harness/s3-env.ts';
import { type PrivateMinio, startPrivateMinio } from '../harness/services.ts';
import { testWorkerConfig } from '../harness/workers.ts';
import { faultKinds, type InjectedFault, startFaultLoop, trainersOf, WorkerHost } from './fixtures/soak-faults.ts';

const services = inject('services');
const trainer = fileURLToPath(new URL('./fixtures/soak-trainer.ts', import.meta.url));

const seed = soakSeed(process.env.KEEL_SOAK_SEED);
const nTrials = 100;
const trialParams = { steps: 12, stepMs: 150, every: 2, poisonBelow: 0.04 };
const bucket = 'soak';
const name = `soak-${process.pid}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-soak-'));
const logDir = path.join(home, 'trainer-logs');
fs.mkdirSync(logDir);

let minio: PrivateMinio | undefined;
let database: FreshDatabase | undefined;
let client: Client | undefined;
const hosts: WorkerHost[] = [];

afterAll(async () => {
  for (const host of hosts) await host.kill(); // only if the test failed midway: it stops them itself
  await client?.connection.close();
  await minio?.close();
  await database?.drop();
  vi.unstubAllEnvs();
  fs.rmSync(home, { recursive: true, force: true });
});

/** KEEL_SOAK_SEED, or a fresh one: a whole number the PRNGs take. */
function soakSeed(value: string | undefined): number {
  if (value === undefined || value === '') return randomInt(2 ** 31 - 1);
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1) {
    throw new Error(
      `KEEL_SOAK_SEED: '${value}' is not a whole number from 0 to ${2 ** 31 - 1}; unset it for a fresh seed`,
    );
  }
  return Number(value);
}

const say = (line: string) => console.log(`soak: ${line}`);

test(`a ${nTrials}-trial study under random kills and outages finishes with every trial accounted for and no checkpoint lost`, async () => {
  const started = Date.now();
  say(`seed ${seed} (KEEL_SOAK_SEED=${seed} reproduces the trials' params and the fault schedule)`);
  minio = await startPrivateMinio();
  await useS3Environment(minio.endpoint, bucket); // the workers inherit it (and so does this process)
  database = await freshDatabase('postgres', services.postgres.url); // two hosts write at once
  for (const label of ['a', 'b']) {
    const config = testWorkerConfig(path.join(home, `host-${label}`), services.temporal, name, {
      databaseUrl: database.url,
      hostId: `${name}-${label}`,
      hostTaskQueue: `${name}-host-${label}`,
      storageUri: `s3://${bucket}/default`,
    });
    hosts.push(new WorkerHost(label, config));
  }
  await Promise.all(hosts.map((h) => h.start()));
  client = await connectClient({ connectionOptions: { address: services.temporal.address } });

  const studyId = `soak-${seed}-${Date.now()}`;
  await client.workflow.start(hpoStudy, {
    taskQueue: name,
    workflowId: studyId,
    args: [
      {
        space: {
          x: { type: 'float', low: -1, high: 2 },
          crashAt: { type: 'int', low: 1, high: 36 }, // a third of the trials crash once, at this step
          poison: { type: 'float', low: 0, high: 1 }, // below poisonBelow: crash on every attempt
        },
        objective: { metric: 'loss', direction: 'minimize' },
        nTrials,
        maxConcurrency: 8,
        seed,
        sampler: { type: 'random' },
        pruner: { type: 'median', startupTrials: 5, warmupSteps: 4 },
        // The breaker is tested elsewhere (studies/hpo-study.test.ts); here the poisoned trials'
        // failures must neither slow the study down nor stop it.
        failures: { retriesPerTrial: 1, consecutiveToHalve: nTrials, maxFailedTrials: nTrials },
        trial: {
          command: [process.execPath, trainer],
          params: { logDir, ...trialParams },
          storage: `s3://${bucket}/${studyId}`,
          gpus: 0,
          gpuTaskQueue: `${name}-gpu`,
          checkpoints: { keepLast: 100 }, // keep every one, so each can be checked
          timeouts: { heartbeatSeconds: 5 },
        },
      },
    ],
  });

  const chaos = startFaultLoop({
    seed,
    jobPrefix: studyId,
    hosts,
    minio,
    gapMs: [1_000, 3_000],
    outageMs: [2_000, 4_000],
    log: (line) => say(`fault ${chaos.faults.length + 1}: ${line}`),
  });
  let result: StudyResult;
  let faults: InjectedFault[];
  try {
    result = await studyResultOrStall(client, studyId, () => chaos.faults.length);
  } finally {
    faults = await chaos.stop(); // the fault under way is undone first (MinIO up, the host back)
  }
  const studySeconds = (Date.now() - started) / 1000;

  const db = await openDatabase({ url: database.url });
  let ledger: Awaited<ReturnType<typeof checkpointLedger>>;
  let verdict: ReturnType<typeof judgeFaults>;
  let trials: Awaited<ReturnType<typeof listTrials>>;
  try {
    trials = await listTrials(db, studyId);
    ledger = await checkpointLedger(db, studyId);
    const jobs = new Map((await listJobs(db, { studyId, limit: 10_000 })).map((j) => [j.id, j]));
    verdict = judgeFaults(faults, ledger, (jobId) => jobs.get(jobId));
  } finally {
    await db.close();
  }
  const stored = await storedKeys(`s3://${bucket}/${studyId}`);
  const starts = [...ledger.logs.values()].flat().filter((e) => e.pid);
  printSummary({
    seed,
    trials: {
      total: nTrials,
      completed: result.counts.completed,
      pruned: result.counts.pruned,
      failed: result.counts.failed,
    },
    faults: Object.fromEntries(verdict.rows.map((r) => [r.kind, { injected: r.injected, survived: r.survived }])),
    trainersKilledWithWorkers: faults.filter((f) => f.kind === 'worker-kill').flatMap((f) => f.touched).length,
    crashesThatExhaustedRetries: verdict.exhausted.length,
    attempts: starts.length,
    attemptsByHost: Object.fromEntries(
      hosts.map((h) => [h.label, starts.filter((e) => h.pids.includes(e.ppid as number)).length]),
    ),
    attemptsResumedFromCheckpoint: starts.filter((e) => (e.resumeStep ?? 0) > 0).length,
    checkpoints: {
      acked: ledger.acked,
      committed: ledger.committed,
      failedWithReason: ledger.failed,
      recordedAckNotLogged: ledger.recordedUnacked,
      lost: ledger.lost,
    },
    seconds: Math.round(studySeconds),
  });

  // Every trial accounted for: completed, pruned, or failed from its own crashes.
  expect(result.status).toBe('completed');
  expect(result.counts).toMatchObject({ pending: 0, running: 0, stopped: 0 });
  expect(result.counts.completed + result.counts.pruned + result.counts.failed).toBe(nTrials);
  expect(trials.map((t) => t.number)).toEqual(Array.from({ length: nTrials }, (_, i) => i));
  for (const t of trials) {
    expect(['completed', 'pruned', 'failed'], `trial ${t.number}`).toContain(t.state);
    if (t.state === 'failed') {
      expect(poisoned(t.params), `trial ${t.number} failed, and it was not a poisoned one: ${t.error}`).toBe(true);
      // Its job's failures ran out (the last one may be a kill that met it there).
      expect(t.error).toMatch(/^failed \d+ times \(maxFailures \d+\); last: /);
    }
    if (poisoned(t.params)) expect(['failed', 'pruned'], `poisoned trial ${t.number}`).toContain(t.state);
  }

  // Nothing lost: every ack has its row, committed with its objects (the trainer's bytes) or
  // failed with a reason; and the bucket holds exactly the committed rows' objects.
  expect(ledger.problems, 'acked checkpoints lost, or rows and objects that disagree').toEqual([]);
  expect(ledger.lost).toBe(0);
  expect(ledger.acked).toBeGreaterThan(nTrials); // the trials did checkpoint
  expect(ledger.committed + ledger.failed).toBe(ledger.acked + ledger.recordedUnacked);
  expect(stored.sort()).toEqual([...ledger.committedKeys].sort());
  // No staged copy left on either host: every one was uploaded or discarded; or, for a
  // checkpoint a job marked failed while it took a restarting host for lost, swept by that host
  // (every 10 s: removeSettledStaging).
  await vi.waitFor(() => expect(leftoverStaging(hosts, studyId), 'staged copies left').toEqual([]), {
    timeout: 30_000,
    interval: 500,
  });

  // Every kind of fault happened, and keel survived each one; only poisoned jobs ran out of retries.
  for (const kind of faultKinds)
    expect(
      faults.some((f) => f.kind === kind),
      `a ${kind} was injected`,
    ).toBe(true);
  expect(verdict.crashes).toBeGreaterThan(0);
  expect(verdict.unexplained, 'faults keel did not survive').toEqual([]);
  expect(
    verdict.exhausted.filter((c) => !c.poisoned),
    'crashes that ran out of retries in healthy trials',
  ).toEqual([]);

  // No process left: no trainer of the study, nothing in any trainer's group; then the hosts
  // stop as hosts are stopped (SIGTERM), every worker process is gone, and so is MinIO.
  expect(trainersOf(studyId)).toEqual([]);
  for (const e of starts) expect(liveInGroup(e.pid as number), `trainer group ${e.pid}`).toEqual([]);
  for (const host of hosts) expect(await host.stop(), `host ${host.label} stopped on SIGTERM`).toBe('stopped');
  for (const pid of hosts.flatMap((h) => h.pids)) expect(liveProcess(pid), `worker ${pid}`).toBe(false);
  const minioPid = minio.pid;
  await minio.close();
  minio = undefined;
  expect(liveInGroup(minioPid)).toEqual([]);
}, 900_000);

/** No trial ending for this long means the study is stuck: nothing in it waits that long on purpose
 *  (crash backoffs are seconds, a dead worker is noticed in 5 s, an upload it held in 30 s). */
const stallSeconds = 180;

/**
 * The study's result, with a progress line every 15 s meanwhile. A stuck study fails the test at
 * once, naming each running trial's job and what its pending activities last failed with, rather
 * than at the test's timeout with nothing to go on.
 */
async function studyResultOrStall(client: Client, studyId: string, faultsSoFar: () => number): Promise<StudyResult> {
  const handle = client.workflow.getHandle<typeof hpoStudy>(studyId);
  const ending = handle.result();
  ending.catch(() => {}); // awaited below; a stall leaves it behind
  let done = -1;
  let changedAt = Date.now();
  let saidAt = 0;
  for (;;) {
    const ended = await Promise.race([ending.then((r) => ({ r })), sleep(5_000)]);
    if (ended) return ended.r;
    const p = await handle.query(studyProgressQuery).catch(() => undefined); // its worker may just have died
    if (!p) continue;
    const c = p.counts;
    const now = c.completed + c.pruned + c.failed + c.stopped;
    if (now !== done) [done, changedAt] = [now, Date.now()];
    if (Date.now() - saidAt >= 15_000) {
      saidAt = Date.now();
      say(
        `${now}/${nTrials} done (completed ${c.completed}, pruned ${c.pruned}, failed ${c.failed}), running ${c.running}; ${faultsSoFar()} faults so far`,
      );
    }
    if (Date.now() - changedAt < stallSeconds * 1000) continue;
    const stuck: string[] = [];
    for (const t of p.trials.filter((t) => t.state === 'running')) {
      const described = await client.workflow
        .getHandle(t.jobId)
        .describe()
        .catch(() => undefined);
      const pending = described?.raw.pendingActivities ?? [];
      stuck.push(
        `${t.jobId}: ${pending.map((a) => `${a.activityType?.name} attempt ${a.attempt}, last failure: ${a.lastFailure?.message ?? 'none'}`).join('; ') || 'no pending activity'}`,
      );
    }
    throw new Error(
      `the study made no progress for ${stallSeconds} s at ${now}/${nTrials} trials; running:\n${stuck.join('\n')}`,
    );
  }
}

const sleep = (ms: number) => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms));

/** A poisoned trial crashes on every attempt (fixtures/soak-trainer.ts). */
const poisoned = (params: unknown) => ((params as { poison?: number })?.poison ?? 1) < trialParams.poisonBelow;

/**
 * Which faults keel survived. A kill is survived when every job it hit went on in a later attempt
 * or ended well (completed, or stopped: pruned); a MinIO outage when every checkpoint acked during
 * it was committed. Trainer crashes (from the trials' params) are judged like kills. Unexplained:
 * a fault not survived that hit anything but poisoned jobs, whose failures may run out.
 */
function judgeFaults(
  faults: InjectedFault[],
  ledger: Awaited<ReturnType<typeof checkpointLedger>>,
  jobOf: (jobId: string) => Job | undefined,
) {
  const laterAttempt = (jobId: string, attempt: number) =>
    (ledger.logs.get(jobId) ?? []).some((e) => e.pid !== undefined && e.attempt > attempt);
  const endedWell = (jobId: string) => ['completed', 'stopped'].includes(jobOf(jobId)?.status ?? '');
  const wentOn = (t: { jobId: string; attempt: number }) => laterAttempt(t.jobId, t.attempt) || endedWell(t.jobId);
  const poisonedJob = (jobId: string) => poisoned(jobOf(jobId)?.spec.params);
  const survived = (f: InjectedFault) => {
    if (f.touched.length > 0 || (f.kind !== 'minio-down' && f.kind !== 'minio-hung')) return f.touched.every(wentOn);
    const during = ledger.acks.filter((a) => a.at >= f.at && a.at <= f.until);
    return during.every((a) => a.committed);
  };
  const crashes = [...ledger.logs].flatMap(([jobId, events]) =>
    events
      .filter((e) => e.crash !== undefined)
      .map((e) => ({ jobId, attempt: e.attempt, poisoned: poisonedJob(jobId) })),
  );
  const rows = [
    ...faultKinds.map((kind) => {
      const of = faults.filter((f) => f.kind === kind);
      return { kind: kind as string, injected: of.length, survived: of.filter(survived).length };
    }),
    { kind: 'trainer-crash (by params)', injected: crashes.length, survived: crashes.filter(wentOn).length },
  ];
  return {
    rows,
    crashes: crashes.length,
    exhausted: crashes.filter((c) => !wentOn(c)),
    unexplained: faults.filter(
      (f) => !survived(f) && !(f.touched.length > 0 && f.touched.every((t) => poisonedJob(t.jobId))),
    ),
  };
}

/** Every object under `uri`. */
async function storedKeys(uri: string): Promise<string[]> {
  const keys: string[] = [];
  const storage = openStorage(uri);
  try {
    for await (const object of storage.list()) keys.push(object.key);
  } finally {
    await storage.close();
  }
  return keys;
}

interface AckRecord {
  jobId: string;
  attempt: number;
  step: number;
  at: number;
  committed: boolean;
}

/**
 * Every checkpoint of the study's jobs, from both sides: the trainers' logs (what they were acked
 * for) and the database, with each committed row's objects fetched from MinIO and hashed. Lost:
 * an ack with no row, a row still pending or uploading after the study ended, a failed row with no
 * reason, or a committed row whose object is missing or differs from what the trainer wrote.
 */
async function checkpointLedger(db: KeelDatabase, studyId: string) {
  const logs = new Map<string, TrainerEvent[]>();
  const acks: AckRecord[] = [];
  const problems: string[] = [];
  const committedKeys = new Set<string>();
  let recordedUnacked = 0;
  let committed = 0;
  let failed = 0;
  const storageUri = `s3://${bucket}/${studyId}`;
  const storage = openStorage(storageUri);
  const downloads = fs.mkdtempSync(path.join(home, 'verify-'));
  try {
    for (const job of await listJobs(db, { studyId, limit: 10_000 })) {
      const file = path.join(logDir, `${encodeURIComponent(job.id)}.log`);
      const events = fs.existsSync(file) ? readTrainerLog(file) : [];
      logs.set(job.id, events);
      const rows = await listCheckpoints(db, job.id);
      const rowOf = (attempt: number, step: number) =>
        rows.find((r) => r.uri.endsWith(`/attempt-${attempt}/step-${step}`));
      const acked = events.filter((e) => e.checkpoint !== undefined && e.reply?.type === 'ack');
      for (const ack of acked) {
        const row = rowOf(ack.attempt, ack.checkpoint as number);
        const where = `${job.id} attempt ${ack.attempt} step ${ack.checkpoint}`;
        if (!row) problems.push(`${where}: acked, and no row`);
        acks.push({
          jobId: job.id,
          attempt: ack.attempt,
          step: ack.checkpoint as number,
          at: ack.at as number,
          committed: row?.status === 'committed',
        });
      }
      for (const row of rows) {
        const ack = acked.find((e) => rowOf(e.attempt, e.checkpoint as number) === row);
        if (!ack) recordedUnacked += 1; // the trainer was killed between keel's ack and its log line
        const where = `${job.id} ${row.uri.slice(storageUri.length + 1)}`;
        if (row.status === 'failed') {
          if (row.failureReason) failed += 1;
          else problems.push(`${where}: failed with no reason`);
        } else if (row.status === 'committed' || row.status === 'gc') {
          committed += 1; // gc: collected by retention after its commit (none with keepLast 100)
          if (row.status === 'gc') continue;
          problems.push(...(await verifyObjects(row, storageUri, storage, downloads, ack, committedKeys)));
        } else {
          problems.push(`${where}: still ${row.status} after the study ended`);
        }
      }
    }
  } finally {
    await storage.close();
    fs.rmSync(downloads, { recursive: true, force: true });
  }
  const lost = problems.length;
  return { logs, acks, acked: acks.length, committed, failed, recordedUnacked, lost, problems, committedKeys };
}

/** A committed row's objects: in storage, with the row's sha256, which is the trainer's own. */
async function verifyObjects(
  row: Checkpoint,
  storageUri: string,
  storage: ReturnType<typeof openStorage>,
  downloads: string,
  ack: TrainerEvent | undefined,
  keys: Set<string>,
): Promise<string[]> {
  const problems: string[] = [];
  for (const file of row.files) {
    const key = `${row.uri.slice(storageUri.length + 1)}/${file.path}`;
    keys.add(key);
    if (ack && file.sha256 !== ack.files?.[file.path]) problems.push(`${key}: the row's sha256 is not the trainer's`);
    try {
      const got = await storage.get(key, path.join(downloads, `${row.id}-${file.path}`));
      if (got.sha256 !== file.sha256) problems.push(`${key}: the stored bytes differ from the row's sha256`);
    } catch (err) {
      problems.push(`${key}: committed, and cannot be read back: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** Files left in any attempt's staging folder of the study's jobs, on either host. */
function leftoverStaging(hosts: WorkerHost[], studyId: string): string[] {
  const left: string[] = [];
  for (const host of hosts) {
    const work = host.config.workDir;
    if (!fs.existsSync(work)) continue;
    for (const job of fs.readdirSync(work).filter((d) => decodeURIComponent(d).startsWith(studyId))) {
      for (const attempt of fs.readdirSync(path.join(work, job))) {
        const staged = path.join(work, job, attempt, 'staged');
        if (fs.existsSync(staged))
          left.push(...fs.readdirSync(staged).map((f) => `${host.label}:${job}/${attempt}/${f}`));
      }
    }
  }
  return left;
}

function printSummary(summary: {
  seed: number;
  seconds: number;
  trials: Record<string, number>;
  faults: Record<string, { injected: number; survived: number }>;
  crashesThatExhaustedRetries: number;
  checkpoints: Record<string, number>;
  [more: string]: unknown;
}) {
  const t = summary.trials;
  const c = summary.checkpoints;
  const lines = [
    `soak: seed ${summary.seed}, ${t.total} trials in ${summary.seconds} s: ${t.completed} completed, ${t.pruned} pruned, ${t.failed} failed`,
    '',
    '| fault | injected | survived |',
    '|---|---|---|',
    ...Object.entries(summary.faults).map(([kind, f]) => `| ${kind} | ${f.injected} | ${f.survived} |`),
    '',
    `(crashes not survived: the last crash of a poisoned trial's job, ${summary.crashesThatExhaustedRetries} in all)`,
    '',
    '| checkpoints | acked | committed | failed (with reason) | recorded, ack not logged | lost |',
    '|---|---|---|---|---|---|',
    `| | ${c.acked} | ${c.committed} | ${c.failedWithReason} | ${c.recordedAckNotLogged} | ${c.lost} |`,
    '',
    `SOAK ${JSON.stringify(summary)}`,
  ];
  console.log(lines.join('\n'));
}
