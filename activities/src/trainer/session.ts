// What keel does with a trainer's messages during one attempt: remembers the newest step and
// metrics (for heartbeats and progress), stages each checkpoint and answers ack or nack, and
// notes when the trainer last spoke (for hang detection). Transport-free: the control server
// feeds it, the launch activity reads it.
import fs from 'node:fs/promises';
import { clip, type KeelMessage, maxMetricNames, type ProblemCode, type TrainerMessage } from './messages.ts';
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

/** Refused checkpoints remembered (the newest); `problems` counts them all. */
const refusalsKept = 100;

export class TrainerSession {
  step: number | undefined;
  metrics: Record<string, number> = {};
  finalMetrics: Record<string, number> | undefined;
  lastMessageAt: number;
  readonly staged: StagedCheckpoint[] = [];
  /** The newest refused checkpoints (at most 100). */
  readonly refused: { step: number; code: ProblemCode; error: string }[] = [];
  /** Everything keel refused from the trainer this attempt (lines, messages, checkpoints, names). */
  problems = 0;
  /** The newest of them, by name: shown in the attempt's heartbeat. */
  lastProblem: { code: ProblemCode; error: string } | undefined;
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

  /** Notes a problem with the trainer's input (the control server reports the lines it refused). */
  noteProblem = (code: ProblemCode, error: string): void => {
    this.problems += 1;
    this.lastProblem = { code, error };
  };

  handle = async (message: TrainerMessage): Promise<KeelMessage | KeelMessage[] | undefined> => {
    this.lastMessageAt = this.#now();
    switch (message.type) {
      case 'hello':
        return message.protocol === 1
          ? undefined
          : this.#problem(
              'unsupported_protocol',
              `protocol ${message.protocol} is not spoken here; keel speaks protocol 1`,
            );
      case 'metric': {
        this.#advance(message.step);
        const { kept, refused } = this.#budget(message.metrics);
        this.metrics = { ...this.metrics, ...kept };
        this.#options.onMetrics?.(message.step, kept);
        return refused;
      }
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

  /**
   * The metrics whose names fit the attempt's budget (maxMetricNames), and an `error` naming the
   * rest. Before, every new name was kept: a trainer that made up names without end grew the
   * metrics each heartbeat carries until Temporal refused the heartbeat and the attempt failed
   * (and merging ever more names into one object made each report slower than the last).
   */
  #budget(metrics: Record<string, number>): { kept: Record<string, number>; refused?: KeelMessage } {
    let count = Object.keys(this.metrics).length;
    const dropped: string[] = [];
    const kept: Record<string, number> = {};
    for (const [name, value] of Object.entries(metrics)) {
      if (Object.hasOwn(this.metrics, name)) kept[name] = value;
      else if (count < maxMetricNames) {
        count += 1;
        kept[name] = value;
      } else dropped.push(name);
    }
    if (dropped.length === 0) return { kept };
    const refused = this.#problem(
      'too_many_metric_names',
      `${dropped.length} metric(s) dropped (${dropped.slice(0, 3).join(', ')}${dropped.length > 3 ? ', …' : ''}): ` +
        `an attempt may use at most ${maxMetricNames} metric names`,
    );
    return { kept, refused };
  }

  #problem(code: ProblemCode, error: string): KeelMessage {
    const text = clip(error);
    this.noteProblem(code, text);
    return { type: 'error', code, error: text };
  }

  async #checkpoint(step: number, reported: string, metrics: Record<string, number>): Promise<KeelMessage[]> {
    try {
      const last = this.#lastCheckpointStep;
      if (last !== undefined && step <= last) {
        throw new CheckpointRefusedError(
          'step_not_increasing',
          `step ${step} is not after the last checkpoint's step ${last}`,
        );
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
      // A checkpoint is never refused over its metrics: names past the budget are left out of
      // what keel records for it, and the trainer is told before the ack.
      const { kept, refused } = this.#budget(metrics);
      this.metrics = { ...this.metrics, ...kept };
      this.#options.onMetrics?.(step, kept);
      this.staged.push(staged);
      await this.#options.onStaged?.(staged, kept);
      return [...(refused ? [refused] : []), { type: 'ack', step }];
    } catch (err) {
      // Whatever went wrong (a refused path, a failed link, keel unable to record it), the trainer
      // hears `nack` for this step, never silence, and nothing half-staged is left behind.
      const refusal = err instanceof CheckpointRefusedError;
      const code = refusal ? err.code : 'stage_failed';
      const error = clip(refusal ? err.message : `keel could not stage it: ${String(err)}`);
      if (!refusal) await this.#unstage(step);
      this.refused.push({ step, code, error });
      if (this.refused.length > refusalsKept) this.refused.shift();
      this.noteProblem(code, error);
      return [{ type: 'nack', step, code, error }];
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
