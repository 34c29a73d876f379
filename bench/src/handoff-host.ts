// The host worker's side, as the checkpoint-handoff benchmark plays it without Temporal: launch a
// trainer with keel's real launchTrainer, and upload what it stages in the background the way the
// uploadCheckpoint activity does (sha256 of the hard-linked file, then put, then free the staged
// folder), one checkpoint after another, recording when each upload ran.
import fs from 'node:fs';
import path from 'node:path';
import { launchTrainer, type StagedCheckpoint } from '@keel/activities/trainer';
import { type Storage, sha256File } from '@keel/storage';
import { epochMs } from './step-work.ts';

export interface TrainerRun {
  script: string;
  attemptDir: string;
  params: Record<string, unknown>;
  env?: Record<string, string>;
  onStaged?: (staged: StagedCheckpoint) => void;
}

/** Runs a trainer to completion and returns what it wrote to its result file. */
export async function runTrainer<T>(run: TrainerRun): Promise<T> {
  const resultFile = path.join(run.attemptDir, 'result.json');
  const running = await launchTrainer({
    command: [process.execPath, run.script],
    env: run.env,
    params: { ...run.params, resultFile },
    jobId: 'checkpoint-handoff',
    attempt: 1,
    attemptDir: run.attemptDir,
    progressTimeoutMs: 30 * 60_000, // a save-then-upload trainer is silent for the whole upload
    stopGraceMs: 10_000,
    // Only queues the upload. The real worker also awaits a Temporal signal here before the ack,
    // which this benchmark (no Temporal) does not count.
    onStaged: run.onStaged,
  });
  const result = await running.result;
  const refused = result.session.refused.map((r) => `step ${r.step}: ${r.error}`).join('; ');
  if (result.outcome !== 'completed' || refused) {
    throw new Error(`${path.basename(run.script)} ${result.outcome} ${refused}\n${result.outputTail}`);
  }
  return JSON.parse(fs.readFileSync(resultFile, 'utf8')) as T;
}

export interface Upload {
  step: number;
  bytes: number;
  method: StagedCheckpoint['method'];
  /** Epoch ms: staged (trainer unblocked), upload began (hashing), upload ended (in storage). */
  stagedAt: number;
  startedAt: number;
  endedAt: number;
}

export class BackgroundUploader {
  readonly uploads: Upload[] = [];
  readonly #storage: Storage;
  readonly #prefix: string;
  readonly #expectedSha256: string;
  readonly #keys: string[] = [];
  #queue: Promise<void> = Promise.resolve();
  #error: unknown;

  /** `expectedSha256`: every checkpoint here holds the same bytes, checked after each upload. */
  constructor(storage: Storage, prefix: string, expectedSha256: string) {
    this.#storage = storage;
    this.#prefix = prefix;
    this.#expectedSha256 = expectedSha256;
  }

  /** Called from onStaged: returns at once, the upload runs after those queued before it. */
  enqueue = (staged: StagedCheckpoint): void => {
    const stagedAt = epochMs();
    this.#queue = this.#queue
      .then(() => this.#upload(staged, stagedAt))
      .catch((err: unknown) => {
        this.#error ??= err;
      });
  };

  async #upload(staged: StagedCheckpoint, stagedAt: number): Promise<void> {
    const startedAt = epochMs();
    for (const file of staged.files) {
      const local = path.join(staged.dir, file.path);
      const sha256 = file.sha256 ?? (await sha256File(local));
      if (sha256 !== this.#expectedSha256) throw new Error(`staged ${local} has sha256 ${sha256}, not the source's`);
      const key = `${this.#prefix}/step-${staged.step}/${file.path}`;
      await this.#storage.put(key, local, { sha256 });
      this.#keys.push(key);
    }
    await fs.promises.rm(staged.dir, { recursive: true, force: true });
    const { step, bytes, method } = staged;
    this.uploads.push({ step, bytes, method, stagedAt, startedAt, endedAt: epochMs() });
  }

  /** Waits for every queued upload; throws the first failure. */
  async drain(): Promise<Upload[]> {
    await this.#queue;
    if (this.#error) throw this.#error;
    return this.uploads;
  }

  /** Deletes what was uploaded: an 8 GiB object per run would fill the disk. */
  async clear(): Promise<void> {
    for (const key of this.#keys.splice(0)) await this.#storage.delete(key);
  }
}
