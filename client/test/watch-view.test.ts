// What `keel study watch` shows: the live frame (bars) and the plain lines for pipes.
import type { JobProgress, StudyProgress } from '@keel/workflows';
import { describe, expect, test } from 'vitest';
import { bar, duration, jobLine, studyChanges, studyFrame } from '../src/cli/watch-view.ts';

const now = 1_000_000;
function progress(extra: Partial<StudyProgress> = {}): StudyProgress {
  return {
    studyId: 's1',
    status: 'running',
    objective: { metric: 'loss', direction: 'minimize' },
    nTrials: 4,
    maxConcurrency: 2,
    counts: { pending: 0, running: 2, completed: 2, pruned: 0, failed: 0, stopped: 0 },
    best: { number: 1, value: 0.25, params: { lr: 0.1 } },
    etaSeconds: 90,
    meanTrialSeconds: 40,
    stopReason: null,
    runs: 1,
    trials: [
      {
        number: 0,
        state: 'completed',
        value: 0.5,
        params: { lr: 0.01 },
        jobId: 'j0',
        step: 100,
        lastValue: 0.5,
        startedAtMs: 0,
        endedAtMs: 1,
      },
      {
        number: 1,
        state: 'completed',
        value: 0.25,
        params: { lr: 0.1 },
        jobId: 'j1',
        step: 100,
        lastValue: 0.25,
        startedAtMs: 0,
        endedAtMs: 1,
      },
      {
        number: 2,
        state: 'running',
        value: null,
        params: { lr: 0.05 },
        jobId: 'j2',
        step: 50,
        lastValue: 0.4,
        startedAtMs: now - 10_000,
        endedAtMs: null,
      },
      {
        number: 3,
        state: 'running',
        value: null,
        params: { lr: 0.2 },
        jobId: 'j3',
        step: null,
        lastValue: null,
        startedAtMs: now - 1000,
        endedAtMs: null,
      },
    ],
    ...extra,
  };
}

describe('the live frame', () => {
  test('a bar for the study, then one per running trial with step, metric and ETA', () => {
    const lines = studyFrame(progress(), now, 10);
    expect(lines[0]).toBe(`s1  running  ${bar(0.5, 10)} 2/4 trials  ETA 1m30s`);
    expect(lines[1]).toContain('running 2/2 · minimize loss: best 0.25 (#1 lr=0.1)');
    // Trial 2: half of the 100 steps completed trials ran, 30 s left of a 40 s mean.
    expect(lines[2]).toBe(`  #2    ${bar(0.5, 10)} step 50/100  loss 0.4  ETA 30s  lr=0.05`);
    expect(lines[3]).toBe(`  #3    ${bar(0, 10)} step 0/100  loss -  ETA 39s  lr=0.2`);
    expect(lines).toHaveLength(4);
  });

  test('without a completed trial there is no step bar, and unknowns show as ?', () => {
    const p = progress({ meanTrialSeconds: null, etaSeconds: null, best: null });
    p.trials = p.trials.filter((t) => t.state === 'running');
    const lines = studyFrame(p, now, 10);
    expect(lines[0]).toContain('ETA ?');
    expect(lines[1]).toContain('best -');
    expect(lines[2]).toBe('  #2    step 50  loss 0.4  ETA ?  lr=0.05');
  });

  test('bars and durations stay in range', () => {
    expect(bar(2, 4)).toBe('████');
    expect(bar(-1, 4)).toBe('░░░░');
    expect(duration(-5)).toBe('0s');
    expect(duration(3725)).toBe('1h02m');
  });
});

describe('plain lines', () => {
  test('the first read prints running trials, ended ones, and the summary', () => {
    expect(studyChanges(undefined, progress())).toEqual([
      'trial 0 completed at step 100: loss 0.5',
      'trial 1 completed at step 100: loss 0.25',
      'trial 2 running: lr=0.05',
      'trial 3 running: lr=0.2',
      'study s1 running: 2/4 done (completed 2, pruned 0, failed 0, stopped 0), running 2/2, best 0.25 (trial 1), ETA 1m30s',
    ]);
  });

  test('later reads print only what changed, and nothing when nothing did', () => {
    const before = progress();
    expect(studyChanges(before, progress())).toEqual([]);
    const after = progress({ counts: { ...before.counts, running: 1, pruned: 1 } });
    after.trials = after.trials.map((t) => (t.number === 3 ? { ...t, state: 'pruned', step: 30, lastValue: 0.9 } : t));
    const lines = studyChanges(before, after);
    expect(lines[0]).toBe('trial 3 pruned at step 30: loss 0.9');
    expect(lines[1]).toMatch(/^study s1 running: 3\/4 done \(completed 2, pruned 1,/);
    expect(lines).toHaveLength(2);
  });
});

describe('job lines', () => {
  const job: JobProgress = {
    jobId: 'j1',
    status: 'running',
    attempt: 1,
    taskQueue: 'keel-gpu-a100',
    waiting: null,
    step: 40,
    metrics: { loss: 0.5 },
    checkpoints: { staged: 1, uploading: 0, committed: 3, failed: 0, collected: 0 },
    failedCheckpoints: [],
    bestStep: null,
    newestCommittedStep: 30,
    resumedFromStep: null,
    failures: 0,
    preemptions: 0,
    lastError: null,
  };
  test('a job no worker takes says why on its line', () => {
    expect(jobLine(job)).toBe(
      'job j1 running: step 40 loss=0.5  attempt 1  checkpoints committed 3, uploading 0, staged 1, failed 0',
    );
    const waiting = 'waiting: no worker serves GPU class a100 (task queue keel-gpu-a100)';
    expect(jobLine({ ...job, step: null, metrics: {}, waiting })).toContain(`failed 0  ${waiting}`);
  });
});
