// The trainer's side of keel's protocol (docs/trainer-protocol.md). No dependencies. Without
// KEEL_CONTROL (a run outside keel) every call still works locally: metrics go to stderr and
// checkpoints stay where they were written.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export type Metrics = Record<string, number>;

/** The longest line keel reads (docs/trainer-protocol.md); longer ones are refused unread. */
export const maxLineBytes = 1024 * 1024;

/** keel refused the checkpoint (`nack`); `code` names the problem (docs/trainer-protocol.md). */
export class CheckpointRefusedError extends Error {
  override name = 'CheckpointRefusedError';
  readonly code: string;
  constructor(message: string, code = 'refused') {
    super(message);
    this.code = code;
  }
}

export interface ResumePoint {
  /** The restored checkpoint: the file or folder as it was reported. */
  path: string;
  step: number;
}

export interface Keel {
  /** True when run by keel (connected to its control socket). */
  readonly attached: boolean;
  readonly jobId: string | undefined;
  readonly attempt: number;
  /** Where to write checkpoints (one new file or folder per checkpoint). */
  readonly checkpointDir: string;
  /** Where to resume from, or undefined on a fresh start. */
  readonly resumeFrom: ResumePoint | undefined;
  params<T = Record<string, unknown>>(): T;
  report(step: number, metrics: Metrics): void;
  /** Resolves once keel has staged the checkpoint (training may go on and delete the files). */
  checkpoint(step: number, checkpointPath: string, metrics?: Metrics): Promise<void>;
  heartbeat(step?: number): void;
  /** True once keel asked the trainer to stop (a stop message or SIGTERM): save and exit. */
  shouldStop(): boolean;
  readonly stopReason: string | undefined;
  /** Final metrics; flushes and closes the connection. Exit 0 after it. */
  done(metrics?: Metrics): Promise<void>;
}

export async function connect(env: NodeJS.ProcessEnv = process.env): Promise<Keel> {
  const checkpointDir = path.resolve(env.KEEL_CHECKPOINT_DIR ?? 'checkpoints');
  fs.mkdirSync(checkpointDir, { recursive: true });
  const resumeFrom =
    env.KEEL_RESUME_FROM && env.KEEL_RESUME_STEP !== undefined
      ? { path: env.KEEL_RESUME_FROM, step: Number(env.KEEL_RESUME_STEP) }
      : undefined;
  const params = JSON.parse(env.KEEL_PARAMS ?? '{}') as Record<string, unknown>;
  const socket = env.KEEL_CONTROL ? await open(env.KEEL_CONTROL) : undefined;
  return new Session(socket, {
    jobId: env.KEEL_JOB_ID,
    attempt: Number(env.KEEL_ATTEMPT ?? 1),
    checkpointDir,
    resumeFrom,
    params,
  });
}

function open(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => resolve(socket));
    socket.once('error', reject);
  });
}

interface Settings {
  jobId: string | undefined;
  attempt: number;
  checkpointDir: string;
  resumeFrom: ResumePoint | undefined;
  params: Record<string, unknown>;
}

class Session implements Keel {
  readonly attached: boolean;
  readonly jobId: string | undefined;
  readonly attempt: number;
  readonly checkpointDir: string;
  readonly resumeFrom: ResumePoint | undefined;
  stopReason: string | undefined;
  readonly #socket: net.Socket | undefined;
  readonly #params: Record<string, unknown>;
  readonly #pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  constructor(socket: net.Socket | undefined, settings: Settings) {
    this.#socket = socket;
    this.attached = socket !== undefined;
    this.jobId = settings.jobId;
    this.attempt = settings.attempt;
    this.checkpointDir = settings.checkpointDir;
    this.resumeFrom = settings.resumeFrom;
    this.#params = settings.params;
    process.once('SIGTERM', () => {
      this.stopReason ??= 'SIGTERM';
    });
    if (socket) {
      socket.setEncoding('utf8');
      let buffered = '';
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
          this.#receive(buffered.slice(0, i));
          buffered = buffered.slice(i + 1);
        }
      });
      // keel gone (its worker died): stop as if asked to. The trainer saves locally and exits, so
      // it does not keep a GPU busy for a run keel will restart elsewhere.
      socket.on('error', () => {});
      socket.on('close', () => {
        this.stopReason ??= 'keel disconnected';
        this.#failPending(new Error('keel closed the control socket'));
      });
      this.#send({ type: 'hello', protocol: 1, pid: process.pid });
    }
  }

  params<T>(): T {
    return this.#params as T;
  }

  report(step: number, metrics: Metrics): void {
    if (this.#socket) this.#send({ type: 'metric', step, metrics });
    else console.error(`step ${step}: ${JSON.stringify(metrics)}`);
  }

  checkpoint(step: number, checkpointPath: string, metrics: Metrics = {}): Promise<void> {
    if (!this.#socket) return Promise.resolve();
    if (this.#socket.destroyed) return Promise.reject(new Error('keel closed the control socket'));
    const line = JSON.stringify({ type: 'checkpoint', step, path: checkpointPath, metrics });
    // keel answers a line over its limit with a bare `error` (it cannot read the step from it), so
    // this promise would wait forever: refuse it here instead.
    if (Buffer.byteLength(line) > maxLineBytes) {
      return Promise.reject(
        new CheckpointRefusedError(`the checkpoint message is longer than ${maxLineBytes} bytes`, 'line_too_long'),
      );
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(step, { resolve, reject });
      this.#socket?.write(`${line}\n`);
    });
  }

  heartbeat(step?: number): void {
    if (this.#socket) this.#send({ type: 'heartbeat', ...(step === undefined ? {} : { step }) });
  }

  shouldStop(): boolean {
    return this.stopReason !== undefined;
  }

  async done(metrics: Metrics = {}): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    this.#send({ type: 'done', metrics });
    await new Promise<void>((resolve) => socket.end(resolve));
  }

  #send(message: object): void {
    if (this.#socket && !this.#socket.destroyed) this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  #receive(line: string): void {
    const message = JSON.parse(line) as {
      type: string;
      step?: number;
      error?: string;
      code?: string;
      reason?: string;
    };
    const pending = message.step === undefined ? undefined : this.#pending.get(message.step);
    if (message.type === 'ack' && pending) {
      this.#pending.delete(message.step as number);
      pending.resolve();
    } else if (message.type === 'nack' && pending) {
      this.#pending.delete(message.step as number);
      pending.reject(new CheckpointRefusedError(message.error ?? 'refused', message.code));
    } else if (message.type === 'stop') {
      this.stopReason ??= message.reason ?? 'stop';
    } else if (message.type === 'error') {
      console.error(`keel: ${message.code ? `${message.code}: ` : ''}${message.error}`);
    }
  }

  #failPending(error: Error): void {
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }
}
