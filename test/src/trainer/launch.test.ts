// One trainer attempt, as the launch activity runs it, with real processes: a clean finish, a
// crash, a hang, a graceful stop that reaches the whole process tree, a trainer that ignores
// SIGTERM, and GPU slots.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpuCapacityError, GpuSlots, type LaunchRequest, launchTrainer } from '@keel/activities/trainer';
import { afterEach, describe, expect, test } from 'vitest';

const trainer = fileURLToPath(new URL('./fixtures/behaviour-trainer.ts', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function request(mode: string, overrides: Partial<LaunchRequest> = {}): LaunchRequest {
  const attemptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-launch-'));
  dirs.push(attemptDir);
  return {
    command: [process.execPath, trainer],
    params: { mode },
    jobId: 'job-1',
    attempt: 1,
    attemptDir,
    progressTimeoutMs: 60_000,
    stopGraceMs: 10_000,
    ...overrides,
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('launching a trainer', () => {
  test('passes the environment of the protocol and completes', async () => {
    const req = request('env', { gpus: ['1', '3'], resume: { path: '/restored/step-40', step: 40 }, attempt: 2 });
    const { result } = await launchTrainer(req);
    const done = await result;
    expect(done).toMatchObject({ outcome: 'completed', exitCode: 0 });
    expect(done.session.finalMetrics).toEqual({ ok: 1 });
    expect(JSON.parse(done.outputTail)).toEqual({
      cuda: '1,3',
      resumeFrom: { path: '/restored/step-40', step: 40 },
      attempt: 2,
    });
    expect(fs.readFileSync(done.logFile, 'utf8')).toContain('"cuda":"1,3"');
  });

  test('a crash is reported with its exit code and the end of its output', async () => {
    const done = await (await launchTrainer(request('crash'))).result;
    expect(done).toMatchObject({ outcome: 'crashed', exitCode: 3 });
    expect(done.outputTail).toContain('CUDA error: out of memory');
    expect(done.session.step).toBe(1);
  });

  test('a trainer silent past the progress timeout is killed as hung', async () => {
    const started = Date.now();
    const done = await (await launchTrainer(request('hang', { progressTimeoutMs: 1500 }))).result;
    expect(done).toMatchObject({ outcome: 'hung', signal: 'SIGKILL' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  });

  test('stop() lets the trainer save a final checkpoint, and no process of its tree survives', async () => {
    const running = await launchTrainer(request('tree'));
    for (let i = 0; i < 200 && (running.session.step ?? 0) < 3; i++) await new Promise((r) => setTimeout(r, 20));
    running.stop('cancel');
    const done = await running.result;
    expect(done).toMatchObject({ outcome: 'stopped', exitCode: 0, stopReason: 'cancel' });
    expect(done.session.staged).toHaveLength(1);
    expect(done.session.staged[0]?.step).toBe(done.session.step);
    const grandchild = JSON.parse(done.outputTail.split('\n')[0] as string).grandchild as number;
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(grandchild)).toBe(false);
  });

  test('a trainer that ignores SIGTERM is killed after the grace period', async () => {
    const running = await launchTrainer(request('stubborn', { stopGraceMs: 500 }));
    for (let i = 0; i < 200 && running.session.step === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    running.stop('preempt');
    const done = await running.result;
    expect(done).toMatchObject({ outcome: 'stopped', signal: 'SIGKILL', stopReason: 'preempt' });
  });

  test('a command that cannot start is a clear error', async () => {
    const running = await launchTrainer(request('env', { command: ['/no/such/trainer'] }));
    await expect(running.result).rejects.toThrow(
      'cannot start the trainer ["/no/such/trainer"]: spawn /no/such/trainer ENOENT',
    );
  });
});

describe('GPU slots', () => {
  const devices = [
    { id: '0', name: 'A' },
    { id: '1', name: 'B' },
  ];

  test('two jobs get different devices; a third waits until one is released', async () => {
    const slots = new GpuSlots(devices);
    const first = await slots.acquire(1);
    const second = await slots.acquire(1);
    expect([first.devices, second.devices]).toEqual([['0'], ['1']]);
    let third: string[] | undefined;
    const waiting = slots.acquire(1).then((lease) => (third = lease.devices));
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBeUndefined();
    second.release();
    await waiting;
    expect(third).toEqual(['1']);
  });

  test('a request larger than the host is refused at once, by name', async () => {
    await expect(new GpuSlots(devices).acquire(4)).rejects.toThrow(GpuCapacityError);
    await expect(new GpuSlots([]).acquire(1)).rejects.toThrow('the job needs 1 GPU(s) and this host has 0');
    expect((await new GpuSlots([]).acquire(0)).devices).toEqual([]);
  });

  test('a big request at the head of the line is not overtaken, and aborting leaves the line', async () => {
    const slots = new GpuSlots(devices);
    const one = await slots.acquire(1);
    const order: string[] = [];
    const big = slots.acquire(2).then((l) => {
      order.push('big');
      return l;
    });
    const small = slots.acquire(1).then((l) => {
      order.push('small');
      return l;
    });
    const abort = new AbortController();
    const gaveUp = slots.acquire(1, abort.signal);
    abort.abort(new Error('cancelled'));
    await expect(gaveUp).rejects.toThrow('cancelled');
    one.release();
    (await big).release();
    await small;
    expect(order).toEqual(['big', 'small']);
  });
});
