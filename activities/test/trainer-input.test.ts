// The trainer's input, without sockets or processes: each bad line gets its problem's name, a
// checkpoint keel cannot use is refused for its step, and an attempt's metric names are bounded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { maxMetricNames, parseTrainerLine } from '../src/trainer/messages.ts';
import { TrainerSession } from '../src/trainer/session.ts';

describe('parseTrainerLine', () => {
  test.each([
    ['not json', { code: 'not_json', error: 'not JSON: not json' }],
    ['[1]', { code: 'bad_message', error: expect.stringContaining('expected object') }],
    ['{"type":"metric","step":-1}', { code: 'bad_message', error: expect.stringContaining('step') }],
    [
      '{"type":"metric","step":1,"metrics":{"a":null}}',
      { code: 'bad_message', error: expect.stringContaining('metrics.a') },
    ],
  ])('%s is refused by name', (line, problem) => {
    expect(parseTrainerLine(line)).toEqual(problem);
  });

  test('a checkpoint keel cannot use is refused for its step (a nack), one without a readable step is not', () => {
    expect(parseTrainerLine('{"type":"checkpoint","step":7,"metrics":{}}')).toMatchObject({
      code: 'bad_message',
      step: 7,
    });
    expect(parseTrainerLine('{"type":"checkpoint","step":"7","path":"x"}')).not.toHaveProperty('step');
  });

  test('too many metrics are counted before they are validated, and named', () => {
    const metrics = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`m${i}`, 'not even a number']));
    const started = performance.now();
    expect(parseTrainerLine(JSON.stringify({ type: 'checkpoint', step: 3, path: 'x', metrics }))).toEqual({
      code: 'too_many_metrics',
      error: '100000 metrics in one message; at most 256',
      step: 3,
    });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test('problem texts quote the input, cut short', () => {
    const name = 'x'.repeat(10_000);
    const problem = parseTrainerLine(JSON.stringify({ type: 'metric', step: 1, metrics: { [name]: 1 } }));
    expect(problem).toMatchObject({ code: 'bad_message' });
    expect((problem as { error: string }).error.length).toBeLessThanOrEqual(500);
  });
});

describe('an attempt’s metric names', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  const session = (onStaged?: (metrics: Record<string, number>) => void) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-session-'));
    dirs.push(dir);
    const checkpointDir = path.join(dir, 'checkpoints');
    fs.mkdirSync(checkpointDir);
    const s = new TrainerSession({
      checkpointDir,
      stagingDir: path.join(dir, 'staged'),
      onStaged: (_staged, metrics) => onStaged?.(metrics),
    });
    return Object.assign(s, { checkpointDir });
  };
  const names = (from: number, count: number) =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${from + i}`, i]));

  test('past the budget new names are dropped by name; known names still update', async () => {
    const s = session();
    for (let i = 0; i < maxMetricNames / 256; i++) {
      expect(await s.handle({ type: 'metric', step: i, metrics: names(i * 256, 256) })).toBeUndefined();
    }
    const answer = await s.handle({ type: 'metric', step: 9, metrics: { n0: 42, fresh: 1 } });
    expect(answer).toEqual({
      type: 'error',
      code: 'too_many_metric_names',
      error: '1 metric(s) dropped (fresh): an attempt may use at most 1024 metric names',
    });
    expect(Object.keys(s.metrics)).toHaveLength(maxMetricNames);
    expect(s.metrics.n0).toBe(42);
    expect(s).toMatchObject({ problems: 1, lastProblem: { code: 'too_many_metric_names' } });
  });

  test('a checkpoint is acked even past the budget; the names that do not fit are left out and named first', async () => {
    const staged: Record<string, number>[] = [];
    const s = session((metrics) => staged.push(metrics));
    for (let i = 0; i < maxMetricNames / 256; i++) {
      await s.handle({ type: 'metric', step: i, metrics: names(i * 256, 256) });
    }
    fs.writeFileSync(path.join(s.checkpointDir, 'model.bin'), 'weights');
    const answer = await s.handle({ type: 'checkpoint', step: 10, path: 'model.bin', metrics: { n1: 0.5, val: 1 } });
    expect(answer).toEqual([
      { type: 'error', code: 'too_many_metric_names', error: expect.stringContaining('(val)') },
      { type: 'ack', step: 10 },
    ]);
    expect(staged).toEqual([{ n1: 0.5 }]);
  });

  test('refused checkpoints carry the problem’s name', async () => {
    const s = session();
    expect(await s.handle({ type: 'checkpoint', step: 1, path: '../x', metrics: {} })).toEqual([
      { type: 'nack', step: 1, code: 'outside_checkpoint_dir', error: expect.stringContaining('outside') },
    ]);
    expect(await s.handle({ type: 'checkpoint', step: 2, path: 'missing', metrics: {} })).toEqual([
      { type: 'nack', step: 2, code: 'not_found', error: expect.stringContaining('does not exist') },
    ]);
    expect(s.refused.map((r) => r.code)).toEqual(['outside_checkpoint_dir', 'not_found']);
  });
});
