import path from 'node:path';
import { getStudy, listTrials, openDatabase } from '@keel/db';
import { hpoStudy, studyProgressQuery } from '@keel/workflows';
import { expect, inject, test } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';

const services = inject('services');
const trainer = path.resolve('test/src/studies/fixtures/objective_trainer.py');

const worker = useInProcessWorker('study-can', services.temporal);
const { name } = worker;

test('300 quick trials: the study continues as new several times and accounts for every trial once', async () => {
  const nTrials = 300;
  const handle = await worker.client.workflow.start(hpoStudy, {
    taskQueue: name,
    workflowId: `can-${Date.now()}`,
    args: [
      {
        space: { x: { type: 'float', low: -1, high: 1 }, y: { type: 'float', low: -1, high: 1 } },
        objective: { metric: 'loss', direction: 'minimize' },
        nTrials,
        maxConcurrency: 8,
        sampler: { type: 'tpe', nStartupTrials: 20 },
        seed: 3,
        historyEventsBeforeContinueAsNew: 500,
        trial: {
          command: ['python3', trainer],
          env: { PYTHONPATH: path.resolve('sdk/python/src') },
          params: { steps: 2, delay_ms: 0, checkpoint_every: 1000 },
          gpus: 0,
          gpuTaskQueue: `${name}-gpu`,
        },
      },
    ],
  });
  const result = await handle.result();
  expect(result.status).toBe('completed');
  expect(result.counts.completed).toBe(nTrials);

  const progress = await handle.query(studyProgressQuery);
  expect(progress.runs).toBeGreaterThan(3);
  // The first run's history: it ended by continuing as new, well below Temporal's limits.
  const firstRun = worker.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
  expect((await firstRun.describe()).status.name).toBe('CONTINUED_AS_NEW');
  expect((await firstRun.fetchHistory()).events?.length).toBeLessThan(800);

  const db = await openDatabase({ url: `file:${path.join(worker.home, 'keel.db')}` });
  try {
    const trials = await listTrials(db, handle.workflowId);
    expect(trials.map((t) => t.number)).toEqual([...Array(nTrials).keys()]);
    expect(trials.every((t) => t.state === 'completed' && t.attempts === 1)).toBe(true);
    const study = await getStudy(db, handle.workflowId);
    expect(study).toMatchObject({ status: 'completed', bestValue: result.best?.value });
  } finally {
    await db.close();
  }
}, 600_000);
