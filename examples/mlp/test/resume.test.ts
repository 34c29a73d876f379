// Resuming from a checkpoint continues the very same run: a fresh process resumed from step K
// ends with the same bits as the uninterrupted run, whether K was a scheduled checkpoint or the
// run crashed on purpose (failAtStep) and keel would retry it from its newest checkpoint.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkpointSteps, runTrainer, tempDir } from './run-trainer.ts';

// reportEvery 7 does not divide 150: the resumed run starts with a partly filled loss window.
const params = { seed: 3, steps: 600, checkpointEvery: 150, evalEvery: 50, reportEvery: 7 };

function expectSameFolder(a: string, b: string): void {
  const files = fs.readdirSync(a).sort();
  expect(fs.readdirSync(b).sort()).toEqual(files);
  for (const file of files)
    expect(fs.readFileSync(path.join(b, file)).equals(fs.readFileSync(path.join(a, file)))).toBe(true);
}

describe('resume', () => {
  test('resumed from an intermediate checkpoint: bit-identical final weights, metrics and checkpoint', async () => {
    const fullDir = tempDir();
    const full = await runTrainer({ checkpointDir: fullDir, params });
    expect(full.code, full.stderr).toBe(0);
    expect(checkpointSteps(fullDir)).toEqual([150, 300, 450, 600]);

    const resumedDir = tempDir();
    const resumed = await runTrainer({
      checkpointDir: resumedDir,
      params,
      attempt: 2,
      resumeFrom: { path: path.join(fullDir, 'step-300'), step: 300 },
    });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.final).toEqual(full.final);
    expect(resumed.reports).toEqual(full.reports.filter((r) => r.step > 300));
    expect(checkpointSteps(resumedDir)).toEqual([450, 600]);
    expectSameFolder(path.join(fullDir, 'step-600'), path.join(resumedDir, 'step-600'));
    expectSameFolder(path.join(fullDir, 'step-450'), path.join(resumedDir, 'step-450'));
  });

  test('failAtStep crashes attempt 1 with exit 3; attempt 2 resumed from the last checkpoint finishes the same run', async () => {
    const fullDir = tempDir();
    const crashDir = tempDir();
    const [full, crashed] = await Promise.all([
      runTrainer({ checkpointDir: fullDir, params }),
      runTrainer({ checkpointDir: crashDir, params: { ...params, failAtStep: 400 } }),
    ]);
    expect(full.code, full.stderr).toBe(0);
    expect(crashed.code).toBe(3);
    expect(crashed.stderr).toContain('injected failure at step 400');
    expect(crashed.final).toBeUndefined();
    expect(crashed.reports.at(-1)?.step).toBeLessThan(400);
    expect(checkpointSteps(crashDir)).toEqual([150, 300]);

    const retried = await runTrainer({
      checkpointDir: tempDir(),
      params: { ...params, failAtStep: 400 }, // attempt 2: no failure
      attempt: 2,
      resumeFrom: { path: path.join(crashDir, 'step-300'), step: 300 },
    });
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.final).toEqual(full.final);
  });

  test('a checkpoint of another architecture or step is refused', async () => {
    const dir = tempDir();
    const first = await runTrainer({ checkpointDir: dir, params: { steps: 20, checkpointEvery: 10 } });
    expect(first.code, first.stderr).toBe(0);
    const otherSize = await runTrainer({
      checkpointDir: tempDir(),
      params: { steps: 20, hiddenSize: 8 },
      resumeFrom: { path: path.join(dir, 'step-10'), step: 10 },
    });
    expect(otherSize.code).toBe(1);
    expect(otherSize.stderr).toContain('hiddenSize differs');
    const otherStep = await runTrainer({
      checkpointDir: tempDir(),
      params: { steps: 20 },
      resumeFrom: { path: path.join(dir, 'step-10'), step: 11 },
    });
    expect(otherStep.code).toBe(1);
    expect(otherStep.stderr).toContain('KEEL_RESUME_STEP is 11');
  });

  test('resumed from a checkpoint already at `steps`: nothing to train, no new checkpoint, same final', async () => {
    const dir = tempDir();
    const first = await runTrainer({ checkpointDir: dir, params: { steps: 10, checkpointEvery: 10 } });
    expect(first.code, first.stderr).toBe(0);
    const resumedDir = tempDir();
    const resumed = await runTrainer({
      checkpointDir: resumedDir,
      params: { steps: 10 },
      resumeFrom: { path: path.join(dir, 'step-10'), step: 10 },
    });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.final).toEqual(first.final);
    expect(checkpointSteps(resumedDir)).toEqual([]);
  });
});
