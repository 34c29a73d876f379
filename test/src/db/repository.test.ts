// The repository on both dialects, against real databases: a SQLite file and the harness's
// PostgreSQL. Every test runs the same calls and expects the same rows.
import {
  appliedMigrations,
  bestTrial,
  createJob,
  createStudy,
  type Dialect,
  getStudy,
  InvalidTransitionError,
  intermediateValues,
  type KeelDatabase,
  listCheckpoints,
  listJobs,
  listStudies,
  listTrials,
  markCheckpoint,
  migrateDatabase,
  newestCommittedCheckpoint,
  openDatabase,
  pendingMigrations,
  RecordConflictError,
  RecordNotFoundError,
  recordCheckpoint,
  recordIntermediateValue,
  recordIntermediateValues,
  recordTrial,
  setBestCheckpoint,
  updateJob,
  updateStudy,
  updateTrial,
} from '@keel/db';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';

const services = inject('services');
const sha = (c: string) => c.repeat(64);

describe.each<Dialect>(['sqlite', 'postgres'])('repository on %s', (dialect) => {
  let fresh: FreshDatabase;
  let db: KeelDatabase;

  beforeAll(async () => {
    fresh = await freshDatabase(dialect, services.postgres.url);
    db = await openDatabase({ url: fresh.url });
  });

  afterAll(async () => {
    await db?.close();
    await fresh?.drop();
  });

  test('migrations apply once; a second run applies none', async () => {
    const files = await pendingMigrations(db);
    expect(files).toBeGreaterThan(0);
    expect(await appliedMigrations(db)).toBe(0);
    await migrateDatabase(db);
    await migrateDatabase(db);
    expect(await appliedMigrations(db)).toBe(files);
    expect(await pendingMigrations(db)).toBe(0);
    expect(await listJobs(db)).toEqual([]);
  });

  test('jobs: created once, stamped as they run and end, terminal states are final', async () => {
    const spec = { command: ['python', 'train.py'], params: { lr: 0.01, layers: [64, 64] } };
    const job = await createJob(db, { id: 'job-a', spec });
    expect(job).toMatchObject({ id: 'job-a', status: 'pending', resumes: 0, startedAt: null, endedAt: null });
    expect(job.createdAt).toBeInstanceOf(Date);
    expect((await createJob(db, { id: 'job-a', spec: { other: true } })).spec).toEqual(spec);

    const running = await updateJob(db, 'job-a', { status: 'running' });
    expect(running.startedAt).toBeInstanceOf(Date);
    const resumed = await updateJob(db, 'job-a', { status: 'running', resumed: true });
    expect(resumed.resumes).toBe(1);
    expect(resumed.startedAt).toEqual(running.startedAt);

    const done = await updateJob(db, 'job-a', { status: 'completed', finalMetrics: { loss: 0.12, acc: 0.97 } });
    expect(done).toMatchObject({ status: 'completed', finalMetrics: { loss: 0.12, acc: 0.97 } });
    expect(done.endedAt).toBeInstanceOf(Date);
    await expect(updateJob(db, 'job-a', { status: 'running' })).rejects.toThrow(InvalidTransitionError);
    await expect(updateJob(db, 'job-a', { status: 'running' })).rejects.toThrow('job job-a is completed');
    await expect(updateJob(db, 'nope', { status: 'running' })).rejects.toThrow(RecordNotFoundError);
  });

  test('checkpoints: recorded once, follow their lifecycle, resume picks the newest committed', async () => {
    await createJob(db, { id: 'job-c', spec: {} });
    await expect(
      recordCheckpoint(db, { jobId: 'missing', step: 1, uri: 'file:///x', bytes: 1, sha256: sha('0') }),
    ).rejects.toThrow(/job missing not found/);

    const record = (step: number, c: string, bytes = 1000) =>
      recordCheckpoint(db, {
        jobId: 'job-c',
        step,
        uri: `s3://ckpt/job-c/step-${step}`,
        bytes,
        sha256: sha(c),
        files: [{ path: 'model.pt', bytes, sha256: sha(c) }],
        metrics: { loss: 1 / step },
      });
    const first = await record(100, 'a');
    expect(first).toMatchObject({ status: 'pending', step: 100, isBest: false, metrics: { loss: 0.01 } });
    expect((await record(100, 'a')).id).toBe(first.id); // a retried activity records nothing new
    await expect(record(100, 'b')).rejects.toThrow(RecordConflictError);

    expect(await newestCommittedCheckpoint(db, 'job-c')).toBeUndefined();
    const uploaded = await markCheckpoint(db, first.id, 'uploaded');
    expect(uploaded.uploadedAt).toBeInstanceOf(Date);
    const committed = await markCheckpoint(db, first.id, 'committed');
    expect(committed.committedAt).toBeInstanceOf(Date);
    expect((await markCheckpoint(db, first.id, 'committed')).status).toBe('committed');
    await expect(markCheckpoint(db, first.id, 'uploaded')).rejects.toThrow(
      `checkpoint ${first.id} is committed; it cannot become uploaded`,
    );
    await expect(markCheckpoint(db, first.id, 'failed')).rejects.toThrow(/needs a reason/);
    await expect(markCheckpoint(db, 999_999, 'uploaded')).rejects.toThrow(RecordNotFoundError);

    // Newer checkpoints that are not committed, or that failed, are never resumed from.
    const second = await record(200, 'c');
    await markCheckpoint(db, second.id, 'committed');
    const third = await record(300, 'd');
    const fourth = await record(400, 'e');
    await markCheckpoint(db, fourth.id, 'uploaded');
    expect((await newestCommittedCheckpoint(db, 'job-c'))?.step).toBe(200);
    await markCheckpoint(db, second.id, 'failed', { reason: 'sha256 mismatch on download' });
    const newest = await newestCommittedCheckpoint(db, 'job-c');
    expect(newest?.step).toBe(100);

    const failed = await listCheckpoints(db, 'job-c', { status: ['failed'] });
    expect(failed.map((c) => [c.step, c.failureReason])).toEqual([[200, 'sha256 mismatch on download']]);
    expect((await listCheckpoints(db, 'job-c')).map((c) => [c.step, c.status])).toEqual([
      [100, 'committed'],
      [200, 'failed'],
      [300, 'pending'],
      [400, 'uploaded'],
    ]);
    expect(third.files).toEqual([{ path: 'model.pt', bytes: 1000, sha256: sha('d') }]);

    await markCheckpoint(db, first.id, 'gc');
    expect(await newestCommittedCheckpoint(db, 'job-c')).toBeUndefined();
  });

  test('a hard-linked checkpoint is recorded before its sha256 is known; the upload sets it', async () => {
    await createJob(db, { id: 'job-link', spec: {} });
    const row = await recordCheckpoint(db, { jobId: 'job-link', step: 5, uri: 'file:///c/job-link/step-5', bytes: 3 });
    expect(row.sha256).toBeNull();
    expect((await recordCheckpoint(db, { jobId: 'job-link', step: 5, uri: row.uri, bytes: 3 })).id).toBe(row.id);
    const files = [{ path: 'w.bin', bytes: 3, sha256: sha('9') }];
    const uploaded = await markCheckpoint(db, row.id, 'uploaded', { sha256: sha('8'), files });
    expect(uploaded).toMatchObject({ status: 'uploaded', sha256: sha('8'), files });
  });

  test('checkpoints larger than 4 GiB keep their exact size', async () => {
    await createJob(db, { id: 'job-big', spec: {} });
    const bytes = 37 * 2 ** 30 + 12345;
    const big = await recordCheckpoint(db, { jobId: 'job-big', step: 1, uri: 'gs://b/big', bytes, sha256: sha('f') });
    expect((await listCheckpoints(db, 'job-big'))[0]?.bytes).toBe(bytes);
    expect(big.bytes).toBe(bytes);
  });

  test('one best checkpoint per job', async () => {
    await createJob(db, { id: 'job-best', spec: {} });
    const ids: number[] = [];
    for (const step of [1, 2, 3]) {
      const c = await recordCheckpoint(db, { jobId: 'job-best', step, uri: `u${step}`, bytes: 1, sha256: sha('1') });
      ids.push(c.id);
    }
    await setBestCheckpoint(db, 'job-best', ids[0] as number);
    await setBestCheckpoint(db, 'job-best', ids[2] as number);
    expect((await listCheckpoints(db, 'job-best')).map((c) => c.isBest)).toEqual([false, false, true]);
    await expect(setBestCheckpoint(db, 'job-c', ids[0] as number)).rejects.toThrow(RecordNotFoundError);
  });

  test('studies and trials: the best trial follows the direction and ignores pruned and failed ones', async () => {
    const spec = { space: { lr: { type: 'float', low: 1e-4, high: 1, log: true } }, nTrials: 4 };
    const study = await createStudy(db, {
      id: 'study-1',
      name: 'mnist-lr',
      spec,
      objective: { metric: 'val_loss', direction: 'minimize' },
    });
    expect(study).toMatchObject({ status: 'running', direction: 'minimize', bestValue: null, spec });
    await expect(recordTrial(db, { studyId: 'nope', number: 0, params: {} })).rejects.toThrow(RecordNotFoundError);

    for (const number of [0, 1, 2, 3]) await recordTrial(db, { studyId: 'study-1', number, params: { lr: number } });
    expect((await recordTrial(db, { studyId: 'study-1', number: 0, params: { lr: 9 } })).params).toEqual({ lr: 0 });

    await updateTrial(db, 'study-1', 0, { state: 'running', jobId: 'study-1-trial-0' });
    await updateTrial(db, 'study-1', 0, { state: 'completed', value: 0.5 });
    await updateTrial(db, 'study-1', 1, { state: 'completed', value: 0.3 });
    await updateTrial(db, 'study-1', 2, { state: 'pruned', value: 0.1 }); // pruned: never the best
    await updateTrial(db, 'study-1', 3, { state: 'failed', error: 'CUDA out of memory', attempt: true });

    expect((await bestTrial(db, 'study-1'))?.number).toBe(1);
    expect(await getStudy(db, 'study-1')).toMatchObject({ bestTrialNumber: 1, bestValue: 0.3 });
    const trials = await listTrials(db, 'study-1');
    expect(trials.map((t) => [t.number, t.state, t.value])).toEqual([
      [0, 'completed', 0.5],
      [1, 'completed', 0.3],
      [2, 'pruned', 0.1],
      [3, 'failed', null],
    ]);
    expect(trials[0]).toMatchObject({ jobId: 'study-1-trial-0' });
    expect(trials[0]?.startedAt).toBeInstanceOf(Date);
    expect(trials[0]?.endedAt).toBeInstanceOf(Date);
    expect(trials[3]).toMatchObject({ attempts: 1, error: 'CUDA out of memory' });
    expect((await listTrials(db, 'study-1', { state: 'completed' })).length).toBe(2);

    await createStudy(db, {
      id: 'study-2',
      name: 'acc',
      spec: {},
      objective: { metric: 'acc', direction: 'maximize' },
    });
    await recordTrial(db, { studyId: 'study-2', number: 0, params: {} });
    await recordTrial(db, { studyId: 'study-2', number: 1, params: {} });
    await updateTrial(db, 'study-2', 0, { state: 'completed', value: 0.8 });
    await updateTrial(db, 'study-2', 1, { state: 'completed', value: 0.9 });
    expect(await getStudy(db, 'study-2')).toMatchObject({ bestTrialNumber: 1, bestValue: 0.9 });

    const stopped = await updateStudy(db, 'study-2', { status: 'stopped', stopReason: '5 failures in a row' });
    expect(stopped.endedAt).toBeInstanceOf(Date);
    expect((await listStudies(db, { status: 'stopped' })).map((s) => s.id)).toEqual(['study-2']);
  });

  test('intermediate values: one per trial and step, queried by trial or by step', async () => {
    await createStudy(db, { id: 'study-iv', name: 'iv', spec: {}, objective: { metric: 'l', direction: 'minimize' } });
    for (const trialNumber of [0, 1]) {
      for (const step of [1, 2, 3]) {
        await recordIntermediateValue(db, { studyId: 'study-iv', trialNumber, step, value: trialNumber + step / 10 });
      }
    }
    await recordIntermediateValue(db, { studyId: 'study-iv', trialNumber: 1, step: 2, value: 42 });
    expect((await intermediateValues(db, 'study-iv', { trialNumber: 1 })).map((v) => v.value)).toEqual([1.1, 42, 1.3]);
    expect((await intermediateValues(db, 'study-iv', { step: 3 })).map((v) => [v.trialNumber, v.value])).toEqual([
      [0, 0.3],
      [1, 1.3],
    ]);
    expect(await intermediateValues(db, 'study-iv')).toHaveLength(6);
  });

  test('intermediate values in one batch: new steps added, a step given twice keeps its last value', async () => {
    await createStudy(db, {
      id: 'study-ivb',
      name: 'ivb',
      spec: {},
      objective: { metric: 'l', direction: 'minimize' },
    });
    await recordIntermediateValues(db, [{ studyId: 'study-ivb', trialNumber: 0, step: 1, value: 1 }]);
    await recordIntermediateValues(db, [
      { studyId: 'study-ivb', trialNumber: 0, step: 1, value: 0.9 },
      { studyId: 'study-ivb', trialNumber: 0, step: 2, value: 0.8 },
      { studyId: 'study-ivb', trialNumber: 0, step: 2, value: 0.7 },
    ]);
    expect((await intermediateValues(db, 'study-ivb')).map((v) => [v.step, v.value])).toEqual([
      [1, 0.9],
      [2, 0.7],
    ]);
  });

  test('workers starting together apply each migration exactly once', async () => {
    const other = await freshDatabase(dialect, services.postgres.url);
    const dbs = await Promise.all([1, 2, 3, 4].map(() => openDatabase({ url: other.url })));
    try {
      const first = dbs[0] as KeelDatabase;
      const files = await pendingMigrations(first);
      await Promise.all(dbs.map((d) => migrateDatabase(d)));
      expect(await appliedMigrations(first)).toBe(files);
      expect(await pendingMigrations(first)).toBe(0);
      expect(await listStudies(first)).toEqual([]);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
      await other.drop();
    }
  });
});
