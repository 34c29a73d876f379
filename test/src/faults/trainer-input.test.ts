// Hostile trainers (issue #7): real trainer processes (fixtures/hostile-trainer.ts) that send
// broken lines, floods, huge metrics, escaping paths, bad steps, hang or crash, run as training
// jobs by a real keel worker against the test Temporal server. After each fault the job must
// reach its end (or train on past the refused input), and:
// - every checkpoint the trainer was acked for (its own log) is committed, collected by retention
//   or failed with a reason, and nothing it was not acked for is on record;
// - every committed row's files are in storage with the row's sha256, and are the bytes the
//   trainer wrote (so nothing saved changed);
// - each bad input got an answer naming the problem (an error code);
// - no process of any attempt is left (each trainer's process group is gone) and the worker
//   still runs, holding no trainer.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlServer, type TrainerMessage, TrainerSession } from '@keel/activities/trainer';
import { getJob } from '@keel/db';
import { type JobSpecInput, progressQuery, trainingJob } from '@keel/workflows';
import { describe, expect, inject, test } from 'vitest';
import { checkCheckpointInvariants, type TrainerEvent } from '../harness/fault-job.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { liveProcess } from '../harness/processes.ts';

const services = inject('services');
const trainer = fileURLToPath(new URL('./fixtures/hostile-trainer.ts', import.meta.url));
const sdkTrainer = fileURLToPath(new URL('./fixtures/sdk-trainer.ts', import.meta.url));
const worker = useInProcessWorker('faults', services.temporal);

type Reply = { type: string; step?: number; error?: string; code?: string };
interface LogEvent {
  attempt: number;
  pid?: number;
  resumeStep?: number | null;
  checkpoint?: number;
  path?: string;
  files?: Record<string, string>;
  reply?: Reply;
  bad?: string;
  grandchild?: number;
  replies?: Reply[];
  crashPlan?: { kind: string; step: number };
  final?: string;
  step?: number;
  flooded?: number;
  ms?: number;
  sent?: number;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const readLog = (file: string): LogEvent[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

/** Starts a job running the hostile trainer with `fault`; returns its handle and log file. */
async function startJob(fault: string, params: object = {}, extra: Partial<JobSpecInput> = {}) {
  const jobId = `${fault}-${Date.now()}`;
  const log = path.join(worker.home, `${jobId}.log`);
  const handle = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        params: { fault, log, ...params },
        gpus: 0,
        gpuTaskQueue: `${worker.name}-gpu`,
        checkpoints: { keepLast: 100 },
        ...extra,
      },
    ],
  });
  return { jobId, handle, log };
}

/** The invariants every fault must leave standing (harness/fault-job.ts); returns the job's rows. */
const checkInvariants = (jobId: string, log: LogEvent[]) =>
  checkCheckpointInvariants(worker, jobId, log as TrainerEvent[], { exactObjects: true, digestsOptional: true });

const committedSteps = (rows: Awaited<ReturnType<typeof checkInvariants>>) =>
  rows.filter((r) => r.status === 'committed').map((r) => r.step);

describe('hostile trainers', () => {
  test('malformed and invalid lines are answered by name and training goes on', async () => {
    const { jobId, handle, log } = await startJob('malformed');
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 1 });
    const events = readLog(log);
    const answers = Object.fromEntries(events.filter((e) => e.bad).map((e) => [e.bad, e.reply]));
    expect(answers).toEqual({
      'not json': { type: 'error', code: 'not_json', error: 'not JSON: not json at all' },
      truncated: { type: 'error', code: 'not_json', error: expect.stringContaining('not JSON') },
      'an array': { type: 'error', code: 'bad_message', error: expect.stringContaining('bad message') },
      'unknown type': { type: 'error', code: 'bad_message', error: expect.stringContaining('type') },
      'negative step': { type: 'error', code: 'bad_message', error: expect.stringContaining('step') },
      'fractional step': { type: 'error', code: 'bad_message', error: expect.stringContaining('step') },
      'NaN metric': { type: 'error', code: 'bad_message', error: expect.stringContaining('metrics.loss') },
      'invalid UTF-8': { type: 'error', code: 'not_json', error: expect.stringContaining('not JSON') },
      // A checkpoint keel cannot use is refused for its step, so the trainer is not left waiting.
      'checkpoint with bad metrics': {
        type: 'nack',
        step: 4,
        code: 'bad_message',
        error: expect.stringContaining('metrics.loss'),
      },
      'checkpoint without a path': {
        type: 'nack',
        step: 6,
        code: 'bad_message',
        error: expect.stringContaining('path'),
      },
      'unknown protocol': {
        type: 'error',
        code: 'unsupported_protocol',
        error: expect.stringContaining('protocol 99'),
      },
    });
    const rows = await checkInvariants(jobId, events);
    expect(committedSteps(rows)).toEqual([1, 5]);
  });

  test('200k reports as fast as the socket takes them: all read, checkpoints among them acked and committed', async () => {
    const { jobId, handle, log } = await startJob('flood', { count: 200_000, checkpointEvery: 50_000 });
    const started = Date.now();
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 1, step: 200_000 });
    expect(Date.now() - started).toBeLessThan(30_000);
    const events = readLog(log);
    expect(events.find((e) => e.flooded)?.flooded).toBe(200_000);
    const rows = await checkInvariants(jobId, events);
    expect(committedSteps(rows)).toEqual([1, 50_000, 100_000, 150_000, 200_000]);
    expect((await handle.query(progressQuery)).metrics.loss).toBe(1 / 200_000);
  });

  test('huge metrics: 100k keys, a 10 MB line and 77k distinct names are refused by name; nothing grows unbounded', async () => {
    const { jobId, handle, log } = await startJob('metrics');
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 1 });
    const events = readLog(log);
    const answers = Object.fromEntries(events.filter((e) => e.bad).map((e) => [e.bad, e.reply]));
    expect(answers).toEqual({
      '100k metrics in a report': { type: 'error', code: 'too_many_metrics', error: expect.stringContaining('256') },
      '100k metrics in a checkpoint': {
        type: 'nack',
        step: 3,
        code: 'too_many_metrics',
        error: expect.stringContaining('256'),
      },
      'a 10 MB line': { type: 'error', code: 'line_too_long', error: expect.stringContaining('1048576') },
    });
    const errors = events.find((e) => e.replies)?.replies ?? [];
    // One answer for the 10 MB line, not one per MiB of it.
    expect(errors.filter((r) => r.code === 'line_too_long')).toHaveLength(1);
    // 300 reports of 256 new names: once the attempt holds 1024 names, new ones are refused.
    const refusedNames = errors.filter((r) => r.code === 'too_many_metric_names');
    expect(refusedNames.length).toBeGreaterThanOrEqual(296);
    expect(refusedNames[0]?.error).toContain('1024');
    const progress = await handle.query(progressQuery);
    expect(Object.keys(progress.metrics).length).toBeLessThanOrEqual(1024);
    expect(Object.keys((await getJob(worker.keel.db, jobId))?.finalMetrics ?? {}).length).toBeLessThanOrEqual(1024);
    const rows = await checkInvariants(jobId, events);
    expect(committedSteps(rows)).toEqual([1, 400]);
  });

  test('checkpoint paths outside the folder (.., absolute, symlinks, a FIFO, NUL) are refused; outside files untouched', async () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-outside-'));
    const secret = path.join(outside, 'secret.bin');
    fs.writeFileSync(secret, 'not yours');
    fs.chmodSync(secret, 0o640);
    try {
      const { jobId, handle, log } = await startJob('paths', { outside }, { timeouts: { progressSeconds: 30 } });
      expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 1 });
      const events = readLog(log);
      const answers = Object.fromEntries(
        events.filter((e) => e.checkpoint !== undefined).map((e) => [e.checkpoint, [e.reply?.type, e.reply?.code]]),
      );
      expect(answers).toEqual({
        1: ['ack', undefined],
        2: ['nack', 'outside_checkpoint_dir'], // ../escape.bin
        3: ['nack', 'outside_checkpoint_dir'], // an absolute path elsewhere
        4: ['nack', 'outside_checkpoint_dir'], // a symlink inside that leads outside
        5: ['nack', 'not_regular_file'], // a folder holding such a symlink
        6: ['nack', 'not_regular_file'], // a folder holding a symlink to a folder outside
        7: ['nack', 'not_regular_file'], // a FIFO: reading it at upload would block forever
        8: ['nack', 'bad_path'], // a NUL byte
        9: ['nack', 'outside_checkpoint_dir'], // the checkpoint folder itself
        10: ['ack', undefined],
      });
      // Nothing outside changed: staging makes what it takes read-only, so a link taken by
      // mistake would show in the mode.
      expect(fs.readFileSync(secret, 'utf8')).toBe('not yours');
      expect(fs.statSync(secret).mode & 0o777).toBe(0o640);
      const rows = await checkInvariants(jobId, events);
      expect(committedSteps(rows)).toEqual([1, 10]);
      expect(rows.flatMap((r) => r.files.map((f) => f.path))).toEqual(['weights.bin', 'weights.bin']);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });

  test('duplicate and backward steps are refused, before and after a resume; the saved step keeps its bytes', async () => {
    const { jobId, handle, log } = await startJob('steps', {}, { failures: { maxFailures: 2 } });
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 2, step: 30 });
    const events = readLog(log);
    const answer = (attempt: number, reported: string) =>
      events.find((e) => e.attempt === attempt && e.path === reported)?.reply;
    expect(answer(1, 'again-10')).toMatchObject({
      type: 'nack',
      code: 'step_not_increasing',
      error: "step 10 is not after the last checkpoint's step 10",
    });
    expect(answer(1, 'back-5')).toMatchObject({ type: 'nack', code: 'step_not_increasing' });
    const resumeStep = events.find((e) => e.attempt === 2 && e.pid)?.resumeStep as number;
    expect([10, 20]).toContain(resumeStep);
    expect(answer(2, 'at-resume')).toMatchObject({
      type: 'nack',
      step: resumeStep,
      code: 'step_not_increasing',
      error: `step ${resumeStep} is not after the last checkpoint's step ${resumeStep}`,
    });
    expect(answer(2, 'below-resume')).toMatchObject({ type: 'nack', code: 'step_not_increasing' });
    const progress = await handle.query(progressQuery);
    expect(progress.lastError).toContain('crashing on purpose after step 20');
    const rows = await checkInvariants(jobId, events);
    // Step 10 holds what was first acked for it, not the duplicate's bytes.
    const ten = rows.find((r) => r.step === 10);
    expect(ten?.files[0]?.sha256).toBe(sha256('weights 10 attempt 1'));
    expect(committedSteps(rows)).toEqual([10, 20, 30]);
  });

  test('a hung trainer (half a line, then only garbage) is killed with its whole process group and the job resumes', async () => {
    const { jobId, handle, log } = await startJob('hang', {}, { timeouts: { progressSeconds: 10 } });
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 2, step: 4 });
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ failures: 1, resumedFromStep: 2 });
    expect(progress.lastError).toBe('the trainer was silent for 10s and was killed');
    const events = readLog(log);
    const grandchild = events.find((e) => e.grandchild)?.grandchild as number;
    expect(liveProcess(grandchild)).toBe(false);
    const rows = await checkInvariants(jobId, events);
    expect(committedSteps(rows)).toEqual([2, 4]);
  });

  test('crashes at seeded random steps and places: every attempt resumes, and the run ends bit-identical', async () => {
    const seed = 8; // crashes right after an ack, halfway through a checkpoint line, and before a report
    const { jobId, handle, log } = await startJob(
      'crashy',
      { seed, steps: 60, checkpointEvery: 5, crashes: 3 },
      { failures: { maxFailures: 3 } },
    );
    expect(await handle.result()).toMatchObject({ status: 'completed', attempts: 4, step: 60 });
    const events = readLog(log);
    const plans = events.filter((e) => e.crashPlan).map((e) => e.crashPlan);
    expect(plans.map((p) => p?.kind)).toEqual(['after-ack', 'half-line', 'before-report']);
    // Each attempt after the first resumed from a checkpoint the previous one had acked.
    const resumes = events.filter((e) => e.pid).map((e) => e.resumeStep);
    expect(resumes[0]).toBeNull();
    for (let a = 2; a <= 4; a++) {
      const resumed = resumes[a - 1];
      if (resumed !== null) {
        const acked = events.some((e) => e.checkpoint === resumed && e.reply?.type === 'ack' && e.attempt < a);
        expect(acked).toBe(true);
      }
    }
    // The same final state as a run that never crashed.
    let state = 'seed';
    for (let step = 1; step <= 60; step++) state = sha256(`${state}:${step}`);
    expect(events.find((e) => e.final)).toMatchObject({ attempt: 4, final: state, step: 60 });
    const progress = await handle.query(progressQuery);
    expect(progress.failures).toBe(3);
    expect(progress.lastError).toContain('crashing on purpose');
    const rows = await checkInvariants(jobId, events);
    expect(rows.filter((r) => r.status === 'committed').at(-1)?.step).toBe(60);
  });
});

describe('control socket', () => {
  test('an SDK trainer whose checkpoint keel cannot take hears why, by name, instead of waiting forever', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-sdk-'));
    const checkpointDir = path.join(root, 'checkpoints');
    fs.mkdirSync(checkpointDir);
    const session = new TrainerSession({ checkpointDir, stagingDir: path.join(root, 'staged') });
    const server = await startControlServer(path.join(root, 'control.sock'), session.handle);
    const child = spawn(process.execPath, [sdkTrainer], {
      env: { ...process.env, KEEL_PROTOCOL: '1', KEEL_CHECKPOINT_DIR: checkpointDir, KEEL_CONTROL: server.socketPath },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      expect(await once(child, 'exit')).toEqual([0, null]);
      expect(
        stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
      ).toEqual([
        { step: 1, refused: 'CheckpointRefusedError', code: 'bad_message' },
        { step: 2, refused: 'CheckpointRefusedError', code: 'too_many_metrics' },
        { step: 3, refused: 'CheckpointRefusedError', code: 'line_too_long' },
        { step: 4, acked: true },
      ]);
      expect(session.staged.map((s) => s.step)).toEqual([4]);
    } finally {
      clearTimeout(timer);
      await server.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('keel stops reading while it is busy: a flooding trainer is held back, then every line is handled in order', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-flood-'));
    const checkpointDir = path.join(root, 'checkpoints');
    fs.mkdirSync(checkpointDir);
    const session = new TrainerSession({ checkpointDir, stagingDir: path.join(root, 'staged') });
    // keel busy on the checkpoint at step 100k (as when Temporal is slow to take its signal).
    let release = () => {};
    const busy = new Promise<void>((resolve) => (release = resolve));
    let blocked = false;
    const steps: number[] = [];
    const server = await startControlServer(path.join(root, 'control.sock'), async (message: TrainerMessage) => {
      if (message.type === 'metric') steps.push(message.step);
      if (message.type === 'checkpoint' && message.step === 100_000) {
        blocked = true;
        await busy;
      }
      return session.handle(message);
    });
    const log = path.join(root, 'trainer.log');
    const child = spawn(process.execPath, [trainer], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        KEEL_PROTOCOL: '1',
        KEEL_ATTEMPT: '1',
        KEEL_PARAMS: JSON.stringify({ fault: 'flood', log, count: 400_000, checkpointEvery: 100_000 }),
        KEEL_CHECKPOINT_DIR: checkpointDir,
        KEEL_CONTROL: server.socketPath,
      },
    });
    const exited = once(child, 'exit');
    try {
      for (let i = 0; i < 500 && !blocked; i++) await new Promise((r) => setTimeout(r, 10));
      expect(blocked).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      const sent = Math.max(0, ...readLog(log).map((e) => e.sent ?? 0));
      // 300k more lines (20 MB) were ready to go; keel read at most a few MiB of them.
      expect(sent).toBeLessThan(200_000);
      release();
      expect(await exited).toEqual([0, null]);
      expect(session.step).toBe(400_000);
      expect(steps).toHaveLength(399_999);
      expect(steps.every((step, i) => step === i + 2)).toBe(true);
      expect(session.staged.map((s) => s.step)).toEqual([1, 100_000, 200_000, 300_000, 400_000]);
    } finally {
      release();
      child.kill('SIGKILL');
      await server.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
