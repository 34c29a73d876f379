// SIGTERM (what keel sends with a stop message) mid-run: the trainer saves a checkpoint at the
// step it reached, finishes, exits 0; and that checkpoint resumes into the uninterrupted run.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import type { CheckpointState } from '../src/checkpoint.ts';
import { checkpointSteps, runTrainer, startTrainer, tempDir } from './run-trainer.ts';

describe('stop', () => {
  test('SIGTERM mid-run: a final checkpoint at the current step, exit 0, and it resumes exactly', async () => {
    const dir = tempDir();
    const params = { seed: 11, checkpointEvery: 50, evalEvery: 25, reportEvery: 4 };
    const running = startTrainer({ checkpointDir: dir, params: { ...params, steps: 100_000, stepDelayMs: 5 } });
    for (let i = 0; i < 300 && !/^step 20: /m.test(running.stderr()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(running.stderr()).toMatch(/^step 20: /m);
    running.child.kill('SIGTERM');
    const stopped = await running.result;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.final?.stopped).toBe('SIGTERM');
    const step = stopped.final?.final.step as number;
    expect(step).toBeGreaterThanOrEqual(20);
    expect(step).toBeLessThan(200);
    expect(checkpointSteps(dir).at(-1)).toBe(step);
    const state = JSON.parse(fs.readFileSync(path.join(dir, `step-${step}`, 'state.json'), 'utf8')) as CheckpointState;
    expect(state.step).toBe(step);

    // `steps` may differ on resume: only the end moves. Same seed, uninterrupted, to 300 steps.
    const [full, resumed] = await Promise.all([
      runTrainer({ checkpointDir: tempDir(), params: { ...params, steps: 300 } }),
      runTrainer({
        checkpointDir: tempDir(),
        params: { ...params, steps: 300 },
        attempt: 2,
        resumeFrom: { path: path.join(dir, `step-${step}`), step },
      }),
    ]);
    expect(full.code, full.stderr).toBe(0);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.final).toEqual(full.final);
    expect(resumed.reports).toEqual(full.reports.filter((r) => r.step > step));
  });

  test('a stop during a slow step (stepDelayMs) is not held up by the sleep', async () => {
    const dir = tempDir();
    const running = startTrainer({ checkpointDir: dir, params: { steps: 5, stepDelayMs: 60_000, reportEvery: 1 } });
    for (let i = 0; i < 300 && !/^step 1: /m.test(running.stderr()); i++) await new Promise((r) => setTimeout(r, 10));
    const signalledAt = Date.now();
    running.child.kill('SIGTERM');
    const stopped = await running.result;
    expect(Date.now() - signalledAt).toBeLessThan(2000);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.final?.final.step).toBe(1);
    expect(checkpointSteps(dir)).toEqual([1]);
  });
});
