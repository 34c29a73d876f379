// Reads everything a study report shows from the database alone, so it works for running and
// finished studies without Temporal.
import { intermediateValues, type KeelDatabase, listCheckpoints, listTrials, requireStudy } from '@keel/db';
import { findBestTrial, type ReportCheckpoint, type ReportTrial, type StudyReport } from './types.ts';

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

/** The report of one study. An unknown id is the repository's RecordNotFoundError ("study <id> not found"). */
export async function loadStudyReport(db: KeelDatabase, studyId: string): Promise<StudyReport> {
  const study = await requireStudy(db, studyId);
  const [rows, values] = await Promise.all([listTrials(db, studyId), intermediateValues(db, studyId)]);
  const byTrial = new Map<number, ReportTrial['intermediate']>();
  for (const v of values) {
    const series = byTrial.get(v.trialNumber) ?? [];
    series.push({ step: v.step, value: v.value });
    byTrial.set(v.trialNumber, series);
  }
  const trials: ReportTrial[] = rows.map((t) => ({
    number: t.number,
    state: t.state,
    params: t.params,
    value: t.value,
    error: t.error,
    attempts: t.attempts,
    jobId: t.jobId,
    startedAt: iso(t.startedAt),
    endedAt: iso(t.endedAt),
    intermediate: byTrial.get(t.number) ?? [],
  }));
  // The best is taken from the trials read here rather than the study row, so the header, the
  // charts and the checkpoints agree even while a running study moves on between the reads.
  const best = findBestTrial(trials, study.direction);
  const checkpoints: ReportCheckpoint[] = best?.jobId
    ? (await listCheckpoints(db, best.jobId)).map((c) => ({
        id: c.id,
        step: c.step,
        status: c.status,
        uri: c.uri,
        bytes: c.bytes,
        sha256: c.sha256,
        kind: c.kind,
        files: c.files.length,
        isBest: c.isBest,
        failureReason: c.failureReason,
        metrics: c.metrics,
        createdAt: c.createdAt.toISOString(),
        committedAt: iso(c.committedAt),
      }))
    : [];
  return {
    generatedAt: new Date().toISOString(),
    study: {
      id: study.id,
      name: study.name,
      status: study.status,
      stopReason: study.stopReason,
      objective: { metric: study.objectiveMetric, direction: study.direction },
      spec: study.spec,
      createdAt: study.createdAt.toISOString(),
      endedAt: iso(study.endedAt),
    },
    trials,
    bestTrialNumber: best?.number ?? null,
    checkpoints,
  };
}
