// Runs one attempt of a trainer: its folders, its control socket, the process (in its own process
// group, so keel can stop the whole tree), hang detection, and a graceful stop (a stop message
// and SIGTERM, then SIGKILL after the grace period). The launch activity wraps this with a GPU
// lease, heartbeats and the restore of the newest committed checkpoint.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startControlServer } from './control-server.ts';
import type { StopReason } from './messages.ts';
import { type SessionOptions, TrainerSession } from './session.ts';

export interface LaunchRequest {
  command: string[];
  env?: Record<string, string>;
  cwd?: string;
  params?: Record<string, unknown>;
  jobId: string;
  attempt: number;
  /** This attempt's folder on the host: checkpoints/, staged/, control.sock, trainer.log. */
  attemptDir: string;
  resume?: { path: string; step: number };
  /** Devices for CUDA_VISIBLE_DEVICES (empty: no GPU). */
  gpus?: string[];
  /** A trainer silent this long is hung: killed, outcome `hung`. */
  progressTimeoutMs: number;
  /** After a stop request, how long before SIGKILL. */
  stopGraceMs: number;
  onStaged?: SessionOptions['onStaged'];
  onMetrics?: SessionOptions['onMetrics'];
}

export type Outcome = 'completed' | 'stopped' | 'crashed' | 'hung';

export interface LaunchResult {
  outcome: Outcome;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stopReason: StopReason | undefined;
  session: TrainerSession;
  /** The end of the trainer's output, for failure messages. */
  outputTail: string;
  logFile: string;
}

export interface RunningTrainer {
  readonly pid: number;
  readonly session: TrainerSession;
  /** Asks the trainer to save and exit (stop message + SIGTERM), SIGKILL after the grace period. */
  stop(reason: StopReason): void;
  readonly result: Promise<LaunchResult>;
}

const tailBytes = 8 * 1024;

export async function launchTrainer(request: LaunchRequest): Promise<RunningTrainer> {
  const checkpointDir = path.join(request.attemptDir, 'checkpoints');
  const stagingDir = path.join(request.attemptDir, 'staged');
  fs.mkdirSync(checkpointDir, { recursive: true });
  fs.mkdirSync(stagingDir, { recursive: true });
  const session = new TrainerSession({
    checkpointDir,
    stagingDir,
    resumedStep: request.resume?.step,
    onStaged: request.onStaged,
    onMetrics: request.onMetrics,
  });
  const server = await startControlServer(path.join(request.attemptDir, 'control.sock'), session.handle, {
    onProblem: session.noteProblem,
  });
  const logFile = path.join(request.attemptDir, 'trainer.log');
  const log = fs.openSync(logFile, 'a');
  const [command, ...args] = request.command;
  const child = spawn(command as string, args, {
    cwd: request.cwd,
    detached: true, // its own process group: stop() reaches every process the trainer started
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...request.env,
      KEEL_PROTOCOL: '1',
      KEEL_JOB_ID: request.jobId,
      KEEL_ATTEMPT: String(request.attempt),
      KEEL_PARAMS: JSON.stringify(request.params ?? {}),
      KEEL_CHECKPOINT_DIR: checkpointDir,
      KEEL_CONTROL: server.socketPath,
      CUDA_VISIBLE_DEVICES: (request.gpus ?? []).join(','),
      ...(request.resume
        ? { KEEL_RESUME_FROM: request.resume.path, KEEL_RESUME_STEP: String(request.resume.step) }
        : { KEEL_RESUME_FROM: '', KEEL_RESUME_STEP: '' }),
    },
  });
  let tail = '';
  let logLost = 0;
  let logError = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk: Buffer) => {
      // The log shares the work dir's disk with staging. Before, a write failing there (ENOSPC:
      // the disk full) threw inside this handler, an uncaught exception that killed the whole
      // worker and every trainer it ran. Now the output is dropped from the file (noted once
      // space is back) and still kept in the tail that the attempt's result reports.
      try {
        if (logLost > 0) {
          fs.writeSync(log, `[keel: ${logLost} bytes of output were not logged: ${logError}]\n`);
          logLost = 0;
        }
        fs.writeSync(log, chunk);
      } catch (err) {
        logLost += chunk.length;
        logError = (err as NodeJS.ErrnoException).code ?? String(err);
      }
      tail = (tail + chunk.toString()).slice(-tailBytes);
    });
  }

  let stopReason: StopReason | undefined;
  let hung = false;
  let killTimer: NodeJS.Timeout | undefined;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const hangCheck = setInterval(
    () => {
      if (Date.now() - session.lastMessageAt > request.progressTimeoutMs) {
        hung = true;
        signalGroup('SIGKILL'); // a hung trainer will not save; do not wait for it
      }
    },
    Math.min(1000, request.progressTimeoutMs / 4),
  );

  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve([code, signal]));
  });
  const result = exited
    .then(async ([exitCode, signal]) => {
      clearInterval(hangCheck);
      clearTimeout(killTimer);
      signalGroup('SIGKILL'); // anything the trainer left behind in its group
      await server.close();
      fs.closeSync(log);
      const outcome: Outcome = hung
        ? 'hung'
        : exitCode === 0
          ? stopReason
            ? 'stopped'
            : 'completed'
          : stopReason && signal === 'SIGKILL'
            ? 'stopped' // did not save within the grace period; what it staged before still counts
            : 'crashed';
      return { outcome, exitCode, signal, stopReason, session, outputTail: tail, logFile };
    })
    .catch(async (err: unknown) => {
      clearInterval(hangCheck);
      await server.close();
      fs.closeSync(log);
      throw new Error(`cannot start the trainer ${JSON.stringify(request.command)}: ${(err as Error).message}`);
    });

  return {
    pid: child.pid ?? -1,
    session,
    result,
    stop(reason) {
      if (stopReason) return;
      stopReason = reason;
      server.broadcast({ type: 'stop', reason });
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), request.stopGraceMs);
    },
  };
}
