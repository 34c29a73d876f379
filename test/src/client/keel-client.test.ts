// The typed client (@keel/client) as a script uses it, against a real dev server and a real keel
// worker running the example MLP: start, watch, read trials and checkpoints, download verified
// bytes, stop, and the named errors for bad specs, unknown ids and corrupt objects.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidSpecError, KeelClient, NotFoundError, type StudyProgress } from '@keel/client';
import { ChecksumMismatchError } from '@keel/storage';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { mlpJob, mlpStudy } from './fixtures/specs.ts';

const services = inject('services');
const worker = useInProcessWorker('client', services.temporal);
let keel: KeelClient;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-client-'));

beforeAll(async () => {
  keel = await KeelClient.connect({
    temporal: { connectionOptions: { address: services.temporal.address } },
    taskQueue: worker.name,
    databaseUrl: worker.config.databaseUrl,
  });
});
afterAll(async () => {
  await keel?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('KeelClient', () => {
  test('starts a study, watches it to the end, and reads its trials and the best checkpoint', async () => {
    const { studyId } = await keel.startStudy(mlpStudy(worker));
    expect(studyId).toMatch(/^study-mlp-sweep-[0-9a-f]{8}$/);

    const seen: StudyProgress[] = [];
    for await (const p of keel.watchStudy(studyId, { intervalMs: 200 })) seen.push(p);
    const last = seen.at(-1) as StudyProgress;
    expect(last.status).toBe('completed');
    expect(last.counts.completed).toBe(4);
    expect(last.objective).toEqual({ metric: 'val_loss', direction: 'minimize' });
    // Watching yields changes, so it saw the study in between, with trials running.
    expect(seen.some((p) => p.counts.running > 0)).toBe(true);
    expect(new Set(seen.map((p) => JSON.stringify(p))).size).toBe(seen.length);

    const trials = await keel.studyTrials(studyId);
    expect(trials.map((t) => t.state)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const best = trials.reduce((a, b) => ((a.value as number) <= (b.value as number) ? a : b));
    expect(last.best?.number).toBe(best.number);

    const checkpoints = await keel.listCheckpoints(best.jobId as string);
    expect(checkpoints.filter((c) => c.status === 'committed').map((c) => c.step)).toContain(200);

    const dest = path.join(tmp, 'best');
    const got = await keel.downloadCheckpoint(best.jobId as string, { dest, step: 200 });
    expect(got.checkpoint.step).toBe(200);
    for (const file of got.files) {
      const stored = fileURLToPath(`${got.checkpoint.uri}/${file.path}`);
      expect(sha256(path.join(dest, file.path))).toBe(sha256(stored));
      expect(file.sha256).toBe(sha256(stored));
    }
  });

  test('starts a job, reads its progress and stops it with a final checkpoint', async () => {
    const { jobId } = await keel.startJob(mlpJob(worker, { steps: 100_000, stepDelayMs: 5 }), {
      id: `client-job-${Date.now()}`,
    });
    for await (const p of keel.watchJob(jobId, { intervalMs: 200 })) {
      if (p.checkpoints.committed > 0) break;
    }
    await keel.stopJob(jobId, 'enough');
    const result = await keel.jobResult(jobId);
    expect(result.status).toBe('stopped');
    const progress = await keel.jobProgress(jobId);
    expect(progress.status).toBe('stopped');
    const committed = (await keel.listCheckpoints(jobId)).filter((c) => c.status === 'committed');
    expect(committed.at(-1)?.step).toBe(result.step);
  });

  test('names every bad field of a spec and starts nothing', async () => {
    const spec = mlpStudy(worker, { nTrials: 0, sampler: { type: 'annealing' } as never });
    const err = await keel.startStudy(spec, { id: 'never-started' }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidSpecError);
    expect((err as InvalidSpecError).issues.map((i) => i.field)).toEqual(
      expect.arrayContaining(['nTrials', 'sampler.type']),
    );
    await expect(keel.studyProgress('never-started')).rejects.toBeInstanceOf(NotFoundError);
  });

  test('unknown ids and ids of the other kind are NotFoundErrors that say which', async () => {
    await expect(keel.studyProgress('no-such-study')).rejects.toThrow("no study 'no-such-study'");
    await expect(keel.listCheckpoints('no-such-job')).rejects.toThrow("no job 'no-such-job'");
    const { jobId } = await keel.startJob(mlpJob(worker, { steps: 20 }));
    await expect(keel.stopStudy(jobId)).rejects.toThrow(`'${jobId}' is a trainingJob workflow, not a keel study`);
    await keel.jobResult(jobId);
    await expect(keel.downloadCheckpoint(jobId, { dest: path.join(tmp, 'x'), step: 7 })).rejects.toThrow(
      `job '${jobId}' has no committed checkpoint at step 7 (committed: 20)`,
    );
  });

  test('a download whose object was altered in storage fails by checksum and leaves no file', async () => {
    const { jobId } = await keel.startJob(mlpJob(worker, { steps: 100 }));
    await keel.jobResult(jobId);
    const [newest] = (await keel.listCheckpoints(jobId)).filter((c) => c.step === 100);
    const file = newest?.files[0]?.path as string;
    fs.appendFileSync(fileURLToPath(`${newest?.uri}/${file}`), 'tampered');
    const dest = path.join(tmp, 'tampered');
    const err = await keel.downloadCheckpoint(jobId, { dest }).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(fs.existsSync(path.join(dest, file))).toBe(false);
  });
});
