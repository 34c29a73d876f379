// The numerics: the analytic gradient matches finite differences, the PRNG's saved state continues
// the same stream, and the shipped dataset is exactly what make-spirals.ts generates.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { decodeFloat64, encodeFloat64 } from '../src/checkpoint.ts';
import { datasetFile, loadDataset, type Split } from '../src/dataset.ts';
import { evaluate, lossAndGradient, Mlp, Workspace } from '../src/model.ts';
import { Prng } from '../src/prng.ts';
import { tempDir } from './run-trainer.ts';

describe('model', () => {
  test('the gradient matches central finite differences', () => {
    const rng = Prng.fromSeed(1);
    const model = new Mlp([2, 5, 4, 3]);
    const params = model.initialize(rng);
    for (let k = 0; k < params.length; k++) params[k] = (params[k] as number) + 0.1 * rng.nextGaussian(); // nonzero biases
    const count = 6;
    const split: Split = { x: new Float64Array(count * 2), labels: new Uint8Array(count), count };
    for (let b = 0; b < count; b++) {
      split.x[b * 2] = rng.nextGaussian();
      split.x[b * 2 + 1] = rng.nextGaussian();
      split.labels[b] = rng.nextInt(3);
    }
    const indices = [0, 1, 2, 3, 4, 5, 2]; // a repeated row, as sampling with replacement gives
    const ws = new Workspace(model, indices.length);
    const grad = new Float64Array(model.parameterCount);
    lossAndGradient(model, params, grad, split, indices, ws);
    const scratch = new Float64Array(model.parameterCount);
    const h = 1e-6;
    for (let k = 0; k < params.length; k++) {
      const saved = params[k] as number;
      params[k] = saved + h;
      const up = lossAndGradient(model, params, scratch, split, indices, ws);
      params[k] = saved - h;
      const down = lossAndGradient(model, params, scratch, split, indices, ws);
      params[k] = saved;
      expect(Math.abs((up - down) / (2 * h) - (grad[k] as number)), `parameter ${k}`).toBeLessThan(1e-7);
    }
  });

  test('untrained, the loss is about log(3) and accuracy near chance', () => {
    const data = loadDataset();
    const model = new Mlp([2, 32, 32, 3]);
    const params = model.initialize(Prng.fromSeed(0));
    const { loss, accuracy } = evaluate(model, params, data.validation, new Workspace(model, 256));
    expect(loss).toBeGreaterThan(0.8);
    expect(loss).toBeLessThan(1.6);
    expect(accuracy).toBeLessThan(0.6);
  });

  test('float64 files round-trip every bit, including -0, NaN and subnormals', () => {
    const values = new Float64Array([0, -0, 1 / 3, -1e-310, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY]);
    const back = decodeFloat64(encodeFloat64(values));
    expect(Buffer.from(back.buffer).equals(Buffer.from(values.buffer))).toBe(true);
  });
});

describe('prng', () => {
  test('a restored state continues the same stream', () => {
    const a = Prng.fromSeed(42);
    for (let i = 0; i < 10; i++) a.nextUint32();
    const b = Prng.fromState(a.state());
    const draws = (r: Prng) => [r.nextUint32(), r.nextFloat(), r.nextInt(7), r.nextGaussian()];
    expect(draws(b)).toEqual(draws(a));
    expect(Prng.fromSeed(1).nextUint32()).not.toBe(Prng.fromSeed(2).nextUint32());
  });

  test('nextInt and nextFloat stay in range and cover it', () => {
    const rng = Prng.fromSeed(9);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const n = rng.nextInt(5);
      expect(n >= 0 && n < 5).toBe(true);
      seen.add(n);
      const f = rng.nextFloat();
      expect(f >= 0 && f < 1).toBe(true);
    }
    expect(seen.size).toBe(5);
  });

  test('a bad saved state is refused', () => {
    expect(() => Prng.fromState([0, 0, 0, 0])).toThrow('all zeros');
    expect(() => Prng.fromState([1, 2, 3])).toThrow('four uint32s');
  });
});

describe('dataset', () => {
  test('the shipped file is what make-spirals.ts writes, and it is small', () => {
    const out = path.join(tempDir(), 'spirals.json');
    const script = fileURLToPath(new URL('../src/make-spirals.ts', import.meta.url));
    execFileSync(process.execPath, [script, out]);
    const shipped = fs.readFileSync(datasetFile);
    expect(fs.readFileSync(out).equals(shipped)).toBe(true);
    expect(shipped.length).toBeLessThan(200_000);
    const data = loadDataset();
    expect([data.train.count, data.validation.count, data.features, data.classes]).toEqual([1200, 300, 2, 3]);
  });
});
