// GPU classes across hosts: workers are real `keel worker` processes configured from the
// environment only, as a pod runs them, sharing one Temporal, one PostgreSQL database and one
// checkpoint folder. A worker with KEEL_GPU_CLASS=a100 takes the jobs that ask for `gpuClass:
// "a100"` (from `<gpu queue>-a100`) and no others; a job whose class no worker serves says so in
// its progress and in the UI's current details instead of waiting silently, and runs once a
// worker of that class starts; with timeouts.waitForWorkerSeconds it fails instead, naming the
// class. No GPU here: the A100 host's GPUs come from a fake `nvidia-smi` on its PATH that prints
// recorded nvidia-smi output, which the worker reads as it would on a real host.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeelClient } from '@keel/client';
import { getJob, openDatabase } from '@keel/db';
import { gpuClassOfModel } from '@keel/workers';
import { type JobSpecInput, progressQuery } from '@keel/workflows';
import { InvalidSpecError } from '@keel/workflows/specs';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { mlpJob } from '../client/fixtures/specs.ts';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';
import { killTree } from '../harness/worker-process.ts';

const services = inject('services');
const name = `gpuclass-${process.pid}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-gpuclass-'));
const storage = path.join(root, 'checkpoints');

// What `nvidia-smi --query-gpu=index,name --format=csv,noheader` prints on a host with four
// A100s (the CSV nvidia-smi prints: index, then the model name). The fake answers only that
// exact query, so the test also proves which query keel runs.
const recordedNvidiaSmi = [
  '0, NVIDIA A100-SXM4-80GB',
  '1, NVIDIA A100-SXM4-80GB',
  '2, NVIDIA A100-SXM4-80GB',
  '3, NVIDIA A100-SXM4-80GB',
  '',
].join('\n');
const fakeNvidiaSmiDir = path.join(root, 'fake-nvidia-smi');

let db: FreshDatabase;
let keel: KeelClient;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  fs.mkdirSync(storage);
  fs.mkdirSync(fakeNvidiaSmiDir);
  fs.writeFileSync(path.join(fakeNvidiaSmiDir, 'recorded-output.csv'), recordedNvidiaSmi);
  fs.writeFileSync(
    path.join(fakeNvidiaSmiDir, 'nvidia-smi'),
    [
      '#!/bin/sh',
      '# A fake nvidia-smi (no GPU here): prints recorded output for the one query keel makes.',
      '[ "$*" = "--query-gpu=index,name --format=csv,noheader" ] || { echo "fake nvidia-smi: unexpected query: $*" >&2; exit 9; }',
      `exec cat '${path.join(fakeNvidiaSmiDir, 'recorded-output.csv')}'`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  db = await freshDatabase('postgres', services.postgres.url);
  keel = await KeelClient.connect({
    temporal: { connectionOptions: { address: services.temporal.address }, namespace: services.temporal.namespace },
    taskQueue: name,
    databaseUrl: db.url,
  });
});

afterAll(async () => {
  await Promise.all(workers.map(stopWorker));
  await keel?.close();
  await db?.drop();
  fs.rmSync(root, { recursive: true, force: true });
});

/** The environment of one host: the fleet's Temporal, database and storage, its own name and home. */
function hostEnv(host: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: services.temporal.address,
    TEMPORAL_NAMESPACE: services.temporal.namespace,
    DATABASE_URL: db.url,
    KEEL_TASK_QUEUE: name,
    KEEL_GPU_TASK_QUEUE: `${name}-gpu`,
    KEEL_HOST_ID: `${name}-${host}`,
    KEEL_HOME: path.join(root, host),
    KEEL_STORAGE_URI: `file://${storage}`,
    ...extra,
  };
  // The hosts find their GPUs themselves (nvidia-smi, or none), unless a test names them.
  if (!('KEEL_GPUS' in extra)) delete env.KEEL_GPUS;
  if (!('KEEL_GPU_CLASS' in extra)) delete env.KEEL_GPU_CLASS;
  return env;
}

/** `keel worker` as a pod runs it; resolves once it serves its queues. */
async function startWorker(
  host: string,
  extra: Record<string, string> = {},
): Promise<{ pid: number; log: () => string }> {
  const child = spawn(process.execPath, [path.resolve('client/src/cli.ts'), 'worker'], {
    env: hostEnv(host, extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  let log = '';
  child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (log.includes('keel worker: serving task queues')) done(resolve);
      else if (child.exitCode !== null) done(() => reject(new Error(`worker ${host} exited:\n${log}`)));
    }, 100);
    const done = (then: () => void) => {
      clearInterval(poll);
      then();
    };
  });
  return { pid: child.pid as number, log: () => log };
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => killTree(child.pid as number), 30_000);
  await exited;
  clearTimeout(timer);
}

function keelCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.resolve('client/src/cli.ts'), ...args], { env }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

/** Where the job's trainer attempts were scheduled, and which worker process (pid) took each. */
async function attemptsOf(jobId: string): Promise<{ taskQueue: string; pid: number }[]> {
  const history = await keel.temporal.workflow.getHandle(jobId).fetchHistory();
  const scheduled = new Map<string, string>();
  const attempts: { taskQueue: string; pid: number }[] = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s?.activityType?.name === 'runTrainer') scheduled.set(String(event.eventId), String(s.taskQueue?.name));
    const started = event.activityTaskStartedEventAttributes;
    const queue = started ? scheduled.get(String(started.scheduledEventId)) : undefined;
    if (started && queue !== undefined) {
      attempts.push({ taskQueue: queue, pid: Number(started.identity?.split('@')[0]) });
    }
  }
  return attempts;
}

const job = (extra: Partial<JobSpecInput>): JobSpecInput => ({
  ...mlpJob({ name }, { steps: 60, checkpointEvery: 20, evalEvery: 20 }),
  ...extra,
});

/** The UI's "current details" of a workflow (what `temporal workflow metadata` prints). */
async function currentDetails(jobId: string): Promise<string> {
  const handle = keel.temporal.workflow.getHandle(jobId);
  const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

describe('GPU classes', () => {
  let plain: { pid: number };
  let a100: { pid: number; log: () => string };

  beforeAll(async () => {
    // A host without a class (takes the jobs that name none) and an A100 host whose GPUs are
    // what nvidia-smi lists (the fake, printing recorded output).
    [plain, a100] = await Promise.all([
      startWorker('plain', { KEEL_GPUS: 'none' }),
      startWorker('a100', {
        KEEL_GPU_CLASS: 'a100',
        PATH: `${fakeNvidiaSmiDir}${path.delimiter}${process.env.PATH}`,
        KEEL_METRICS_PORT: '0',
      }),
    ]);
  });

  test('a worker with KEEL_GPU_CLASS=a100 (GPUs from a fake nvidia-smi printing recorded nvidia-smi output) runs the job that requires a100, from its own queue; a job with no class runs on the other host', async () => {
    expect(a100.log()).toContain(`serving task queues '${name}', '${name}-gpu-a100', 'keel-host-${name}-a100'`);
    expect(a100.log()).toContain('4 GPU(s) (NVIDIA A100-SXM4-80GB), GPU class a100');

    const { jobId } = await keel.startJob(job({ gpuClass: 'a100', gpus: 2 }), { id: `${name}-needs-a100` });
    const { jobId: anyJob } = await keel.startJob(job({}), { id: `${name}-any-gpu-host` });
    expect(await keel.jobResult(jobId)).toMatchObject({ status: 'completed', step: 60, attempts: 1 });
    expect(await keel.jobResult(anyJob)).toMatchObject({ status: 'completed', step: 60, attempts: 1 });

    expect(await attemptsOf(jobId)).toEqual([{ taskQueue: `${name}-gpu-a100`, pid: a100.pid }]);
    expect(await attemptsOf(anyJob)).toEqual([{ taskQueue: `${name}-gpu`, pid: plain.pid }]);
    const progress = await keel.jobProgress(jobId);
    expect(progress).toMatchObject({ taskQueue: `${name}-gpu-a100`, waiting: null, attempt: 1 });

    // The host describes itself: /healthz and keel_worker_info carry the class and the model.
    const metricsUrl = /metrics on (http:\/\/\S+\/metrics)/.exec(a100.log())?.[1] as string;
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toContain(
      `keel_worker_info{gpu_class="a100",gpu_task_queue="${name}-gpu-a100",gpu_models="NVIDIA A100-SXM4-80GB",host="${name}-a100"} 1`,
    );
    expect(metrics).toMatch(new RegExp(`keel_gpu_slots\\{host="${name}-a100"\\} 4`));
    const health = (await (await fetch(metricsUrl.replace(/metrics$/, 'healthz'))).json()) as { gpus: unknown };
    expect(health.gpus).toMatchObject({ total: 4, class: 'a100', models: ['NVIDIA A100-SXM4-80GB'] });
  });

  test('a job requiring a class no worker serves says so in its progress and current details, then runs once a worker of that class starts', async () => {
    const jobId = `${name}-needs-h100`;
    await keel.startJob(job({ gpuClass: 'h100', timeouts: { pickUpSeconds: 2 } }), { id: jobId });
    const expected = `waiting: no worker serves GPU class h100 (task queue ${name}-gpu-h100)`;
    let progress = await keel.jobProgress(jobId);
    for (const deadline = Date.now() + 60_000; progress.waiting !== expected && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      progress = await keel.jobProgress(jobId);
    }
    expect(progress).toMatchObject({ status: 'running', waiting: expected, attempt: 0, step: null });
    expect(progress.taskQueue).toBe(`${name}-gpu-h100`);
    expect(await currentDetails(jobId)).toContain(expected);
    // Still waiting, not failed: the hosts of other classes never took it.
    expect(await attemptsOf(jobId)).toEqual([]);

    const h100 = await startWorker('h100', { KEEL_GPU_CLASS: 'h100', KEEL_GPUS: 'none' });
    expect(await keel.jobResult(jobId)).toMatchObject({ status: 'completed', step: 60, attempts: 1 });
    expect(await attemptsOf(jobId)).toEqual([{ taskQueue: `${name}-gpu-h100`, pid: h100.pid }]);
    expect(await keel.jobProgress(jobId)).toMatchObject({ waiting: null, attempt: 1, failures: 0, preemptions: 0 });
    expect(await currentDetails(jobId)).not.toContain('waiting:');
  });

  test('with timeouts.waitForWorkerSeconds, a job whose class no worker serves fails, naming the class and the queue', async () => {
    const jobId = `${name}-needs-v100`;
    await keel.startJob(job({ gpuClass: 'v100', timeouts: { pickUpSeconds: 1, waitForWorkerSeconds: 3 } }), {
      id: jobId,
    });
    const error = await keel.jobResult(jobId).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(((error as WorkflowFailedError).cause as Error).message).toBe(
      `no worker serves GPU class v100 (task queue ${name}-gpu-v100); gave up after 3s (timeouts.waitForWorkerSeconds)`,
    );
    const database = await openDatabase({ url: db.url });
    try {
      expect(await getJob(database, jobId)).toMatchObject({ status: 'failed' });
    } finally {
      await database.close();
    }
    const progress = await keel.temporal.workflow.getHandle(jobId).query(progressQuery);
    expect(progress).toMatchObject({ status: 'failed', attempt: 0, waiting: null });
  });

  test('a job stopped while it waits for a worker of its class ends stopped, waiting no more', async () => {
    const jobId = `${name}-needs-p100`;
    await keel.startJob(job({ gpuClass: 'p100', timeouts: { pickUpSeconds: 1 } }), { id: jobId });
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      if ((await keel.jobProgress(jobId)).waiting) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect((await keel.jobProgress(jobId)).waiting).toBe(
      `waiting: no worker serves GPU class p100 (task queue ${name}-gpu-p100)`,
    );
    await keel.stopJob(jobId, 'no P100 today');
    expect(await keel.jobResult(jobId)).toMatchObject({ status: 'stopped', attempts: 0, step: null });
    expect(await keel.jobProgress(jobId)).toMatchObject({ status: 'stopped', waiting: null });
    expect(await attemptsOf(jobId)).toEqual([]);
  });
});

describe('bad GPU classes are refused by name', () => {
  test('a job spec whose gpuClass is not a class name: InvalidSpecError naming the field', async () => {
    const error = await keel.startJob(job({ gpuClass: 'A100 80GB' })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidSpecError);
    expect((error as InvalidSpecError).issues).toEqual([
      {
        field: 'gpuClass',
        message:
          "expected a GPU class such as 'a100' or 'h100-80gb': lower-case letters, digits and inner dashes, at most 40",
      },
    ]);
  });

  test('a worker whose KEEL_GPU_CLASS is not a class name does not start, and says which variable', async () => {
    const { code, stderr } = await keelCli(['worker'], hostEnv('bad', { KEEL_GPU_CLASS: 'A100!' }));
    expect(code).toBe(1);
    expect(stderr).toContain("keel: KEEL_GPU_CLASS: 'A100!': expected a GPU class such as 'a100'");
  });
});

describe('keel worker --check on a GPU host (a fake nvidia-smi printing recorded nvidia-smi output)', () => {
  const gpusLine = (stdout: string) => stdout.split('\n').find((l) => l.slice(6).startsWith('gpus')) ?? '';
  const withFake = (extra: Record<string, string>) =>
    hostEnv('check', { PATH: `${fakeNvidiaSmiDir}${path.delimiter}${process.env.PATH}`, ...extra });
  const devices =
    '4: 0 (NVIDIA A100-SXM4-80GB), 1 (NVIDIA A100-SXM4-80GB), 2 (NVIDIA A100-SXM4-80GB), 3 (NVIDIA A100-SXM4-80GB)';

  test('without KEEL_GPU_CLASS: the GPUs nvidia-smi lists, the default queue, and the class they look like', async () => {
    const { code, stdout } = await keelCli(['worker', '--check'], withFake({}));
    expect(code, stdout).toBe(0);
    expect(gpusLine(stdout)).toBe(
      `ok    gpus      ${devices}; no GPU class: takes jobs without gpuClass from task queue ${name}-gpu; ` +
        `these look like class 'a100' (KEEL_GPU_CLASS=a100 would take jobs with gpuClass 'a100' instead)`,
    );
  });

  test("with KEEL_GPU_CLASS=a100: the class's queue, in the GPU line and among the queues Temporal will see", async () => {
    const { code, stdout } = await keelCli(['worker', '--check'], withFake({ KEEL_GPU_CLASS: 'a100' }));
    expect(code, stdout).toBe(0);
    expect(gpusLine(stdout)).toBe(
      `ok    gpus      ${devices}; GPU class a100: takes jobs with gpuClass 'a100' from task queue ${name}-gpu-a100`,
    );
    expect(stdout).toMatch(
      new RegExp(`^ok {4}temporal .*keel's search attributes registered; task queues ${name}, ${name}-gpu-a100, `, 'm'),
    );
  });

  test('class names from nvidia-smi model names (recorded nvidia-smi output of several hosts)', () => {
    expect(
      Object.fromEntries(
        [
          'NVIDIA A100-SXM4-80GB',
          'NVIDIA A100-PCIE-40GB',
          'NVIDIA H100 80GB HBM3',
          'NVIDIA H200',
          'Tesla T4',
          'Tesla V100-SXM2-16GB',
          'NVIDIA L40S',
          'NVIDIA A10G',
          'NVIDIA GeForce RTX 4090',
          'NVIDIA RTX A6000',
        ].map((model) => [model, gpuClassOfModel(model)]),
      ),
    ).toEqual({
      'NVIDIA A100-SXM4-80GB': 'a100',
      'NVIDIA A100-PCIE-40GB': 'a100',
      'NVIDIA H100 80GB HBM3': 'h100',
      'NVIDIA H200': 'h200',
      'Tesla T4': 't4',
      'Tesla V100-SXM2-16GB': 'v100',
      'NVIDIA L40S': 'l40s',
      'NVIDIA A10G': 'a10g',
      'NVIDIA GeForce RTX 4090': 'rtx-4090',
      'NVIDIA RTX A6000': 'rtx-a6000',
    });
  });
});
