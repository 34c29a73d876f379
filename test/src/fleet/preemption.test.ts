// A worker told it is being preempted, by SIGTERM or by a preemption notice (a file appearing, as a
// spot-notice hook would write it): its trainer saves and exits, the worker keeps serving its own
// host queue until that last checkpoint is uploaded, exits 0, and the job resumes on a worker of
// another host (its own host queue) from exactly that checkpoint and completes. No acked checkpoint
// vanishes: each ends committed, collected, or failed with its reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeelClient } from '@keel/client';
import { listCheckpoints, openDatabase } from '@keel/db';
import { watchPreemptionNotice } from '@keel/workers';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { mlpJob } from '../client/fixtures/specs.ts';
import { killTree, startWorkerProcess, type WorkerProcess } from '../harness/worker-process.ts';
import { testWorkerConfig } from '../harness/workers.ts';

const services = inject('services');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-preempt-'));
const name = `preempt-${process.pid}`;
const config = testWorkerConfig(home, services.temporal, name);
const noticeFile = path.join(home, 'preempted');
const started: WorkerProcess[] = [];

afterAll(() => {
  for (const w of started) killTree(w.child.pid as number);
  fs.rmSync(home, { recursive: true, force: true });
});

let hosts = 0;
/** A worker on a host of its own: its own host queue, as on another machine. */
function startWorker(notice?: string): WorkerProcess {
  const host = { hostTaskQueue: `${config.hostTaskQueue}-${++hosts}` };
  const worker = startWorkerProcess({
    ...config,
    ...host,
    ...(notice ? { preemptionNotice: { source: notice } } : {}),
  });
  started.push(worker);
  return worker;
}

const exitOf = (w: WorkerProcess) =>
  new Promise<number | null>((resolve) => {
    if (w.child.exitCode !== null) resolve(w.child.exitCode);
    else w.child.once('exit', (code) => resolve(code));
  });

describe.each([
  ['SIGTERM', (w: WorkerProcess) => w.child.kill('SIGTERM'), 'SIGTERM, preempting 1 trainer(s)'],
  [
    'a preemption notice file',
    () => fs.writeFileSync(noticeFile, 'spot termination in 120 s'),
    'appeared), preempting 1 trainer(s)',
  ],
])('preemption by %s', (_, preempt, logged) => {
  test('the trainer saves, the worker exits 0, the job resumes elsewhere and completes', async () => {
    // The previous case's workers go first: this job must start on the one told to stop.
    for (const w of started.splice(0)) {
      w.child.kill('SIGTERM');
      await exitOf(w);
    }
    fs.rmSync(noticeFile, { force: true });
    const first = startWorker(`file:${noticeFile}`);
    const keel = await KeelClient.connect({
      temporal: { connectionOptions: { address: services.temporal.address } },
      taskQueue: name,
      databaseUrl: config.databaseUrl,
    });
    try {
      const { jobId } = await keel.startJob({
        ...mlpJob({ name }, { steps: 600, stepDelayMs: 15, checkpointEvery: 50 }),
      });
      let committed = 0;
      for await (const p of keel.watchJob(jobId, { intervalMs: 100 })) {
        committed = p.newestCommittedStep ?? 0;
        if (committed >= 100) break;
      }
      preempt(first);
      expect(await exitOf(first)).toBe(0);
      expect(first.output()).toContain(logged);
      startWorker();
      const result = await keel.jobResult(jobId);
      expect(result).toMatchObject({ status: 'completed', step: 600 });
      const progress = await keel.jobProgress(jobId);
      expect(progress.preemptions).toBe(1);
      expect(progress.resumedFromStep).toBeGreaterThanOrEqual(committed);

      const db = await openDatabase({ url: config.databaseUrl });
      const rows = await listCheckpoints(db, jobId);
      await db.close();
      for (const row of rows) {
        expect(['committed', 'gc', 'failed']).toContain(row.status);
        if (row.status === 'failed') expect(row.failureReason).toBeTruthy();
      }
      expect(rows.some((r) => r.status === 'committed' && r.step === 600)).toBe(true);
      // The checkpoint the trainer saved when told to stop was uploaded by its own host while it
      // drained, and the next attempt resumed from exactly that step.
      const lastOfFirst = rows.filter((r) => r.uri.includes('/attempt-1/')).at(-1);
      expect(lastOfFirst?.step).toBeGreaterThan(committed);
      expect(lastOfFirst?.status).not.toBe('failed');
      expect(progress.resumedFromStep).toBe(lastOfFirst?.step);
    } finally {
      await keel.close();
    }
  });
});

describe('preemption notice sources', () => {
  test('an HTTP endpoint counts once it answers 200 with something other than false', async () => {
    const { createServer } = await import('node:http');
    let answer: [number, string] = [404, ''];
    const server = createServer((_, res) => res.writeHead(answer[0]).end(answer[1]));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const seen: string[] = [];
    const stop = watchPreemptionNotice(`http://127.0.0.1:${port}/preempted`, (n) => seen.push(n.reason));
    try {
      await new Promise((r) => setTimeout(r, 5500));
      answer = [200, 'FALSE'];
      await new Promise((r) => setTimeout(r, 5500));
      expect(seen).toEqual([]);
      answer = [200, 'TRUE'];
      await expect
        .poll(() => seen, { timeout: 12_000, interval: 200 })
        .toEqual([`http://127.0.0.1:${port}/preempted answered TRUE`]);
    } finally {
      stop();
      server.close();
    }
  }, 30_000);

  test('a source that is none of file:, http(s): or signal: is refused by name', () => {
    expect(() => watchPreemptionNotice('ftp://x', () => {})).toThrow(
      "KEEL_PREEMPTION_NOTICE: 'ftp://x' is not a notice source; use file:/path, http(s)://url or signal:SIGNAME",
    );
  });
});
