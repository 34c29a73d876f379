// What keel does with a trainer's messages during one attempt: remembers the newest step and
// metrics (for heartbeats and progress), stages each checkpoint and answers ack or nack, and
// notes when the trainer last spoke (for hang detection). Transport-free: the control server
// feeds it, the launch activity reads it.
import fs from 'node:fs/promises';
import type { KeelMessage, TrainerMessage } from './messages.ts';
import { CheckpointRefusedError, type StagedCheckpoint, stageCheckpoint } from './staging.ts';

export interface SessionOptions {
  checkpointDir: string;
  stagingDir: string;
  /** The step this attempt resumed from: checkpoints must come after it. */
  resumedStep?: number;
  /** Called once a checkpoint is staged, before the trainer is acked. */
  onStaged?: (staged: StagedCheckpoint, metrics: Record<string, number>) => void | Promise<void>;
  /** Called for every metric report (and the metrics a checkpoint carries), after the session noted it. */
  onMetrics?: (step: number, metrics: Record<string, number>) => void;
  now?: () => number;
}

export class TrainerSession {
  step: number | undefined;
  metrics: Record<string, number> = {};
  finalMetrics: Record<string, number> | undefined;
  lastMessageAt: number;
  readonly staged: StagedCheckpoint[] = [];
  readonly refused: { step: number; error: string }[] = [];
  #lastCheckpointStep: number | undefined;
  #previousCheckpointStep: number | undefined;
  readonly #options: SessionOptions;
  readonly #now: () => number;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.lastMessageAt = this.#now();
    this.#lastCheckpointStep = options.resumedStep;
  }

  handle = async (message: TrainerMessage): Promise<KeelMessage | undefined> => {
    this.lastMessageAt = this.#now();
    switch (message.type) {
      case 'hello':
        return message.protocol === 1
          ? undefined
          : { type: 'error', error: `protocol ${message.protocol} is not spoken here; keel speaks protocol 1` };
      case 'metric':
        this.#advance(message.step);
        this.metrics = { ...this.metrics, ...message.metrics };
        this.#options.onMetrics?.(message.step, message.metrics);
        return undefined;
      case 'heartbeat':
        if (message.step !== undefined) this.#advance(message.step);
        return undefined;
      case 'done':
        this.finalMetrics = { ...this.metrics, ...message.metrics };
        return undefined;
      case 'checkpoint':
        return this.#checkpoint(message.step, message.path, message.metrics);
    }
  };

  async #checkpoint(step: number, reported: string, metrics: Record<string, number>): Promise<KeelMessage> {
    try {
      const last = this.#lastCheckpointStep;
      if (last !== undefined && step <= last) {
        throw new CheckpointRefusedError(`step ${step} is not after the last checkpoint's step ${last}`);
      }
      const staged = await stageCheckpoint({
        checkpointDir: this.#options.checkpointDir,
        stagingDir: this.#options.stagingDir,
        reported,
        step,
      });
      this.#previousCheckpointStep = this.#lastCheckpointStep;
      this.#lastCheckpointStep = step;
      this.#advance(step);
      this.metrics = { ...this.metrics, ...metrics };
      this.#options.onMetrics?.(step, metrics);
      this.staged.push(staged);
      await this.#options.onStaged?.(staged, metrics);
      return { type: 'ack', step };
    } catch (err) {
      // Whatever went wrong (a refused path, a failed link, keel unable to record it), the trainer
      // hears `nack` for this step, never silence, and nothing half-staged is left behind.
      const error = err instanceof CheckpointRefusedError ? err.message : `keel could not stage it: ${String(err)}`;
      if (!(err instanceof CheckpointRefusedError)) await this.#unstage(step);
      this.refused.push({ step, error });
      return { type: 'nack', step, error };
    }
  }

  async #unstage(step: number): Promise<void> {
    const index = this.staged.findIndex((s) => s.step === step);
    const [staged] = index >= 0 ? this.staged.splice(index, 1) : [];
    if (staged) await fs.rm(staged.dir, { recursive: true, force: true });
    if (this.#lastCheckpointStep === step) this.#lastCheckpointStep = this.#previousCheckpointStep;
  }

  #advance(step: number): void {
    if (this.step === undefined || step > this.step) this.step = step;
  }
}
