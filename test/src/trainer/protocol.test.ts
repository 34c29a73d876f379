// keel's side of the trainer protocol (control socket, session, staging) against real trainer
// processes that use @keel/sdk: acks, refusals, stop requests, SIGTERM, and a run without keel.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ControlServer, startControlServer, TrainerSession } from '@keel/activities/trainer';
import { afterEach, describe, expect, test } from 'vitest';

const trainer = fileURLToPath(new URL('./fixtures/protocol-trainer.ts', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Attempt {
  root: string;
  checkpointDir: string;
  stagingDir: string;
  session: TrainerSession;
  server: ControlServer;
}

async function startAttempt(stagingRoot?: string): Promise<Attempt> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-protocol-'));
  const checkpointDir = path.join(root, 'checkpoints');
  const stagingDir = path.join(stagingRoot ?? root, 'staged');
  fs.mkdirSync(checkpointDir);
  const session = new TrainerSession({ checkpointDir, stagingDir });
  const server = await startControlServer(path.join(root, 'control.sock'), session.handle);
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => server.close());
  return { root, checkpointDir, stagingDir, session, server };
}

function runTrainer(attempt: Attempt | undefined, params: object, env: NodeJS.ProcessEnv = {}) {
  const keelEnv = attempt
    ? {
        KEEL_PROTOCOL: '1',
        KEEL_JOB_ID: 'job-1',
        KEEL_ATTEMPT: '1',
        KEEL_PARAMS: JSON.stringify(params),
        KEEL_CHECKPOINT_DIR: attempt.checkpointDir,
        KEEL_CONTROL: attempt.server.socketPath,
      }
    : { KEEL_PARAMS: JSON.stringify(params) };
  const child = spawn(process.execPath, [trainer], { env: { ...process.env, ...keelEnv, ...env } });
  const events: Record<string, unknown>[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    const lines = stdout.split('\n');
    stdout = lines.pop() ?? '';
    for (const line of lines) events.push(JSON.parse(line));
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const waitFor = async (key: string) => {
    for (let i = 0; i < 500 && !events.some((e) => key in e); i++) await new Promise((r) => setTimeout(r, 20));
    expect(
      events.some((e) => key in e),
      `trainer never printed ${key}; stderr: ${stderr}`,
    ).toBe(true);
  };
  return { child, events, exited, waitFor, stderr: () => stderr };
}

describe('trainer protocol', () => {
  test('checkpoints are staged by hard link and acked; metrics and final metrics reach keel', async () => {
    const attempt = await startAttempt();
    const run = runTrainer(attempt, {});
    expect(await run.exited).toEqual([0, null]);
    expect(run.events).toContainEqual({ step: 3, acked: true });
    expect(run.events).toContainEqual({ step: 4, acked: true });

    const [folder, file] = attempt.session.staged;
    expect(folder).toMatchObject({ step: 3, kind: 'directory', method: 'link', bytes: 3 * 1024 * 1024 + 10 });
    expect(folder?.files.map((f) => f.path)).toEqual(['meta/optimizer.json', 'weights.bin']);
    expect(file).toMatchObject({ step: 4, kind: 'file', name: 'model-4.bin', method: 'link', bytes: 1024 });
    // The staged file is the trainer's inode, made read-only.
    const staged = fs.statSync(path.join(attempt.stagingDir, 'step-3', 'weights.bin'));
    expect(staged.ino).toBe(fs.statSync(path.join(attempt.checkpointDir, 'step-3', 'weights.bin')).ino);
    expect(staged.mode & 0o222).toBe(0);

    expect(attempt.session.step).toBe(4);
    expect(attempt.session.metrics.loss).toBe(0.25);
    expect(attempt.session.finalMetrics).toEqual({ loss: 0.01 });
  });

  test('paths outside the checkpoint folder, symlink escapes, repeated steps and missing files are refused', async () => {
    const attempt = await startAttempt();
    const run = runTrainer(attempt, { hostile: true });
    expect(await run.exited).toEqual([0, null]);
    const refused = run.events.filter((e) => 'refused' in e);
    expect(refused.map((e) => [e.step, e.refused])).toEqual([
      [5, 'CheckpointRefusedError'],
      [6, 'CheckpointRefusedError'],
      [7, 'CheckpointRefusedError'],
      [4, 'CheckpointRefusedError'],
      [8, 'CheckpointRefusedError'],
    ]);
    expect(refused.map((e) => e.message)).toEqual([
      expect.stringContaining('outside the checkpoint folder'),
      expect.stringContaining('outside the checkpoint folder'),
      expect.stringContaining('outside the checkpoint folder'),
      "step 4 is not after the last checkpoint's step 4",
      expect.stringContaining('does not exist'),
    ]);
    // Only the two good checkpoints were staged.
    expect(fs.readdirSync(attempt.stagingDir).sort()).toEqual(['step-3', 'step-4']);
  });

  test.each([
    ['a stop message', 'preempt'],
    ['SIGTERM', 'SIGTERM'],
  ])('%s makes the trainer save a final checkpoint and exit 0', async (how, reason) => {
    const attempt = await startAttempt();
    const run = runTrainer(attempt, { waitForStop: true });
    await run.waitFor('waiting');
    if (how === 'SIGTERM') run.child.kill('SIGTERM');
    else attempt.server.broadcast({ type: 'stop', reason: 'preempt' });
    expect(await run.exited).toEqual([0, null]);
    expect(run.events).toContainEqual({ stopped: reason });
    expect(attempt.session.staged.map((s) => s.step)).toEqual([3, 4, 51]);
  });

  test('across filesystems the files are copied, with their sha256', async (context) => {
    if (fs.statSync('/dev/shm', { throwIfNoEntry: false })?.dev === fs.statSync(os.tmpdir()).dev) {
      context.skip(); // no second filesystem on this machine
    }
    const shm = fs.mkdtempSync('/dev/shm/keel-staging-');
    cleanups.push(() => fs.rmSync(shm, { recursive: true, force: true }));
    const attempt = await startAttempt(shm);
    const run = runTrainer(attempt, {});
    expect(await run.exited).toEqual([0, null]);
    const file = attempt.session.staged[1];
    expect(file).toMatchObject({ method: 'copy', files: [{ path: 'model-4.bin', bytes: 1024 }] });
    const expected = (await import('node:crypto')).createHash('sha256').update(Buffer.alloc(1024, 9)).digest('hex');
    expect(file?.files[0]?.sha256).toBe(expected);
  });

  test('a trainer run without keel still works', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-alone-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const run = runTrainer(undefined, {}, { KEEL_CHECKPOINT_DIR: dir });
    expect(await run.exited).toEqual([0, null]);
    expect(run.events).toContainEqual({ attached: false, attempt: 1, resumeFrom: null });
    expect(run.events).toContainEqual({ step: 4, acked: true });
    expect(fs.existsSync(path.join(dir, 'model-4.bin'))).toBe(true);
    expect(run.stderr()).toContain('step 1: {"loss":1}');
  });

  test('bad lines get an error back and the socket keeps working', async () => {
    const attempt = await startAttempt();
    const socket = net.connect(attempt.server.socketPath);
    await once(socket, 'connect');
    cleanups.push(() => void socket.destroy());
    const replies: string[] = [];
    socket.setEncoding('utf8').on('data', (chunk: string) => replies.push(...chunk.trim().split('\n')));
    socket.write('not json\n');
    socket.write(`${JSON.stringify({ type: 'metric', step: 1, metrics: { loss: 'high' } })}\n`);
    socket.write(`${'x'.repeat(1024 * 1024 + 10)}\n`);
    socket.write(`${JSON.stringify({ type: 'metric', step: 7, metrics: { loss: 0.5 } })}\n`);
    // The answer to the long line can be written in the same turn that handles step 7: wait for both.
    for (let i = 0; i < 100 && (attempt.session.step !== 7 || replies.length < 3); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(attempt.session.step).toBe(7);
    expect(replies.map((r) => JSON.parse(r).error)).toEqual([
      'not JSON: not json',
      'bad message: metrics.loss: Invalid input: expected number, received string',
      expect.stringContaining('line longer than 1048576 bytes'),
    ]);
  });
});
