// The lifecycles keel records. Both dialects store them as text; these lists are the source of
// truth for the types and for the checks the repository makes before writing.

export const jobStatuses = ['pending', 'running', 'completed', 'failed', 'stopped', 'cancelled'] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const terminalJobStatuses: readonly JobStatus[] = ['completed', 'failed', 'stopped', 'cancelled'];

/**
 * pending (staged on a worker) -> uploaded (object in storage) -> committed (verified and usable
 * for resume) -> gc (deleted by retention). Any live state may become failed, with a reason:
 * an upload that gave up, or a committed object found corrupted or missing.
 */
export const checkpointStatuses = ['pending', 'uploaded', 'committed', 'gc', 'failed'] as const;
export type CheckpointStatus = (typeof checkpointStatuses)[number];

/** For each target status, the statuses a checkpoint may move from (besides staying put). */
export const checkpointTransitions: Record<CheckpointStatus, readonly CheckpointStatus[]> = {
  pending: [],
  uploaded: ['pending'],
  committed: ['pending', 'uploaded'],
  gc: ['committed', 'failed'],
  failed: ['pending', 'uploaded', 'committed'],
};

export const studyStatuses = ['running', 'paused', 'completed', 'stopped', 'failed'] as const;
export type StudyStatus = (typeof studyStatuses)[number];

/** stopped: ended by its study (the study was stopped, or the trial ran past its time limit). */
export const trialStates = ['pending', 'running', 'completed', 'pruned', 'failed', 'stopped'] as const;
export type TrialState = (typeof trialStates)[number];

export const directions = ['minimize', 'maximize'] as const;
export type Direction = (typeof directions)[number];

export type CheckpointKind = 'file' | 'directory';

/** One file of a checkpoint, as uploaded: its key under the checkpoint's URI. */
export interface CheckpointFile {
  path: string;
  bytes: number;
  sha256: string;
}

export type Metrics = Record<string, number>;
export type JsonObject = { [key: string]: unknown };
