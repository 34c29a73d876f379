// Task queue names shared by workers and clients (see docs/architecture.md).
/** Workflows and control activities. */
export const KEEL_TASK_QUEUE = 'keel';
