// Staging: the moment a trainer reports a checkpoint, keel takes its own immutable view of the
// files, so the trainer can go on (and delete or replace them) while the upload happens later.
// A hard link takes milliseconds whatever the size; across filesystems the files are copied,
// hashing as they go. Everything the trainer names is checked to stay inside its checkpoint folder.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ProblemCode } from './messages.ts';

/** A checkpoint keel will not stage, and why (`code` names the problem in the trainer's `nack`). */
export class CheckpointRefusedError extends Error {
  override name = 'CheckpointRefusedError';
  readonly code: ProblemCode;
  constructor(code: ProblemCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface StagedFile {
  /** Path inside the staged folder, with `/` separators. */
  path: string;
  bytes: number;
  /** Known when the file was copied (hashed on the way); hard links are hashed at upload. */
  sha256?: string;
}

export interface StagedCheckpoint {
  step: number;
  /** The staged folder: `<stagingDir>/step-<step>`. */
  dir: string;
  /** What the trainer reported: one file (staged as `<dir>/<its name>`), or a folder (its contents). */
  kind: 'file' | 'directory';
  /** For kind `file`, the file's name; resume restores it under the same name. */
  name: string;
  files: StagedFile[];
  bytes: number;
  method: 'link' | 'copy';
}

export interface StageRequest {
  /** The trainer's KEEL_CHECKPOINT_DIR. */
  checkpointDir: string;
  /** What the trainer reported: relative to checkpointDir, or absolute inside it. */
  reported: string;
  step: number;
  /** Where staged checkpoints live (on the same filesystem as checkpointDir, for hard links). */
  stagingDir: string;
}

export async function stageCheckpoint(request: StageRequest): Promise<StagedCheckpoint> {
  const source = await resolveInside(request.checkpointDir, request.reported);
  const top = await fs.lstat(source);
  // A FIFO, socket or device reported as the checkpoint itself is refused like one inside a
  // folder: before, it was staged, and the upload then blocked forever reading it (a FIFO with no
  // writer), retried without end, and the job never finished.
  if (!top.isDirectory() && !top.isFile()) {
    throw new CheckpointRefusedError('not_regular_file', `${request.reported} is not a regular file or a folder`);
  }
  const entries = top.isDirectory() ? await listFiles(source) : [{ from: source, rel: path.basename(source) }];
  if (entries.length === 0) throw new CheckpointRefusedError('empty_folder', `${request.reported} is an empty folder`);

  const dir = path.join(request.stagingDir, `step-${request.step}`);
  if (await exists(dir)) throw new CheckpointRefusedError('already_staged', `step ${request.step} is already staged`);
  // Built under a temporary name and renamed: a crash never leaves half a staged checkpoint.
  const building = path.join(request.stagingDir, `.step-${request.step}.building-${process.pid}`);
  await fs.rm(building, { recursive: true, force: true });
  try {
    await fs.mkdir(building, { recursive: true });
    const files: StagedFile[] = [];
    let linked = true;
    for (const { from, rel } of entries) {
      const to = path.join(building, rel);
      await fs.mkdir(path.dirname(to), { recursive: true });
      const staged = await linkOrCopy(from, to);
      linked &&= staged.sha256 === undefined;
      // Read-only: a stray write to the staged inode would corrupt what keel uploads.
      await fs.chmod(to, 0o444);
      files.push({ path: rel.split(path.sep).join('/'), ...staged });
    }
    await fs.rename(building, dir);
    return {
      step: request.step,
      dir,
      kind: top.isDirectory() ? 'directory' : 'file',
      name: path.basename(source),
      files,
      bytes: files.reduce((sum, f) => sum + f.bytes, 0),
      method: linked ? 'link' : 'copy',
    };
  } catch (err) {
    await fs.rm(building, { recursive: true, force: true });
    // keel's own disk is full (a copy across filesystems, or the folder entries of a hard link):
    // the trainer hears `no_space` by name, the partial copy is gone (just above), and the next
    // checkpoint is staged normally once uploads have freed their staged files. Before, this was
    // the generic `stage_failed` with an errno string, which a trainer cannot tell from a bug.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new CheckpointRefusedError(
        'no_space',
        `keel's staging folder ${request.stagingDir} has no space left for the checkpoint at step ${request.step}: ` +
          'nothing was kept; the next checkpoint is staged as usual once space frees',
      );
    }
    throw err;
  }
}

/**
 * The real path of `reported`, which must exist and lie inside `checkpointDir` once every
 * symbolic link is followed (so `../x`, `/etc/passwd` and links that escape are all refused).
 */
async function resolveInside(checkpointDir: string, reported: string): Promise<string> {
  if (reported.includes('\0')) throw new CheckpointRefusedError('bad_path', 'the checkpoint path contains a NUL byte');
  const root = await fs.realpath(checkpointDir);
  const outside = () =>
    new CheckpointRefusedError(
      'outside_checkpoint_dir',
      `${reported} is outside the checkpoint folder (KEEL_CHECKPOINT_DIR=${root})`,
    );
  const lexical = path.resolve(root, reported);
  if (!lexical.startsWith(root + path.sep)) throw outside();
  let real: string;
  try {
    real = await fs.realpath(lexical);
  } catch {
    throw new CheckpointRefusedError('not_found', `${reported} does not exist in the checkpoint folder`);
  }
  if (!real.startsWith(root + path.sep)) throw outside(); // a symbolic link led out
  return real;
}

/** Regular files under `dir`, sorted; symbolic links and special files are refused. */
async function listFiles(dir: string, prefix = ''): Promise<{ from: string; rel: string }[]> {
  const out: { from: string; rel: string }[] = [];
  const entries = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    const from = path.join(dir, entry.name);
    const rel = prefix ? path.join(prefix, entry.name) : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(from, rel)));
    else if (entry.isFile()) out.push({ from, rel });
    else {
      throw new CheckpointRefusedError(
        'not_regular_file',
        `${rel} is not a regular file (links and special files are not staged)`,
      );
    }
  }
  return out;
}

async function linkOrCopy(from: string, to: string): Promise<{ bytes: number; sha256?: string }> {
  const { size } = await fs.stat(from);
  try {
    await fs.link(from, to);
    return { bytes: size };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw err;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    createReadStream(from),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(to, { flags: 'wx' }),
  );
  return { bytes, sha256: hash.digest('hex') };
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/**
 * Removes what stagings killed mid-way left in a job's attempt folders on this host (the
 * `.step-N.building-<pid>` folders of workers that are gone). Finished stagings (`step-N`) stay:
 * their uploads may still be pending.
 */
export async function removeInterruptedStaging(jobDir: string): Promise<string[]> {
  const removed: string[] = [];
  const attempts = await fs.readdir(jobDir).catch(() => [] as string[]);
  for (const attempt of attempts.filter((a) => /^attempt-\d+$/.test(a))) {
    const stagingDir = path.join(jobDir, attempt, 'staged');
    for (const name of await fs.readdir(stagingDir).catch(() => [] as string[])) {
      const pid = /^\.step-\d+\.building-(\d+)$/.exec(name)?.[1];
      if (!pid || processIsAlive(Number(pid))) continue;
      await fs.rm(path.join(stagingDir, name), { recursive: true, force: true });
      removed.push(path.join(stagingDir, name));
    }
  }
  return removed;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
