// One run of the resume-latency benchmark: a keel worker process (`keel worker`, as users run it)
// starts a job whose trainer (resume-trainer.ts) logs every step; at a chosen step the worker and
// its trainer are killed with SIGKILL (a lost machine), a new worker is started at once, and the
// run measures from the kill to the first step the resumed attempt takes, with where that time
// went (from the workflow's history and the trainer's log).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { connectClient } from '@keel/client';
import { type ManagedProcess, signalGroup, spawnManaged, stopManaged } from '@keel/client/processes';
import { progressQuery, trainingJob } from '@keel/workflows';
import { epochMs } from './step-work.ts';

const cli = path.resolve(import.meta.dirname, '../../client/src/cli.ts');
const trainerScript = path.join(import.meta.dirname, 'resume-trainer.ts');

type Client = Awaited<ReturnType<typeof connectClient>>;

export interface RunOptions {
  run: number;
  client: Client;
  temporal: { address: string; namespace: string };
  /** This run's folder: SQLite database, file:// storage, attempts, logs. */
  dir: string;
  every: number;
  stepMs: number;
  steps: number;
  killAfterStep: number;
  heartbeatSeconds: number;
}

/** Seconds after the kill at which each thing happened (null: not seen). */
export interface Timeline {
  newWorkerReady: number | null;
  attemptTimedOut: number | null;
  workflowTaskStarted: number | null;
  attemptScheduled: number | null;
  attemptPickedUp: number | null;
  trainerStarted: number | null;
  firstStep: number;
}

export interface RunResult {
  run: number;
  killAfterStep: number;
  stepAtKill: number;
  newestStagedAtKill: number;
  resumedFromStep: number;
  stepsLost: number;
  killToFirstStepSeconds: number;
  timeline: Timeline;
  /** Workflow tasks that timed out between the kill and the new attempt, by timeout type:
   *  SCHEDULE_TO_START is a task that waited on the dead worker's sticky queue. */
  workflowTaskTimeouts: string[];
  /** Activities other than runTrainer that needed a retry (e.g. in flight on the dead worker). */
  retriedActivities: string[];
  job: {
    status: string;
    attempts: number;
    step: number | null;
    preemptions: number;
    lastError: string | null;
    checkpoints: { staged: number; committed: number; failed: number };
    /** From the kill to the job's end (it waits for every upload, the dead worker's included). */
    endedAfterKillSeconds: number;
    /** From the resumed trainer's last step to the job's end. */
    endedAfterLastStepSeconds: number;
  };
}

interface StepLine {
  attempt: number;
  step?: number;
  at?: number;
  startedAt?: number;
  from?: number;
  pid?: number;
}

export async function measureRun(o: RunOptions): Promise<RunResult> {
  const name = `resume-${process.pid}-${o.run}`;
  const stepLog = path.join(o.dir, 'steps.jsonl');
  fs.writeFileSync(stepLog, '');
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: o.temporal.address,
    TEMPORAL_NAMESPACE: o.temporal.namespace,
    KEEL_TASK_QUEUE: name,
    KEEL_GPU_TASK_QUEUE: `${name}-gpu`,
    KEEL_HOST_ID: name, // both workers play the same host: the new one uploads what the dead one staged
    KEEL_HOME: o.dir,
    DATABASE_URL: `file:${path.join(o.dir, 'keel.db')}`,
    KEEL_STORAGE_URI: pathToFileURL(path.join(o.dir, 'checkpoints')).href,
  };
  const workers: ManagedProcess[] = [];
  const startWorker = (n: number) => {
    const worker = spawnManaged(`keel worker ${n}`, process.execPath, [cli, 'worker'], {
      logFile: path.join(o.dir, `worker-${n}.log`),
      env,
    });
    workers.push(worker);
    return worker;
  };
  try {
    const first = startWorker(1);
    await until(() => ready(first), 120_000, `worker 1 to start (log: ${first.logFile})`, 50);
    const handle = await o.client.workflow.start(trainingJob, {
      taskQueue: name,
      workflowId: name,
      args: [
        {
          command: [process.execPath, trainerScript],
          params: { steps: o.steps, every: o.every, stepMs: o.stepMs, stepLog },
          gpus: 0,
          gpuTaskQueue: `${name}-gpu`,
          timeouts: { heartbeatSeconds: o.heartbeatSeconds },
        },
      ],
    });
    await until(
      () => lines(stepLog).some((l) => l.attempt === 1 && (l.step ?? 0) >= o.killAfterStep),
      120_000,
      `step ${o.killAfterStep}`,
      2,
    );

    // A lost machine: the worker and its trainer (in its own process group) die at once.
    const trainerPid = lines(stepLog).find((l) => l.attempt === 1 && l.pid !== undefined)?.pid;
    const killedAt = epochMs();
    signalGroup(first.pid, 'SIGKILL');
    if (trainerPid) signalGroup(trainerPid, 'SIGKILL');
    const second = startWorker(2);
    await first.exited;
    let workerReadyAt: number | null = null;
    void until(() => ready(second), 120_000, 'worker 2 to start', 20).then(
      () => {
        workerReadyAt = epochMs();
      },
      () => {},
    );
    await until(
      () => lines(stepLog).some((l) => l.attempt > 1 && l.step !== undefined),
      180_000,
      'the first step after the resume',
      5,
    );

    const result = await handle.result();
    const endedAt = epochMs();
    const progress = await handle.query(progressQuery);
    const log = lines(stepLog);
    const stepAtKill = Math.max(...log.filter((l) => l.attempt === 1 && l.step !== undefined).map((l) => l.step ?? 0));
    const start2 = log.find((l) => l.attempt === 2 && l.startedAt !== undefined);
    const step2 = log.find((l) => l.attempt === 2 && l.step !== undefined);
    if (!start2 || !step2?.at) throw new Error(`no step of attempt 2 in ${stepLog}`);
    const resumedFromStep = progress.resumedFromStep ?? start2.from ?? 0;
    const events = historyTimes(await handle.fetchHistory(), killedAt);
    const since = (t: number | null | undefined) => (t == null ? null : round3((t - killedAt) / 1000));
    return {
      run: o.run,
      killAfterStep: o.killAfterStep,
      stepAtKill,
      newestStagedAtKill: Math.floor(stepAtKill / o.every) * o.every,
      resumedFromStep,
      stepsLost: stepAtKill - resumedFromStep,
      killToFirstStepSeconds: round3((step2.at - killedAt) / 1000),
      timeline: {
        newWorkerReady: since(workerReadyAt),
        attemptTimedOut: since(events.attemptTimedOut),
        workflowTaskStarted: since(events.workflowTaskStarted),
        attemptScheduled: since(events.attemptScheduled),
        attemptPickedUp: since(events.attemptPickedUp),
        trainerStarted: since(start2.startedAt),
        firstStep: round3((step2.at - killedAt) / 1000),
      },
      workflowTaskTimeouts: events.workflowTaskTimeouts,
      retriedActivities: events.retried.map((t) => `${t.activity}, done ${since(t.at)?.toFixed(1)} s after the kill`),
      job: {
        status: result.status,
        attempts: result.attempts,
        step: result.step,
        preemptions: progress.preemptions,
        lastError: progress.lastError,
        checkpoints: {
          staged: progress.checkpoints.staged,
          committed: progress.checkpoints.committed,
          failed: progress.checkpoints.failed,
        },
        endedAfterKillSeconds: round3((endedAt - killedAt) / 1000),
        endedAfterLastStepSeconds: round3((endedAt - Math.max(...log.map((l) => l.at ?? 0))) / 1000),
      },
    };
  } finally {
    for (const worker of workers) await stopManaged(worker, 'SIGTERM', 15_000);
  }
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

function ready(worker: ManagedProcess): boolean {
  if (worker.child.exitCode !== null) {
    throw new Error(`${worker.name} exited (code ${worker.child.exitCode}); log: ${worker.logFile}`);
  }
  return fs.readFileSync(worker.logFile, 'utf8').includes('keel worker: serving');
}

function lines(file: string): StepLine[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as StepLine);
}

async function until(check: () => boolean, timeoutMs: number, what: string, pollMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(pollMs);
  }
}

// temporal.api.enums.v1.TimeoutType, by number (the proto enum is not a dependency of bench).
const timeoutTypes = ['UNSPECIFIED', 'START_TO_CLOSE', 'SCHEDULE_TO_START', 'SCHEDULE_TO_CLOSE', 'HEARTBEAT'];

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;

/** Epoch ms of what happened between the kill and the second attempt's start. */
function historyTimes(history: History, killedAt: number) {
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => {
    if (!t) return null;
    const s = t.seconds as { toNumber?: () => number } | number | null | undefined;
    const seconds = typeof s === 'number' ? s : (s?.toNumber?.() ?? Number(s));
    return seconds * 1000 + (t.nanos ?? 0) / 1e6;
  };
  const trainers: string[] = [];
  let attemptTimedOut: number | null = null;
  let workflowTaskStarted: number | null = null;
  let attemptScheduled: number | null = null;
  let attemptPickedUp: number | null = null;
  const workflowTaskTimeouts: string[] = [];
  const activityNames = new Map<string, string>();
  const retried = new Map<string, { activity: string; at: number | null }>();
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) activityNames.set(id, scheduled.activityType?.name ?? '?');
    if (scheduled?.activityType?.name === 'runTrainer') {
      trainers.push(id);
      if (trainers.length === 2) attemptScheduled = ms(event.eventTime);
    }
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut && String(timedOut.scheduledEventId) === trainers[0]) attemptTimedOut = ms(event.eventTime);
    const started = event.activityTaskStartedEventAttributes;
    const retriedName = started ? activityNames.get(String(started.scheduledEventId)) : undefined;
    if (started && (started.attempt ?? 1) > 1 && retriedName !== 'runTrainer') {
      retried.set(String(event.eventId), {
        activity: `${retriedName} attempt ${started.attempt} (${started.lastFailure?.message ?? 'no failure recorded'})`,
        at: null,
      });
    }
    const completed = event.activityTaskCompletedEventAttributes;
    const retry = completed ? retried.get(String(completed.startedEventId)) : undefined;
    if (retry) retry.at = ms(event.eventTime);
    if (started && trainers.length === 2 && String(started.scheduledEventId) === trainers[1]) {
      attemptPickedUp = ms(event.eventTime);
    }
    if ((ms(event.eventTime) ?? 0) >= killedAt && attemptScheduled === null) {
      const wfTimeout = event.workflowTaskTimedOutEventAttributes;
      if (wfTimeout)
        workflowTaskTimeouts.push(timeoutTypes[wfTimeout.timeoutType ?? 0] ?? String(wfTimeout.timeoutType));
      if (event.workflowTaskStartedEventAttributes) workflowTaskStarted = ms(event.eventTime);
    }
  }
  return {
    attemptTimedOut,
    workflowTaskStarted,
    attemptScheduled,
    attemptPickedUp,
    workflowTaskTimeouts,
    retried: [...retried.values()],
  };
}
