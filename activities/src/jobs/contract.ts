// What the trainingJob workflow and the job activities say to each other: inputs, results and
// the signal an attempt sends for each staged checkpoint. Pure types and names, no Node imports:
// the workflow bundle imports this module.
import type { CheckpointFile, CheckpointKind } from '@keel/db/states';

/** Sent by runTrainer to its workflow for each checkpoint it staged (before the trainer's ack). */
export const checkpointStagedSignalName = 'keel.checkpointStaged';
/**
 * Sent by runTrainer to its workflow when restoring found committed checkpoints corrupt or
 * missing (now marked failed), before the trainer starts: so the job's progress says so while
 * the attempt runs, not only once it ends. Payload: SkippedCheckpoint[].
 */
export const checkpointsSkippedSignalName = 'keel.checkpointsSkipped';

export interface SkippedCheckpoint {
  checkpointId: number;
  step: number;
  reason: string;
}

/** Sent by runTrainer to a study for its trial's objective values (batched, a few per second at most). */
export const trialReportSignalName = 'keel.trialReport';
/** Sent by a trial's trainingJob to its study once the job has ended, however it ended. */
export const trialEndedSignalName = 'keel.trialEnded';

/** Set on a job that runs one trial of a study: where its objective values go. */
export interface TrialLink {
  studyId: string;
  trialNumber: number;
  /** The objective metric: reports that carry it become the trial's intermediate values. */
  metric: string;
  /** Whether the study prunes: values then travel to it every second, else every 10 s. */
  prune: boolean;
}

export interface TrialReport {
  trialNumber: number;
  jobId: string;
  /** [step, value] of the objective, ascending steps, since the previous report. */
  points: [number, number][];
}

export interface TrialEnded {
  trialNumber: number;
  jobId: string;
  status: 'running' | 'completed' | 'failed' | 'stopped' | 'cancelled';
  finalMetrics: Record<string, number> | null;
  /** The newest metrics the job saw (a stopped or failed trial's last values). */
  metrics: Record<string, number>;
  step: number | null;
  error: string | null;
  /** Why it was stopped (the stop signal's reason), e.g. `pruned`. */
  stopReason: string | null;
}

export interface StagedCheckpointEvent {
  attempt: number;
  step: number;
  /** The host queue whose worker holds the staged files: uploads must run there. */
  hostQueue: string;
  dir: string;
  kind: CheckpointKind;
  name: string;
  files: CheckpointFile[] | { path: string; bytes: number; sha256?: string }[];
  bytes: number;
  metrics: Record<string, number>;
}

export interface TrainerSpec {
  command: string[];
  env: Record<string, string>;
  cwd?: string;
  params: Record<string, unknown>;
  gpus: number;
  timeouts: { heartbeatSeconds: number; progressSeconds: number; stopGraceSeconds: number };
  /** Present when the job is a study's trial. */
  trial?: TrialLink;
}

export interface RunTrainerInput {
  jobId: string;
  attempt: number;
  /** The job's storage (from startJob): where its committed checkpoints are restored from. */
  storageUri: string;
  trainer: TrainerSpec;
}

export type AttemptOutcome = 'completed' | 'stopped' | 'preempted' | 'crashed' | 'hung';

export interface RunTrainerResult {
  outcome: AttemptOutcome;
  exitCode: number | null;
  signal: string | null;
  step: number | null;
  metrics: Record<string, number>;
  finalMetrics: Record<string, number> | null;
  /** The end of the trainer's output (for crash reports). */
  outputTail: string;
  resumedFrom: { checkpointId: number; step: number } | null;
  /** Committed checkpoints found corrupt or missing while restoring, now marked failed. */
  skippedCheckpoints: SkippedCheckpoint[];
  host: string;
}

export interface RecordStagedInput {
  jobId: string;
  storageUri: string;
  staged: StagedCheckpointEvent;
}

export interface UploadCheckpointInput {
  checkpointId: number;
  storageUri: string;
  uri: string;
  staged: StagedCheckpointEvent;
}

export interface RetentionPolicy {
  keepLast: number;
  keepBest: number;
  objective?: { metric: string; direction: 'minimize' | 'maximize' };
}

export interface CommitResult {
  committed: boolean;
  /** Steps whose objects retention deleted. */
  collected: number[];
  bestStep: number | null;
}
