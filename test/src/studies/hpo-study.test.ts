// The hpoStudy workflow end to end: a real Temporal dev server, a real keel worker, trials as
// child trainingJobs running a real Python trainer (test/src/studies/fixtures/objective_trainer.py)
// through the Python SDK, SQLite for records.
import fs from 'node:fs';
import path from 'node:path';
import { getStudy, intermediateValues, listJobs, listTrials, openDatabase } from '@keel/db';
import {
  hpoStudy,
  type StudySpecInput,
  setConcurrencyUpdate,
  stopStudySignal,
  studyProgressQuery,
} from '@keel/workflows';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, inject, test, vi } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';

const services = inject('services');
const trainer = path.resolve('test/src/studies/fixtures/objective_trainer.py');

const worker = useInProcessWorker('study', services.temporal);
const { name } = worker;

interface Run {
  x: number;
  y: number;
  start: number;
  end: number;
  step: number;
  how: string;
  job: string;
}

const readRuns = (file: string): Run[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];

/** The most runs that overlapped in time. */
function peakOverlap(runs: Run[]): number {
  const events = runs.flatMap((r) => [
    [r.start, 1],
    [r.end, -1],
  ]);
  events.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let now = 0;
  let peak = 0;
  for (const [, delta] of events) {
    now += delta as number;
    peak = Math.max(peak, now);
  }
  return peak;
}

function studySpec(logFile: string, extra: Partial<StudySpecInput> = {}, params: object = {}): StudySpecInput {
  return {
    space: {
      x: { type: 'float', low: -1, high: 1 },
      y: { type: 'float', low: -1, high: 1 },
    },
    objective: { metric: 'loss', direction: 'minimize' },
    nTrials: 6,
    maxConcurrency: 3,
    sampler: { type: 'random' },
    seed: 7,
    ...extra,
    trial: {
      command: ['python3', trainer],
      env: { PYTHONPATH: path.resolve('sdk/python/src') },
      params: { steps: 10, delay_ms: 30, log_file: logFile, ...params },
      gpus: 0,
      gpuTaskQueue: `${name}-gpu`,
      ...(extra.trial ?? {}),
    },
  };
}

const startStudy = (id: string, spec: StudySpecInput) =>
  worker.client.workflow.start(hpoStudy, { taskQueue: name, workflowId: `${id}-${Date.now()}`, args: [spec] });

async function records(studyId: string) {
  const db = await openDatabase({ url: `file:${path.join(worker.home, 'keel.db')}` });
  try {
    return {
      study: await getStudy(db, studyId),
      trials: await listTrials(db, studyId),
      values: await intermediateValues(db, studyId),
      jobs: await listJobs(db, { studyId }),
    };
  } finally {
    await db.close();
  }
}

describe('hpoStudy', () => {
  test('runs every trial, never more than maxConcurrency at once; the same seed gives the same params', async () => {
    const logA = path.join(worker.home, 'a.jsonl');
    const a = await startStudy('conc-a', studySpec(logA));
    const result = await a.result();
    expect(result.status).toBe('completed');
    expect(result.counts.completed).toBe(6);
    const runs = readRuns(logA);
    expect(runs).toHaveLength(6);
    const peak = peakOverlap(runs);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThanOrEqual(2); // trials did run side by side

    // Recorded as they happened: every trial, its params, values and the study's best.
    const { study, trials, values, jobs } = await records(a.workflowId);
    expect(trials.map((t) => t.state)).toEqual(Array(6).fill('completed'));
    expect(jobs).toHaveLength(6);
    expect(new Set(values.map((v) => v.trialNumber)).size).toBe(6);
    const best = trials.reduce((m, t) => ((t.value as number) < (m.value as number) ? t : m));
    expect(study?.bestTrialNumber).toBe(best.number);
    expect(result.best?.number).toBe(best.number);
    expect(study?.status).toBe('completed');

    // Same seed, same sampler: the same params in the same order.
    const b = await startStudy('conc-b', studySpec(path.join(worker.home, 'b.jsonl')));
    await b.result();
    const paramsOf = async (id: string) => (await records(id)).trials.map((t) => t.params);
    expect(await paramsOf(b.workflowId)).toEqual(await paramsOf(a.workflowId));
  });

  test('ASHA stops weak trials early; they end pruned with their checkpoints, not failed', async () => {
    const log = path.join(worker.home, 'asha.jsonl');
    const handle = await startStudy(
      'asha',
      studySpec(
        log,
        {
          nTrials: 8,
          maxConcurrency: 4,
          pruner: { type: 'asha', minResource: 3, reductionFactor: 3 },
        },
        // Long enough (6 s) for a prune to reach the trainer: values travel in 1 s batches, and
        // a stop reaches the attempt with its next heartbeat (every 2 s at most).
        { steps: 60, delay_ms: 100 },
      ),
    );
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.counts.pruned).toBeGreaterThan(0);
    expect(result.counts.failed).toBe(0);
    const { trials, jobs } = await records(handle.workflowId);
    const pruned = trials.filter((t) => t.state === 'pruned');
    const runs = readRuns(log);
    for (const t of pruned) {
      const run = runs.find((r) => r.job === t.jobId);
      expect(run?.how).toBe('stopped');
      expect(run?.step).toBeLessThan(60);
      expect(jobs.find((j) => j.id === t.jobId)?.status).toBe('stopped');
    }
    // The best trial was never pruned.
    expect(trials.find((t) => t.number === result.best?.number)?.state).toBe('completed');
  });

  test('a failing trial is retried, then counted failed; the study goes on and completes', async () => {
    const log = path.join(worker.home, 'fail.jsonl');
    const handle = await startStudy(
      'isolate',
      studySpec(log, {
        space: {
          x: { type: 'float', low: -1, high: 1 },
          crash: { type: 'categorical', choices: ['always', 'never'] },
        },
        sampler: { type: 'grid' },
        nTrials: 20,
        maxConcurrency: 2,
        failures: { retriesPerTrial: 1, maxFailedTrials: 5, consecutiveToHalve: 5 },
      } as Partial<StudySpecInput>),
    );
    // A grid needs a step for floats: rejected, naming the field.
    const failure = await handle.result().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(/space/);

    const ok = await startStudy(
      'isolate-ok',
      studySpec(log, {
        space: {
          x: { type: 'float', low: 0, high: 1, step: 0.5 },
          crash: { type: 'categorical', choices: ['always', 'never'] },
        },
        sampler: { type: 'grid' },
        nTrials: 20,
        maxConcurrency: 2,
        failures: { retriesPerTrial: 1, maxFailedTrials: 5, consecutiveToHalve: 5 },
        trial: { failures: { maxFailures: 0 } } as never,
      }),
    );
    const result = await ok.result();
    // The grid has 6 points: 3 crash, each run twice (one retry), then counted failed.
    expect(result.status).toBe('completed');
    expect(result.counts).toMatchObject({ completed: 3, failed: 3 });
    const { trials } = await records(ok.workflowId);
    for (const t of trials) {
      if (t.params.crash === 'always') {
        expect(t).toMatchObject({ state: 'failed', attempts: 2 });
        expect(t.error).toMatch(/exit code 3/);
      } else expect(t).toMatchObject({ state: 'completed', attempts: 1 });
    }
  });

  test('the breaker: failures in a row halve concurrency, too many stop the study with the reason', async () => {
    const handle = await startStudy(
      'breaker',
      studySpec(
        path.join(worker.home, 'breaker.jsonl'),
        {
          nTrials: 20,
          maxConcurrency: 4,
          failures: { retriesPerTrial: 0, consecutiveToHalve: 2, maxFailedTrials: 4 },
          trial: { failures: { maxFailures: 0 } } as never,
        },
        { crash: 'always' },
      ),
    );
    const failure = await handle.result().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(/4 trials failed \(maxFailedTrials 4\)/);
    const progress = await handle.query(studyProgressQuery);
    expect(progress.maxConcurrency).toBeLessThan(4);
    expect(progress.counts.failed).toBe(4);
    const { study } = await records(handle.workflowId);
    expect(study).toMatchObject({ status: 'failed' });
    expect(study?.stopReason).toMatch(/maxFailedTrials/);
  });

  test('setConcurrency is validated; stop ends running trials gracefully and the study as stopped', async () => {
    const log = path.join(worker.home, 'stop.jsonl');
    const handle = await startStudy('stop', studySpec(log, { nTrials: 10, maxConcurrency: 2 }, { steps: 400 }));
    await expect(handle.executeUpdate(setConcurrencyUpdate, { args: [{ maxConcurrency: 0 }] })).rejects.toThrow(
      WorkflowUpdateFailedError,
    );
    const progress = await handle.executeUpdate(setConcurrencyUpdate, { args: [{ maxConcurrency: 3 }] });
    expect(progress.maxConcurrency).toBe(3);
    await vi.waitFor(async () => expect((await handle.query(studyProgressQuery)).counts.running).toBe(3), {
      timeout: 30_000,
      interval: 200,
    });
    await handle.signal(stopStudySignal, { reason: 'enough' });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'stopped', stopReason: 'enough' });
    expect(result.counts.stopped).toBe(3);
    for (const run of readRuns(log)) expect(run.how).toBe('stopped');
  });
});
