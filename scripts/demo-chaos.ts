// `npm run demo -- --chaos`: the demo's worker runs as a `keel worker` process of its own, so that
// midway through the study it can be killed with kill -9, together with the trainers it runs (a
// machine lost), and started again. Afterwards: which trials were hit, the checkpoint each one
// resumed from, and the count of checkpoints acked, committed and lost, each committed one
// re-read from the demo's storage and checked against its sha256.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobProgress, KeelClient } from '@keel/client';

const cli = path.resolve(import.meta.dirname, '../client/src/cli.ts');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
}

/** Starts `keel worker` (output appended to `logFile`) and waits until it serves its queues. */
export async function startWorker(options: {
  address: string;
  namespace: string;
  home: string;
  logFile: string;
}): Promise<WorkerProcess> {
  const out = fs.openSync(options.logFile, 'a');
  const from = fs.statSync(options.logFile).size;
  const child = spawn(process.execPath, [cli, 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: options.address,
      TEMPORAL_NAMESPACE: options.namespace,
      KEEL_HOME: options.home,
    },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const printed = fs.readFileSync(options.logFile, 'utf8').slice(from);
    if (printed.includes('keel worker: serving task queues')) return { child, pid: child.pid as number };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the demo's worker did not start; its log (${options.logFile}) ends:\n${printed.slice(-2000)}`);
    }
    await sleep(100);
  }
}

/** kill -9 of the worker and of every trainer it started (each in its own process group), as
 *  when its machine is lost; resolves with the trainers (pid, job) once the worker is gone. */
export async function killWorker(worker: WorkerProcess): Promise<{ pid: number; jobId: string }[]> {
  let pids: number[] = [];
  try {
    pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(worker.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter(Boolean);
  } catch {} // ps exits 1 when there are none
  const trainers = pids.map((pid) => ({ pid, jobId: jobOf(pid) }));
  const exited = new Promise((resolve) => worker.child.once('exit', resolve));
  worker.child.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {} // already gone
  }
  await exited;
  return trainers;
}

/** The job a trainer runs for (its KEEL_JOB_ID), read from /proc; '' when it cannot be read. */
function jobOf(pid: number): string {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return env.find((v) => v.startsWith('KEEL_JOB_ID='))?.slice('KEEL_JOB_ID='.length) ?? '';
  } catch {
    return '';
  }
}

/** SIGTERM (the worker lets trainers save and uploads drain), SIGKILL after 30 s. */
export async function stopWorker(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = new Promise((resolve) => worker.child.once('exit', resolve));
  worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** A trial hit by the kill: its job's progress just before it. */
export interface HitTrial {
  number: number;
  jobId: string;
  before: JobProgress;
}

/** What happened to the trials that were running when the worker was killed. */
export async function describeResumes(keel: KeelClient, hit: HitTrial[]): Promise<string[]> {
  const lines: string[] = [];
  for (const trial of hit) {
    const after = await keel.jobProgress(trial.jobId);
    const { step, newestCommittedStep: committed } = trial.before;
    const killedAt =
      step === null
        ? 'killed before its first checkpoint'
        : `killed with checkpoints staged up to step ${step}, committed up to ${committed === null ? 'none' : `step ${committed}`}`;
    const how =
      after.preemptions === 0
        ? 'ended without another attempt'
        : after.resumedFromStep !== null
          ? `resumed from step ${after.resumedFromStep}`
          : 'started over (no checkpoint was committed yet)';
    const ended = after.status === 'stopped' ? 'pruned' : after.status;
    lines.push(`trial ${trial.number}: ${killedAt}, ${how}, ${ended} at step ${after.step ?? 0}`);
  }
  return lines;
}

/**
 * Every checkpoint of the study's jobs, as keel counted them (acked: staged) and as the database
 * holds them, each committed one's files re-read from storage (a local folder here) and hashed.
 * Lost: acked with no row, a row neither committed, collected by retention nor failed with a
 * reason, or a committed one whose files are missing or differ.
 */
export async function checkpointLedger(keel: KeelClient, jobIds: string[]) {
  const ledger = { acked: 0, committed: 0, collected: 0, failed: 0, lost: 0 };
  for (const jobId of jobIds) {
    const progress = await keel.jobProgress(jobId);
    const rows = await keel.listCheckpoints(jobId);
    ledger.acked += progress.checkpoints.staged;
    ledger.lost += Math.max(0, progress.checkpoints.staged - rows.length);
    for (const row of rows) {
      if (row.status === 'gc') ledger.collected += 1;
      else if (row.status === 'failed' && row.failureReason) ledger.failed += 1;
      else if (row.status === 'committed' && committedIntact(row.uri, row.files)) ledger.committed += 1;
      else ledger.lost += 1;
    }
  }
  return ledger;
}

function committedIntact(uri: string, files: { path: string; sha256: string }[]): boolean {
  if (!uri.startsWith('file://')) return true; // the demo stores in a local folder; elsewhere, trust the commit
  return files.every((f) => {
    const file = path.join(fileURLToPath(uri), f.path);
    return fs.existsSync(file) && createHash('sha256').update(fs.readFileSync(file)).digest('hex') === f.sha256;
  });
}
