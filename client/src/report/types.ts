// What a study report shows, as plain data: loadStudyReport fills it from the database and
// renderStudyReport draws it. Times are ISO strings so a report survives JSON unchanged.
import type { CheckpointKind, CheckpointStatus, Direction, JsonObject, StudyStatus, TrialState } from '@keel/db';

export interface StudyReport {
  generatedAt: string;
  study: {
    id: string;
    name: string;
    status: StudyStatus;
    stopReason: string | null;
    objective: { metric: string; direction: Direction };
    /** The spec as recorded; the report reads its search space (log axes, categories) and nTrials. */
    spec: JsonObject;
    createdAt: string;
    endedAt: string | null;
  };
  /** By number. */
  trials: ReportTrial[];
  /** The completed trial with the best value (lowest number on ties); null while there is none. */
  bestTrialNumber: number | null;
  /** The best trial's checkpoints by step; empty without a best trial or a job. */
  checkpoints: ReportCheckpoint[];
}

export interface ReportTrial {
  number: number;
  state: TrialState;
  params: JsonObject;
  /** The objective: final for completed trials, the last reported one for pruned trials. */
  value: number | null;
  error: string | null;
  attempts: number;
  jobId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  /** The objective by step, as the trial reported it (what the pruner compared). */
  intermediate: Array<{ step: number; value: number }>;
}

export interface ReportCheckpoint {
  id: number;
  step: number;
  status: CheckpointStatus;
  uri: string;
  bytes: number;
  sha256: string | null;
  kind: CheckpointKind;
  files: number;
  isBest: boolean;
  failureReason: string | null;
  metrics: Record<string, number>;
  createdAt: string;
  committedAt: string | null;
}

/** The completed trial with the best finite value in the direction, the lowest number on ties
 *  (the rule of the repository's bestTrial, applied to the trials the report shows). */
export function findBestTrial(trials: readonly ReportTrial[], direction: Direction): ReportTrial | undefined {
  let best: ReportTrial | undefined;
  for (const trial of [...trials].sort((a, b) => a.number - b.number)) {
    if (trial.state !== 'completed' || trial.value === null || !Number.isFinite(trial.value)) continue;
    if (
      !best ||
      (direction === 'minimize' ? trial.value < (best.value as number) : trial.value > (best.value as number))
    )
      best = trial;
  }
  return best;
}
