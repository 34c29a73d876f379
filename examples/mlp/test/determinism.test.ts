// A seed fixes the run: the same seed gives the same final weights, bit for bit; another does not.
import { describe, expect, test } from 'vitest';
import { runTrainer, tempDir } from './run-trainer.ts';

const params = { steps: 300, checkpointEvery: 0, evalEvery: 100 };

describe('determinism', () => {
  test('same seed: identical weights and metrics; different seed: different weights', async () => {
    const [a, b, c] = await Promise.all([
      runTrainer({ checkpointDir: tempDir(), params: { ...params, seed: 7 } }),
      runTrainer({ checkpointDir: tempDir(), params: { ...params, seed: 7 } }),
      runTrainer({ checkpointDir: tempDir(), params: { ...params, seed: 8 } }),
    ]);
    for (const run of [a, b, c]) expect(run.code, run.stderr).toBe(0);
    expect(a.final?.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(b.final).toEqual(a.final);
    expect(b.reports).toEqual(a.reports);
    expect(c.final?.weightsSha256).not.toBe(a.final?.weightsSha256);
    expect(c.final?.final.val_loss).not.toBe(a.final?.final.val_loss);
  });
});
