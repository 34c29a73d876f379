import { describe, expect, test } from 'vitest';
import { findBestTrial } from '../../src/report/index.ts';
import { renderStudyReport } from '../../src/report/render.ts';
import type { StudyReport } from '../../src/report/types.ts';
import { count, figure, report, trial } from './fixtures.ts';

const charts = ['history', 'intermediate', 'parallel', 'importance'];
const space = {
  space: {
    lr: { type: 'float', low: 1e-4, high: 0.1, log: true },
    layers: { type: 'int', low: 1, high: 8 },
    optimizer: { type: 'categorical', choices: ['adam', 'sgd', 'rmsprop'] },
  },
  nTrials: 12,
};

/** A running study: 8 completed trials, 2 pruned, one failed, one running. */
function fullStudy(): StudyReport {
  const trials = Array.from({ length: 12 }, (_, n) => {
    const params = { lr: 10 ** (-4 + (n % 4)), layers: 1 + (n % 8), optimizer: ['adam', 'sgd', 'rmsprop'][n % 3] };
    const final = 0.1 + Math.abs((n % 4) - 1.5) * 0.2 + n * 0.001;
    const curve = (steps: number) =>
      Array.from({ length: steps }, (_, i) => ({ step: (i + 1) * 100, value: final + (steps - i) * 0.05 }));
    if (n === 3 || n === 7) return trial(n, { state: 'pruned', params, value: final + 0.2, intermediate: curve(3) });
    if (n === 10) return trial(n, { state: 'failed', params, error: 'CUDA out of memory', endedAt: null });
    if (n === 11) return trial(n, { state: 'running', params, intermediate: curve(2), endedAt: null });
    return trial(n, { params, value: final, intermediate: curve(6) });
  });
  const best = findBestTrial(trials, 'minimize');
  return report(
    trials,
    {
      bestTrialNumber: best?.number ?? null,
      checkpoints: [300, 600].map((step, i) => ({
        id: i + 1,
        step,
        status: 'committed',
        uri: `file:///ckpt/${step}`,
        bytes: 2048 * step,
        sha256: 'ab'.repeat(32),
        kind: 'directory',
        files: 2,
        isBest: i === 1,
        failureReason: null,
        metrics: { val_loss: 0.1 },
        createdAt: '2026-01-01T00:00:10.000Z',
        committedAt: '2026-01-01T00:00:11.000Z',
      })),
    },
    space,
  );
}

describe('the study report', () => {
  test('draws a mark per trial in every chart', () => {
    const html = renderStudyReport(fullStudy());
    const history = figure(html, 'history');
    expect(count(history, /<circle data-trial=/)).toBe(10); // every trial with a value: 8 completed, 2 pruned
    expect(history).toContain('class="best-so-far"');
    const intermediate = figure(html, 'intermediate');
    expect(count(intermediate, /<path class="series/)).toBe(11); // all but the failed trial reported
    expect(count(intermediate, /class="pruned-end"/)).toBe(2);
    expect(count(intermediate, /stroke-dasharray/)).toBe(2);
    const parallel = figure(html, 'parallel');
    expect(count(parallel, /<path class="line" data-trial=/)).toBe(8);
    expect(parallel).toContain('lr (log)');
    for (const category of ['adam', 'sgd', 'rmsprop']) expect(parallel).toContain(`>${category}</text>`);
    expect(count(figure(html, 'importance'), /<rect data-param=/)).toBe(3);
    expect(count(html, /<table data-table="checkpoints">/)).toBe(1);
    expect(count(html, /<tr class="best">/)).toBe(2); // the best trial's row and its best checkpoint
    expect(html).toContain('of 12 planned');
  });

  test('fetches nothing: no script, no external reference, a CSP that forbids loading', () => {
    const html = renderStudyReport(fullStudy());
    expect(html).not.toMatch(/<script|<link|\b(src|href)=|@import|url\((?!#)/i);
    expect(html).not.toMatch(/https?:/);
    expect(html).toContain(`content="default-src 'none'`);
  });

  test('escapes every string from the database', () => {
    const evil = '<img src=x onerror="alert(1)">&\'';
    const html = renderStudyReport(
      report(
        [
          trial(0, { params: { [evil]: evil, lr: 0.1 }, value: 1, error: evil, intermediate: [{ step: 1, value: 1 }] }),
          ...[1, 2, 3, 4].map((n) => trial(n, { params: { [evil]: `${evil}${n % 2}`, lr: n / 10 }, value: n })),
          trial(5, { state: 'failed', params: { [evil]: evil }, error: `</td></tr></table><script>alert(2)</script>` }),
        ],
        {
          study: { ...report([]).study, id: evil, name: `<script>alert(3)</script>`, stopReason: evil },
          bestTrialNumber: 0,
          checkpoints: [
            {
              id: 1,
              step: 1,
              status: 'failed',
              uri: evil,
              bytes: 1,
              sha256: evil,
              kind: 'file',
              files: 1,
              isBest: false,
              failureReason: evil,
              metrics: { [evil]: 1 },
              createdAt: '2026-01-01T00:00:00.000Z',
              committedAt: null,
            },
          ],
        },
        { space: { [evil]: { type: 'categorical', choices: [evil] } } },
      ),
    );
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('onerror="');
    expect(html).toContain('&#60;script&#62;alert(3)&#60;/script&#62;');
    expect(html).toContain('&#60;img src=x onerror=&#34;alert(1)&#34;&#62;&#38;&#39;');
  });

  const degenerate: Array<[string, StudyReport]> = [
    ['no trials', report([])],
    [
      'one pending trial',
      report([trial(0, { state: 'pending', params: { lr: 0.1 }, startedAt: null, endedAt: null })]),
    ],
    ['one completed trial', report([trial(0, { params: { lr: 0.1 }, value: 0.5 })], { bestTrialNumber: 0 }, space)],
    [
      'all failed',
      report(
        [0, 1, 2, 3, 4].map((n) => trial(n, { state: 'failed', params: { lr: n }, error: 'boom' })),
        {},
        space,
      ),
    ],
    [
      'a constant objective',
      report(
        [0, 1, 2, 3, 4, 5].map((n) =>
          trial(n, {
            params: { lr: 0.01, optimizer: 'adam' },
            value: 0.25,
            intermediate: [{ step: 0, value: 0.25 }],
          }),
        ),
        { bestTrialNumber: 0 },
        space,
      ),
    ],
    [
      'zero, negative and huge values on log axes',
      report(
        [
          trial(0, { params: { lr: 0 }, value: -1e9, intermediate: [{ step: 5, value: 0 }] }),
          trial(1, { params: { lr: -3 }, value: 1e300 }),
          trial(2, { params: { lr: 1e-300 }, value: 0 }),
          trial(3, { state: 'pruned', params: {}, value: 2, intermediate: [{ step: 5, value: 2 }] }),
        ],
        { bestTrialNumber: 0 },
        { space: { lr: { type: 'float', low: 0, high: 1, log: true } } },
      ),
    ],
    ['a spec that is not a search space', report([trial(0, { params: { x: 'a' }, value: 1 })], {}, { space: 'nope' })],
  ];

  test.each(degenerate)('renders %s with every chart and no NaN', (_, input) => {
    const html = renderStudyReport(input);
    expect(html).not.toMatch(/NaN|Infinity|undefined/);
    for (const chart of charts) expect(figure(html, chart)).toMatch(/^<svg viewBox="0 0 \d+ \d+"/);
  });

  test('says why importance is missing', () => {
    const few = renderStudyReport(report([trial(0, { params: { lr: 0.1 }, value: 0.5 })]));
    expect(figure(few, 'importance')).toContain('Not enough completed trials');
    const constant = renderStudyReport(degenerate[4]?.[1] as StudyReport);
    expect(figure(constant, 'importance')).toContain('is the same in every completed trial');
    expect(renderStudyReport(report([]))).toContain('No trial has reported the objective yet.');
  });

  test('the best-so-far line follows the direction', () => {
    const values = [3, 1, 2, 0.5, 4];
    const trials = values.map((value, n) => trial(n, { params: { x: n }, value }));
    const steps = (direction: 'minimize' | 'maximize') => {
      const base = report(trials);
      const html = renderStudyReport({ ...base, study: { ...base.study, objective: { metric: 'm', direction } } });
      return count(/class="best-so-far" d="([^"]*)"/.exec(html)?.[1] ?? '', /V/);
    };
    expect(steps('minimize')).toBe(2); // 3 → 1 → 0.5
    expect(steps('maximize')).toBe(1); // 3 → 4
  });
});
