// Reports built in memory for the render tests.
import type { ReportTrial, StudyReport } from '../../src/report/types.ts';

export function trial(number: number, fields: Partial<ReportTrial> = {}): ReportTrial {
  return {
    number,
    state: 'completed',
    params: {},
    value: null,
    error: null,
    attempts: 1,
    jobId: `job-${number}`,
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:01:30.000Z',
    intermediate: [],
    ...fields,
  };
}

export function report(trials: ReportTrial[], fields: Partial<StudyReport> = {}, spec: object = {}): StudyReport {
  return {
    generatedAt: '2026-01-02T00:00:00.000Z',
    study: {
      id: 'study-1',
      name: 'sweep',
      status: 'running',
      stopReason: null,
      objective: { metric: 'val_loss', direction: 'minimize' },
      spec: spec as StudyReport['study']['spec'],
      createdAt: '2026-01-01T00:00:00.000Z',
      endedAt: null,
    },
    trials,
    bestTrialNumber: null,
    checkpoints: [],
    ...fields,
  };
}

/** The inside of one chart's figure. */
export function figure(html: string, chart: string): string {
  const match = new RegExp(`<figure data-chart="${chart}">([\\s\\S]*?)</figure>`).exec(html);
  if (!match) throw new Error(`no ${chart} chart`);
  return match[1] as string;
}

export const count = (text: string, re: RegExp) => [...text.matchAll(new RegExp(re, 'g'))].length;
