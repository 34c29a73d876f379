// The trial reporter: batches the objective's values, records then sends each batch, keeps what
// could not be delivered for the next one, and skips the study for the last batch when asked.
import { describe, expect, test } from 'vitest';
import type { TrialReport } from '../src/jobs/contract.ts';
import { TrialReporter } from '../src/jobs/trial-reporter.ts';

const link = { studyId: 'study', trialNumber: 3, metric: 'loss', prune: true };

function reporter(options: { failSends?: number; sendLastBatch?: boolean } = {}) {
  const recorded: [number, number][][] = [];
  const sent: TrialReport[] = [];
  let failures = options.failSends ?? 0;
  const r = new TrialReporter({
    link,
    jobId: 'job-1',
    intervalMs: 60_000, // flushed by hand below
    ...(options.sendLastBatch !== undefined ? { sendLastBatch: options.sendLastBatch } : {}),
    record: async (points) => {
      recorded.push(points);
    },
    send: async (report) => {
      if (failures-- > 0) throw new Error('study unreachable');
      sent.push(report);
    },
  });
  return { r, recorded, sent };
}

describe('TrialReporter', () => {
  test('keeps only reports that carry the objective, one value per step, in one batch', async () => {
    const { r, recorded, sent } = reporter();
    r.add(1, { loss: 0.9, acc: 0.1 });
    r.add(2, { acc: 0.2 });
    r.add(3, { loss: 0.7 });
    r.add(3, { loss: 0.6 }); // the same step again: the newer value wins
    r.add(4, { loss: Number.NaN });
    await r.close();
    expect(recorded).toEqual([
      [
        [1, 0.9],
        [3, 0.6],
      ],
    ]);
    expect(sent).toEqual([{ trialNumber: 3, jobId: 'job-1', points: recorded[0] }]);
  });

  test('a batch the study did not take goes again with the next one', async () => {
    const { r, sent } = reporter({ failSends: 1 });
    r.add(1, { loss: 1 });
    await r.flush();
    expect(sent).toEqual([]);
    r.add(2, { loss: 0.5 });
    await r.close();
    expect(sent.map((s) => s.points)).toEqual([
      [
        [1, 1],
        [2, 0.5],
      ],
    ]);
  });

  test('sendLastBatch: false records the last batch without telling the study', async () => {
    const { r, recorded, sent } = reporter({ sendLastBatch: false });
    r.add(1, { loss: 1 });
    await r.flush();
    r.add(2, { loss: 0.5 });
    await r.close();
    expect(recorded).toHaveLength(2);
    expect(sent.map((s) => s.points)).toEqual([[[1, 1]]]);
  });
});
