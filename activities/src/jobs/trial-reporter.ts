// A trial's objective values on their way to its study: the trainer may report every few
// milliseconds, so values are batched and sent at most once per interval: recorded in the
// database (what `keel` and the HTTP API show) and signalled to the study (what its pruner
// judges). A batch that cannot be delivered stays queued for the next one; nothing is dropped
// unless the queue outgrows maxQueued (then the oldest points go first: the newest decide pruning).
import type { TrialLink, TrialReport } from './contract.ts';

export interface TrialReporterOptions {
  link: TrialLink;
  jobId: string;
  /** Persists points (idempotent per step). */
  record: (points: [number, number][]) => Promise<void>;
  /** Tells the study. */
  send: (report: TrialReport) => Promise<void>;
  intervalMs?: number;
  /** Whether the last batch (at close) is sent too, or only recorded: the job's end tells the
   *  study its last values anyway, so a study that does not prune need not hear them twice. */
  sendLastBatch?: boolean;
  onError?: (err: unknown) => void;
}

const maxQueued = 10_000;

export class TrialReporter {
  #queue: [number, number][] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closing = false;
  readonly #options: TrialReporterOptions;

  constructor(options: TrialReporterOptions) {
    this.#options = options;
  }

  /** Notes the objective's value if the report carries it; sends within the interval. */
  add(step: number, metrics: Record<string, number>): void {
    const value = metrics[this.#options.link.metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    const last = this.#queue[this.#queue.length - 1];
    if (last && last[0] === step) last[1] = value;
    else this.#queue.push([step, value]);
    if (this.#queue.length > maxQueued) this.#queue.splice(0, this.#queue.length - maxQueued);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#options.intervalMs ?? 1000);
  }

  /** Sends what is queued (one flush at a time, in order). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#deliver());
    return this.#flushing;
  }

  /** Stops the timer and delivers what is left. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closing = true;
    await this.flush();
  }

  async #deliver(): Promise<void> {
    if (this.#queue.length === 0) return;
    const points = this.#queue;
    this.#queue = [];
    const { link, jobId } = this.#options;
    try {
      await this.#options.record(points);
      if (!this.#closing || this.#options.sendLastBatch !== false) {
        await this.#options.send({ trialNumber: link.trialNumber, jobId, points });
      }
    } catch (err) {
      this.#queue = [...points, ...this.#queue]; // retried with the next batch
      this.#options.onError?.(err);
    }
  }
}
