// Task queue names shared by workers and clients (see docs/architecture.md).
/** Workflows and control activities. */
export const KEEL_TASK_QUEUE = 'keel';
/** Trainer launches: served by workers on GPU hosts (or any host, for CPU jobs). */
export const KEEL_GPU_TASK_QUEUE = 'keel-gpu';
/** The queue of one host: work on files only that host holds (uploading what it staged). */
export function hostTaskQueue(hostId: string): string {
  return `keel-host-${hostId}`;
}
