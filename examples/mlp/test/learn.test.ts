// The default run learns the spirals, checkpoints on schedule, and its checkpoints are complete.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import type { CheckpointState } from '../src/checkpoint.ts';
import { checkpointSteps, runTrainer, tempDir } from './run-trainer.ts';

describe('mlp trainer', () => {
  test('a default run learns: validation accuracy far above chance (1/3)', async () => {
    const dir = tempDir();
    const run = await runTrainer({ checkpointDir: dir });
    expect(run.code, run.stderr).toBe(0);
    const final = run.final?.final;
    expect(final?.step).toBe(2000);
    expect(final?.val_acc).toBeGreaterThan(0.9);
    expect(final?.train_acc).toBeGreaterThan(0.9);

    // Training loss reported every 10 steps, validation every 100, and the loss went down.
    const losses = run.reports.filter((r) => 'loss' in r.metrics);
    expect(losses).toHaveLength(200);
    expect(run.reports.filter((r) => 'val_acc' in r.metrics).map((r) => r.step)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i + 1) * 100),
    );
    expect(losses.at(-1)?.metrics.loss).toBeLessThan((losses[0]?.metrics.loss ?? 0) / 3);

    // Checkpoints every 500 steps, each a complete folder whose files match their recorded sha256.
    expect(checkpointSteps(dir)).toEqual([500, 1000, 1500, 2000]);
    expect(fs.readdirSync(dir).filter((name) => name.startsWith('.'))).toEqual([]);
    for (const step of [500, 2000]) {
      const folder = path.join(dir, `step-${step}`);
      expect(fs.readdirSync(folder).sort()).toEqual(['momentum.f64', 'state.json', 'weights.f64']);
      const state = JSON.parse(fs.readFileSync(path.join(folder, 'state.json'), 'utf8')) as CheckpointState;
      expect(state.step).toBe(step);
      expect(state.layerSizes).toEqual([2, 32, 32, 3]);
      for (const file of ['weights.f64', 'momentum.f64'] as const) {
        const bytes = fs.readFileSync(path.join(folder, file));
        expect(bytes.length).toBe((2 * 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3) * 8);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(state.sha256[file]);
      }
    }
    const lastWeights = fs.readFileSync(path.join(dir, 'step-2000', 'weights.f64'));
    expect(createHash('sha256').update(lastWeights).digest('hex')).toBe(run.final?.weightsSha256);
  });
});
