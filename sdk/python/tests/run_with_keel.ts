// Runs one trainer attempt with keel's real trainer side (launchTrainer: the control socket,
// staging by hard link, ack/nack) and prints a JSON summary on stdout. Used by the Python SDK's
// tests (sdk/python/tests), which run it as:
//
//   bash scripts/with-tools.sh node sdk/python/tests/run_with_keel.ts '<config JSON>'
//
// Config: { command: string[], attemptDir: string, params?, env?, jobId?, attempt?,
//   resume?: {path, step}, stopOn?: text in the trainer's output that triggers a stop,
//   stopWith?: 'keel' (what keel does: a stop message, then SIGTERM) | 'sigterm' (the signal only),
//   stopReason?: 'cancel' | 'prune' | 'preempt', progressTimeoutMs?, stopGraceMs?, timeoutMs? }
//
// @keel/activities is not a dependency of sdk/python (not a workspace package), so the module is
// imported by its path: the same file as `@keel/activities/trainer`.
import fs from 'node:fs';
import path from 'node:path';
import { launchTrainer, type StopReason } from '../../../activities/src/trainer/index.ts';

interface Config {
  command: string[];
  attemptDir: string;
  params?: Record<string, unknown>;
  env?: Record<string, string>;
  jobId?: string;
  attempt?: number;
  resume?: { path: string; step: number };
  stopOn?: string;
  stopWith?: 'keel' | 'sigterm';
  stopReason?: StopReason;
  progressTimeoutMs?: number;
  stopGraceMs?: number;
  timeoutMs?: number;
}

const raw = process.argv[2];
if (!raw) {
  console.error("usage: node run_with_keel.ts '<config JSON>'");
  process.exit(2);
}
const config = JSON.parse(raw) as Config;
fs.mkdirSync(config.attemptDir, { recursive: true });
const logFile = path.join(config.attemptDir, 'trainer.log');

const running = await launchTrainer({
  command: config.command,
  env: config.env,
  params: config.params ?? {},
  jobId: config.jobId ?? 'sdk-python-test',
  attempt: config.attempt ?? 1,
  attemptDir: config.attemptDir,
  resume: config.resume,
  progressTimeoutMs: config.progressTimeoutMs ?? 20_000,
  stopGraceMs: config.stopGraceMs ?? 10_000,
});

let stopSent: string | undefined;
const readLog = () => {
  try {
    return fs.readFileSync(logFile, 'utf8');
  } catch {
    return '';
  }
};
const stopPoll = config.stopOn
  ? setInterval(() => {
      if (stopSent || !readLog().includes(config.stopOn as string)) return;
      if (config.stopWith === 'sigterm') {
        stopSent = 'SIGTERM';
        process.kill(running.pid, 'SIGTERM');
      } else {
        stopSent = config.stopReason ?? 'cancel';
        running.stop(config.stopReason ?? 'cancel');
      }
    }, 20)
  : undefined;
let timedOut = false;
const watchdog = setTimeout(() => {
  timedOut = true;
  try {
    process.kill(-running.pid, 'SIGKILL');
  } catch {
    // gone
  }
}, config.timeoutMs ?? 30_000);

const result = await running.result;
clearInterval(stopPoll);
clearTimeout(watchdog);
const { session } = result;
console.log(
  JSON.stringify({
    outcome: result.outcome,
    exitCode: result.exitCode,
    signal: result.signal,
    stopReason: result.stopReason ?? null,
    stopSent: stopSent ?? null,
    timedOut,
    step: session.step ?? null,
    metrics: session.metrics,
    finalMetrics: session.finalMetrics ?? null,
    staged: session.staged,
    refused: session.refused,
    attemptDir: config.attemptDir,
    checkpointDir: path.join(config.attemptDir, 'checkpoints'),
    log: readLog(),
  }),
);
