// Where a checkpoint's objects go under the job's storage URI, and the one digest that stands for
// a checkpoint of several files.
import { createHash } from 'node:crypto';

/** `<job>/attempt-<n>/step-<N>`: each attempt writes its own keys, so a step reached again after a
 *  resume never overwrites what an earlier attempt uploaded. Job ids are URI-encoded so any id
 *  (slashes, spaces) is one key segment. */
export function checkpointPrefix(jobId: string, attempt: number, step: number): string {
  return `${encodeURIComponent(jobId)}/attempt-${attempt}/step-${step}`;
}

/** sha256 of the sorted `path bytes sha256` lines: changes if any file's bytes or name change. */
export function manifestSha256(files: { path: string; bytes: number; sha256: string }[]): string {
  const lines = files
    .map((f) => `${f.path}\t${f.bytes}\t${f.sha256}\n`)
    .sort()
    .join('');
  return createHash('sha256').update(lines).digest('hex');
}

/** A checkpoint file's key under the job's storage URI (rows keep the checkpoint's full URI). */
export function fileKey(storageUri: string, checkpointUri: string, filePath: string): string {
  if (!checkpointUri.startsWith(`${storageUri}/`)) {
    throw new Error(`checkpoint ${checkpointUri} is not under the job's storage ${storageUri}`);
  }
  return `${checkpointUri.slice(storageUri.length + 1)}/${filePath}`;
}
