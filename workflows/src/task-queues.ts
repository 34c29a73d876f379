// Task queue names shared by workers and clients (see docs/architecture.md).
/** Workflows and control activities. */
export const KEEL_TASK_QUEUE = 'keel';
/** Trainer launches: served by workers on GPU hosts (or any host, for CPU jobs). */
export const KEEL_GPU_TASK_QUEUE = 'keel-gpu';
/** The queue of one host: work on files only that host holds (uploading what it staged). */
export function hostTaskQueue(hostId: string): string {
  return `keel-host-${hostId}`;
}

/** What a GPU class may be called: it becomes part of a task queue name and of metric labels. */
export const gpuClassPattern = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export const gpuClassHint =
  "expected a GPU class such as 'a100' or 'h100-80gb': lower-case letters, digits and inner dashes, at most 40";

/**
 * Where the trainers of a GPU class are launched: the GPU queue with the class appended
 * (`keel-gpu` + `a100` = `keel-gpu-a100`). Without a class, the GPU queue itself. A worker with
 * KEEL_GPU_CLASS serves that queue; a job with `gpuClass` launches there.
 */
export function gpuClassTaskQueue(gpuTaskQueue: string, gpuClass?: string | null): string {
  return gpuClass ? `${gpuTaskQueue}-${gpuClass}` : gpuTaskQueue;
}
