// @keel/client/report: the study report, one self-contained HTML file for an HPO study.
//
// Built from the database alone (loadStudyReport), so it works for running and finished studies
// without Temporal, and drawn as inline SVG by renderStudyReport: no script, fonts or anything
// else to fetch (its Content-Security-Policy forbids it), so it opens offline. It shows a header
// (name, id, status, objective, counts by state, best value and params), then
//   1. optimization history: each trial's objective by number, coloured by state, and the best so far;
//   2. intermediate values: one line per trial by step, pruned trials dashed red ending in a cross;
//   3. parallel coordinates: one axis per parameter (log where the spec says so, categories in the
//      spec's order) plus the objective, one line per completed trial coloured by its objective;
//   4. parameter importance: each parameter's share of the objective's variance explained by its
//      marginal (one-way ANOVA epsilon squared, numeric parameters in quantile bins), from 4
//      completed trials on;
//   5. the best trial's checkpoints, and a table of every trial.
// Each chart is a `<figure data-chart="history|intermediate|parallel|importance">` holding an `<svg>`.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { KeelDatabase } from '@keel/db';
import { loadStudyReport } from './load.ts';
import { renderStudyReport } from './render.ts';
import type { StudyReport } from './types.ts';

export {
  type ImportanceTrial,
  minTrialsForImportance,
  type ParamImportance,
  parameterImportance,
} from './importance.ts';
export { loadStudyReport } from './load.ts';
export { renderStudyReport } from './render.ts';
export { findBestTrial, type ReportCheckpoint, type ReportTrial, type StudyReport } from './types.ts';

/** Loads, renders and writes a study's report to `file` (creating its folder); returns the report. */
export async function writeStudyReport(db: KeelDatabase, studyId: string, file: string): Promise<StudyReport> {
  const report = await loadStudyReport(db, studyId);
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await fs.writeFile(file, renderStudyReport(report));
  return report;
}
