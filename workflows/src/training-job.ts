// trainingJob: one durable training run. Attempts of the trainer run on the GPU queue; each
// checkpoint an attempt stages is recorded, uploaded on the host that holds it, verified and
// committed while training goes on. A crash, a hang, a dead worker or a preemption starts a new
// attempt (on any GPU worker) from the newest committed checkpoint, within the spec's budgets.
import type { KeelActivities } from '@keel/activities';
import {
  type AttemptOutcome,
  checkpointStagedSignalName,
  checkpointsSkippedSignalName,
  type RunTrainerResult,
  type SkippedCheckpoint,
  type StagedCheckpointEvent,
  type TrialEnded,
  trialEndedSignalName,
} from '@keel/activities/contract';
import { TimeoutType } from '@temporalio/common';
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { parseOrFail } from './parse-or-fail.ts';
import { KeelJob, KeelKind, KeelStatus } from './search-attributes.ts';
import { type JobSpec, type JobSpecInput, parseJobSpec } from './specs/index.ts';
import { gpuClassTaskQueue } from './task-queues.ts';

export type { JobSpec, JobSpecInput } from './specs/index.ts';

export type JobStatus = 'running' | 'completed' | 'failed' | 'stopped' | 'cancelled';

export interface JobProgress {
  jobId: string;
  status: JobStatus;
  attempt: number;
  /** Where attempts are launched: the GPU queue (with the job's GPU class appended, e.g.
   *  `keel-gpu-a100`), or the fallback queue once moved there. */
  taskQueue: string;
  /** Set while no worker takes the job's attempt, saying why: e.g. `waiting: no worker serves GPU
   *  class a100 (task queue keel-gpu-a100)`. Null once a worker has it. */
  waiting: string | null;
  step: number | null;
  metrics: Record<string, number>;
  checkpoints: { staged: number; uploading: number; committed: number; failed: number; collected: number };
  /** Checkpoints that will never be usable, and why. */
  failedCheckpoints: { step: number; reason: string }[];
  bestStep: number | null;
  newestCommittedStep: number | null;
  resumedFromStep: number | null;
  failures: number;
  preemptions: number;
  lastError: string | null;
}

export interface JobResult {
  status: JobStatus;
  attempts: number;
  step: number | null;
  finalMetrics: Record<string, number> | null;
  committedCheckpoints: number;
  bestStep: number | null;
}

export const stopSignal = defineSignal<[{ reason?: string }?]>('stop');
export const progressQuery = defineQuery<JobProgress>('progress');
export const checkpointStagedSignal = defineSignal<[StagedCheckpointEvent]>(checkpointStagedSignalName);
export const checkpointsSkippedSignal = defineSignal<[SkippedCheckpoint[]]>(checkpointsSkippedSignalName);

/** Uploads in flight at once per job on each host (each host uploads what it staged); more staged
 *  checkpoints wait their turn (training does not). */
const maxParallelUploads = 4;

/** How long an attempt may wait for a worker before the job says so (spec: timeouts.pickUpSeconds). */
const defaultPickUpSeconds = 60;
/** While no worker takes the job, it looks again after pickUpSeconds, doubling up to this: a
 *  worker that comes takes the queued probe at once, so the period only paces the progress
 *  updates (and keeps a job that waits for days from growing a long history). */
const maxRecheckSeconds = 30 * 60;

// Records, commits and retention: quick, retried until the database answers. Short, because one
// that was running on a worker that died is only retried once this has passed, and a commit
// stuck there would make a resume start from the checkpoint before it. The main queue's worker
// heartbeats for them (workers/src/heartbeat-while-running.ts): a task handed to a worker that
// went silent is retried after 10 s.
const control = proxyActivities<KeelActivities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// Who polls a queue (DescribeTaskQueue), to word a job's wait for a worker: quick; a failure only
// makes the words vaguer.
const queueInfo = proxyActivities<KeelActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 2 },
});

// The job's own row, at its start and end: database-only work, run inside the workflow's task
// (no task-queue round trip), which matters for a study's many short trials.
const jobRecord = proxyLocalActivities<KeelActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export async function trainingJob(input: JobSpecInput): Promise<JobResult> {
  const spec = parseOrFail(parseJobSpec, input);
  const jobId = workflowInfo().workflowId;
  const rootScope = CancellationScope.current();
  const progress: JobProgress = {
    jobId,
    status: 'running',
    attempt: 0,
    taskQueue: gpuClassTaskQueue(spec.gpuTaskQueue, spec.gpuClass),
    waiting: null,
    step: null,
    metrics: {},
    checkpoints: { staged: 0, uploading: 0, committed: 0, failed: 0, collected: 0 },
    failedCheckpoints: [],
    bestStep: null,
    newestCommittedStep: null,
    resumedFromStep: null,
    failures: 0,
    preemptions: 0,
    lastError: null,
  };
  upsertSearchAttributes([
    { key: KeelKind, value: 'job' },
    { key: KeelJob, value: jobId },
    { key: KeelStatus, value: 'running' },
  ]);

  const checkpoints = new CheckpointPipeline(jobId, spec, progress);
  setHandler(progressQuery, () => progress);
  setHandler(checkpointStagedSignal, (event) => checkpoints.staged(event));
  setHandler(checkpointsSkippedSignal, (skipped) => checkpoints.skippedAtRestore(skipped));
  let stopRequested = false;
  let stopReason: string | null = null;
  const attemptScope = new CancellationScope();
  setHandler(stopSignal, (request) => {
    stopRequested = true;
    stopReason ??= request?.reason ?? null;
    attemptScope.cancel();
  });

  const { storageUri } = await jobRecord.startJob({
    jobId,
    spec: spec as never,
    storage: spec.storage,
    ...(spec.trial ? { trial: spec.trial } : {}),
  });
  checkpoints.storageUri = storageUri;

  let final: { status: JobStatus; error?: string; finalMetrics?: Record<string, number> } | undefined;
  let cancelled: unknown;
  try {
    final = await attemptScope.run(() =>
      runAttempts(jobId, storageUri, spec, progress, checkpoints, () => stopRequested),
    );
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // The workflow itself was cancelled (e.g. `temporal workflow cancel`): the trainer was asked
    // to stop and save; what it staged is still uploaded below, then the job is marked cancelled.
    cancelled = err;
    final = { status: stopRequested ? 'stopped' : 'cancelled' };
  }

  // Cleanup runs even when the workflow is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    await checkpoints.finish();
    progress.status = final.status;
    progress.waiting = null; // a job stopped while it waited for a worker waits no more
    render(progress);
    upsertSearchAttributes([{ key: KeelStatus, value: final.status }]);
    // The job's row and the study's news side by side: a study waits on the second to launch the next trial.
    await Promise.all([
      jobRecord.finishJob({ jobId, status: final.status, error: final.error, finalMetrics: final.finalMetrics }),
      spec.trial &&
        reportEnd(spec.trial.studyId, {
          trialNumber: spec.trial.trialNumber,
          jobId,
          status: final.status,
          finalMetrics: final.finalMetrics ?? null,
          metrics: progress.metrics,
          step: progress.step,
          error: final.error ?? null,
          stopReason,
        }),
    ]);
  });
  // Cancelled through Temporal (not by the stop signal): end as Canceled, as users of
  // `temporal workflow cancel` expect, now that everything is recorded.
  if (!stopRequested && (cancelled || rootScope.consideredCancelled)) {
    throw cancelled ?? new CancelledFailure('the job was cancelled');
  }
  if (final.status === 'failed') throw ApplicationFailure.nonRetryable(final.error ?? 'failed', 'TrainingJobFailed');
  return {
    status: final.status,
    attempts: progress.attempt,
    step: progress.step,
    finalMetrics: final.finalMetrics ?? null,
    committedCheckpoints: progress.checkpoints.committed,
    bestStep: progress.bestStep,
  };
}

/** Tells the study how its trial ended. A study that has ended no longer listens: that is fine. */
async function reportEnd(studyId: string, ended: TrialEnded): Promise<void> {
  try {
    await getExternalWorkflowHandle(studyId).signal(trialEndedSignalName, ended);
  } catch (err) {
    log.warn("the study did not take the trial's end (it has ended?)", { studyId, error: String(err) });
  }
}

async function runAttempts(
  jobId: string,
  storageUri: string,
  spec: JobSpec,
  progress: JobProgress,
  checkpoints: CheckpointPipeline,
  stopRequested: () => boolean,
): Promise<{ status: JobStatus; error?: string; finalMetrics?: Record<string, number> }> {
  const launcher = (taskQueue: string, pickUpWithin: number) =>
    proxyActivities<KeelActivities>({
      taskQueue,
      // Long: an attempt runs as long as training does; liveness comes from heartbeats.
      startToCloseTimeout: '3650 days',
      // Bounded: an attempt no worker takes must not wait silently (WorkerWait below).
      scheduleToStartTimeout: `${pickUpWithin} seconds`,
      heartbeatTimeout: `${spec.timeouts.heartbeatSeconds} seconds`,
      // The workflow decides about new attempts itself (failures and preemptions have budgets).
      retry: { maximumAttempts: 1 },
      // On stop, wait for the trainer's final checkpoint and the attempt's report.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
  const waiter = new WorkerWait(spec, progress);
  for (;;) {
    progress.attempt += 1;
    render(progress);
    let result: RunTrainerResult | undefined;
    let outcome: AttemptOutcome;
    let problem = '';
    try {
      const gpu = launcher(waiter.queue, waiter.nextWait(waiter.pickUpSeconds));
      result = await gpu.runTrainer({ jobId, attempt: progress.attempt, storageUri, trainer: trainerSpec(spec) });
      checkpoints.skippedAtRestore(result.skippedCheckpoints); // those the signal told are counted once
      outcome = result.outcome;
      progress.step = result.step ?? progress.step;
      progress.metrics = { ...progress.metrics, ...result.metrics };
      progress.resumedFromStep = result.resumedFrom?.step ?? null;
      problem = describeAttempt(result, spec);
    } catch (err) {
      if (isCancellation(err) && stopRequested()) return { status: 'stopped' };
      if (isCancellation(err)) throw err;
      const timeout = timeoutOf(err);
      if (timeout?.timeoutType === TimeoutType.SCHEDULE_TO_START) {
        progress.attempt -= 1; // nothing ran
        waiter.waited(waiter.lastWait);
        const gaveUp = await waiter.untilServed();
        if (gaveUp) return { status: 'failed', error: gaveUp };
        continue;
      }
      if (timeout) {
        outcome = 'preempted'; // the worker went silent: it died, or its host was taken away
        checkpoints.attemptWentSilent(progress.attempt);
        problem = `attempt ${progress.attempt}: the worker stopped heartbeating (${timeout.timeoutType ?? 'no'} timeout)`;
      } else if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) {
        return { status: 'failed', error: err.cause.message };
      } else {
        outcome = 'crashed';
        problem = `attempt ${progress.attempt}: ${err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)}`;
      }
    }
    waiter.served();
    if (outcome === 'completed') return { status: 'completed', finalMetrics: result?.finalMetrics ?? progress.metrics };
    if (outcome === 'stopped') return { status: stopRequested() ? 'stopped' : 'cancelled' };
    progress.lastError = problem;
    if (outcome === 'preempted') {
      progress.preemptions += 1;
      if (progress.preemptions > spec.failures.maxPreemptions) {
        return {
          status: 'failed',
          error: `preempted ${progress.preemptions} times (maxPreemptions ${spec.failures.maxPreemptions}); last: ${problem}`,
        };
      }
    } else {
      progress.failures += 1;
      if (progress.failures > spec.failures.maxFailures) {
        return {
          status: 'failed',
          error: `failed ${progress.failures} times (maxFailures ${spec.failures.maxFailures}); last: ${problem}`,
        };
      }
      await sleep(`${Math.min(60, 2 ** (progress.failures - 1))} seconds`); // back off before retrying a crash
    }
  }
}

/**
 * An attempt that no worker takes (its schedule-to-start timeout passed): the job says so in its
 * progress (`waiting`), worded from Temporal's list of the queue's pollers (no worker at all: a
 * GPU class no host has), and leaves a probe (describeWorker) queued there, which a worker that
 * comes takes at once; then the attempt is launched again. With a fallback queue it moves there
 * after fallbackAfterSeconds; with timeouts.waitForWorkerSeconds it gives up after that long.
 * Deterministic: the time waited is the sum of the timeouts that passed.
 */
class WorkerWait {
  /** Where attempts are launched now. */
  queue: string;
  readonly pickUpSeconds: number;
  /** The schedule-to-start timeout of the last launch or probe. */
  lastWait = 0;
  /** Seconds the current attempt has waited for a worker. */
  #unserved = 0;
  #moved = false;
  readonly #spec: JobSpec;
  readonly #progress: JobProgress;

  constructor(spec: JobSpec, progress: JobProgress) {
    this.#spec = spec;
    this.#progress = progress;
    this.queue = progress.taskQueue;
    this.pickUpSeconds = spec.timeouts.pickUpSeconds ?? defaultPickUpSeconds;
  }

  /** The schedule-to-start timeout for the next launch or probe: `want`, cut at the next bound. */
  nextWait(want: number): number {
    const bounds = [want];
    const spec = this.#spec;
    if (spec.fallbackTaskQueue && !this.#moved) bounds.push(spec.fallbackAfterSeconds - this.#unserved);
    const limit = spec.timeouts.waitForWorkerSeconds;
    if (limit !== undefined) bounds.push(limit - this.#unserved);
    this.lastWait = Math.max(1, Math.min(...bounds));
    return this.lastWait;
  }

  waited(seconds: number): void {
    this.#unserved += seconds;
  }

  /** A worker took an attempt: the next one that waits counts from zero. */
  served(): void {
    this.#unserved = 0;
    this.#setWaiting(null);
  }

  /** Returns once a worker answers on the queue (or the job moved to its fallback queue); or why it gave up. */
  async untilServed(): Promise<string | undefined> {
    const spec = this.#spec;
    let recheck = this.pickUpSeconds;
    for (;;) {
      if (spec.fallbackTaskQueue && !this.#moved && this.#unserved >= spec.fallbackAfterSeconds) {
        this.#moved = true;
        this.#progress.lastError = `no worker on ${this.queue} took the job within ${spec.fallbackAfterSeconds}s; moved to ${spec.fallbackTaskQueue}`;
        this.queue = spec.fallbackTaskQueue;
        this.#progress.taskQueue = this.queue;
        this.#setWaiting(null);
        return undefined;
      }
      const why = await this.#describe();
      const limit = spec.timeouts.waitForWorkerSeconds;
      if (limit !== undefined && this.#unserved >= limit) {
        this.#setWaiting(null);
        return `${why.replace(/^waiting: /, '')}; gave up after ${limit}s (timeouts.waitForWorkerSeconds)`;
      }
      this.#setWaiting(why);
      const within = this.nextWait(recheck);
      if ((await probeQueue(this.queue, within)) !== 'untaken') {
        this.#setWaiting(null);
        return undefined; // a worker took the probe: launch again
      }
      this.#unserved += within;
      recheck = Math.min(recheck * 2, maxRecheckSeconds);
    }
  }

  /** Why the attempt waits, in words, from who polls the queue. */
  async #describe(): Promise<string> {
    const { gpuClass, gpuTaskQueue } = this.#spec;
    const what =
      gpuClass && this.queue === gpuClassTaskQueue(gpuTaskQueue, gpuClass)
        ? `GPU class ${gpuClass} (task queue ${this.queue})`
        : `task queue ${this.queue}`;
    try {
      const { pollers } = await queueInfo.describeTaskQueue({ taskQueue: this.queue });
      if (pollers.length === 0) return `waiting: no worker serves ${what}`;
      return `waiting: ${pollers.length} worker(s) polled ${what} in the last minutes, but none has taken the job (busy, or gone)`;
    } catch (err) {
      if (isCancellation(err)) throw err;
      return `waiting: no worker has taken the job from ${what}`;
    }
  }

  #setWaiting(waiting: string | null): void {
    if (this.#progress.waiting === waiting) return;
    this.#progress.waiting = waiting;
    render(this.#progress);
  }
}

/**
 * Staged checkpoint -> recorded (pending) -> uploaded on its host -> verified and committed ->
 * retention. Runs beside the attempts, bounded to maxParallelUploads per host, so training never
 * waits. Checkpoints staged on a host that was lost are marked failed, naming the host.
 * Under `on-end` and `best-and-last`, checkpoints the policy does not keep are marked failed with
 * the policy as the reason, so every acked checkpoint is accounted for.
 */
class CheckpointPipeline {
  storageUri = '';
  #inFlight = new Set<Promise<void>>();
  /** Staged checkpoints per host queue whose upload (or skip) has not ended. */
  readonly #unsettledOn = new Map<string, number>();
  /** The host queue of each attempt that staged a checkpoint. */
  readonly #hostOfAttempt = new Map<number, string>();
  /** Hosts whose attempt stopped heartbeating (and no later attempt staged there): the attempt. */
  readonly #suspects = new Map<string, number>();
  /** Hosts found lost, with the reason their checkpoints not uploaded are marked failed. */
  readonly #lost = new Map<string, string>();
  /** The upload calls running on each host (at most maxParallelUploads), to cancel if it is found lost. */
  readonly #uploadsOn = new Map<string, Set<CancellationScope>>();
  #commits: Promise<void> = Promise.resolve();
  /** Staged checkpoints waiting for the policy's decision (best-and-last, on-end). */
  #held: { event: StagedCheckpointEvent; record: Promise<Recorded> }[] = [];
  #bestValue: number | undefined;
  readonly #skippedIds = new Set<number>();
  readonly #jobId: string;
  readonly #spec: JobSpec;
  readonly #progress: JobProgress;

  constructor(jobId: string, spec: JobSpec, progress: JobProgress) {
    this.#jobId = jobId;
    this.#spec = spec;
    this.#progress = progress;
  }

  staged(event: StagedCheckpointEvent): void {
    this.#progress.checkpoints.staged += 1;
    this.#hostOfAttempt.set(event.attempt, event.hostQueue);
    // A later attempt staging on a suspect host shows it is back.
    if ((this.#suspects.get(event.hostQueue) ?? Number.POSITIVE_INFINITY) < event.attempt) {
      this.#suspects.delete(event.hostQueue);
    }
    bump(this.#unsettledOn, event.hostQueue, 1);
    this.#progress.step = Math.max(this.#progress.step ?? 0, event.step);
    this.#progress.metrics = { ...this.#progress.metrics, ...event.metrics };
    // Not cancellable: a job being cancelled still records, uploads and commits what was acked.
    const record = CancellationScope.nonCancellable(() =>
      control.recordStagedCheckpoint({ jobId: this.#jobId, storageUri: this.storageUri, staged: event }),
    );
    const policy = this.#spec.checkpoints.upload;
    if (policy === 'best-and-last') {
      // Whatever was held is neither the newest any more nor the best (the best went at once).
      this.#skipHeld('a newer checkpoint was staged (upload: best-and-last)');
      if (this.#improves(event)) {
        this.#track(() => this.#upload(event, record));
        return;
      }
    }
    if (policy === 'every') this.#track(() => this.#upload(event, record));
    else this.#held.push({ event, record });
  }

  /**
   * Committed checkpoints that a restore found corrupt or missing and marked failed: they move
   * from committed to failed in the counts, with the reason in failedCheckpoints. Told by signal
   * before the trainer starts and again in the attempt's result; each is counted once.
   */
  skippedAtRestore(skipped: SkippedCheckpoint[]): void {
    for (const s of skipped) {
      if (this.#skippedIds.has(s.checkpointId)) continue;
      this.#skippedIds.add(s.checkpointId);
      // It was counted committed when its commit returned; never below zero all the same.
      this.#progress.checkpoints.committed = Math.max(0, this.#progress.checkpoints.committed - 1);
      this.#progress.checkpoints.failed += 1;
      this.#progress.failedCheckpoints.push({ step: s.step, reason: s.reason });
      this.#progress.lastError = `checkpoint at step ${s.step} could not be restored and was marked failed: ${s.reason}`;
    }
    if (skipped.length > 0) render(this.#progress);
  }

  /**
   * An attempt stopped heartbeating: its host may be gone, and with it the staged checkpoints it
   * has not uploaded (nobody else holds their files). Its uploads wait on its queue meanwhile (a
   * restarted worker with the same disk takes them); once the attempts are over, finish() asks
   * whether anyone is still there.
   */
  attemptWentSilent(attempt: number): void {
    const hostQueue = this.#hostOfAttempt.get(attempt);
    if (hostQueue) this.#suspects.set(hostQueue, attempt);
  }

  /** Once the attempts are over: upload what the policy keeps, then wait for every upload. */
  async finish(): Promise<void> {
    const policy = this.#spec.checkpoints.upload;
    if (policy !== 'every' && this.#held.length > 0) {
      const last = this.#held[this.#held.length - 1];
      const keep = new Set([last, ...(policy === 'on-end' ? [this.#bestHeld()] : [])]);
      const dropped = this.#held.filter((h) => !keep.has(h));
      this.#held = [];
      for (const h of dropped) this.#track(() => this.#skip(h, `not the best or the last (upload: ${policy})`));
      for (const h of keep) if (h) this.#track(() => this.#upload(h.event, h.record));
    }
    for (const [hostQueue, attempt] of this.#suspects) {
      if ((this.#unsettledOn.get(hostQueue) ?? 0) > 0) this.#track(() => this.#lookFor(hostQueue, attempt));
    }
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /**
   * Whether a suspect host still holds its checkpoints: a worker on its queue must answer within
   * heartbeatSeconds. If none does, the host is lost: its uploads are cancelled and their
   * checkpoints marked failed, naming it, instead of the job (and its study's slot) waiting out
   * the uploads' 10-minute schedule-to-start timeout for files nobody else can upload.
   */
  async #lookFor(hostQueue: string, attempt: number): Promise<void> {
    const answer = await probeQueue(hostQueue, this.#spec.timeouts.heartbeatSeconds);
    if (answer === 'answered') return;
    const how =
      answer === 'untaken' ? 'no worker polls its queue' : 'a worker took a task from its queue and never answered';
    this.#lost.set(
      hostQueue,
      `host ${hostQueue} was lost before uploading it (attempt ${attempt} stopped heartbeating; ${how}); ` +
        'its staged files were only there',
    );
    for (const upload of this.#uploadsOn.get(hostQueue) ?? []) upload.cancel();
  }

  #track(work: () => Promise<void>): void {
    const tracked = CancellationScope.nonCancellable(work).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async #upload(event: StagedCheckpointEvent, record: Promise<Recorded>): Promise<void> {
    try {
      await this.#uploadAndCommit(event, record);
    } finally {
      bump(this.#unsettledOn, event.hostQueue, -1);
    }
  }

  async #uploadAndCommit(event: StagedCheckpointEvent, record: Promise<Recorded>): Promise<void> {
    const { checkpointId, uri } = await record;
    const hostQueue = event.hostQueue;
    const calls = this.#uploadsOn.get(hostQueue) ?? new Set<CancellationScope>();
    this.#uploadsOn.set(hostQueue, calls);
    await condition(() => calls.size < maxParallelUploads || this.#lost.has(hostQueue));
    const lost = this.#lost.get(hostQueue);
    if (lost) {
      await this.#fail(checkpointId, event.step, lost);
      return;
    }
    const call = new CancellationScope();
    calls.add(call);
    this.#progress.checkpoints.uploading += 1;
    const host = proxyActivities<KeelActivities>({
      taskQueue: hostQueue,
      // If the host that holds the files is gone, nobody else can upload them.
      scheduleToStartTimeout: '10 minutes',
      startToCloseTimeout: '6 hours',
      // Uploads heartbeat with their progress (at most every 2 s); silence means a dead worker.
      heartbeatTimeout: '30 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
    });
    try {
      await call.run(() => host.uploadCheckpoint({ checkpointId, storageUri: this.storageUri, uri, staged: event }));
    } catch (err) {
      await this.#fail(checkpointId, event.step, this.#lost.get(hostQueue) ?? `upload failed: ${failureMessage(err)}`);
      return;
    } finally {
      calls.delete(call);
      this.#progress.checkpoints.uploading -= 1;
    }
    // Commits run one at a time: each applies retention to the set the previous one left, so two
    // never collect the same checkpoint or disagree about the best.
    const previous = this.#commits;
    let done = () => {};
    this.#commits = new Promise<void>((resolve) => {
      done = resolve;
    });
    await previous;
    try {
      const spec = this.#spec.checkpoints;
      const retention = { keepLast: spec.keepLast, keepBest: spec.keepBest, objective: spec.objective };
      const result = await control.commitCheckpoint({
        checkpointId,
        jobId: this.#jobId,
        storageUri: this.storageUri,
        retention,
      });
      this.#progress.checkpoints.committed += 1;
      this.#progress.checkpoints.collected += result.collected.length;
      this.#progress.bestStep = result.bestStep;
      this.#progress.newestCommittedStep = Math.max(this.#progress.newestCommittedStep ?? 0, event.step);
    } catch (err) {
      this.#progress.checkpoints.failed += 1;
      this.#progress.failedCheckpoints.push({ step: event.step, reason: failureMessage(err) });
    } finally {
      done();
    }
    render(this.#progress);
  }

  async #skip(held: { event: StagedCheckpointEvent; record: Promise<Recorded> }, reason: string): Promise<void> {
    const hostQueue = held.event.hostQueue;
    try {
      const { checkpointId } = await held.record;
      await this.#fail(checkpointId, held.event.step, reason);
      if (this.#lost.has(hostQueue)) return; // its disk went with it
      const host = proxyActivities<KeelActivities>({
        taskQueue: hostQueue,
        scheduleToStartTimeout: '10 minutes',
        startToCloseTimeout: '1 minute',
      });
      await host.discardStaged({ dir: held.event.dir }).catch(() => {}); // the host may be gone; its disk with it
    } finally {
      bump(this.#unsettledOn, hostQueue, -1);
    }
  }

  #skipHeld(reason: string): void {
    for (const h of this.#held) this.#track(() => this.#skip(h, reason));
    this.#held = [];
  }

  async #fail(checkpointId: number, step: number, reason: string): Promise<void> {
    this.#progress.checkpoints.failed += 1;
    this.#progress.failedCheckpoints.push({ step, reason });
    await control.markCheckpointFailed({ checkpointId, reason, storageUri: this.storageUri });
  }

  /** Whether the event beats the best seen so far on the objective (and becomes the best). */
  #improves(event: StagedCheckpointEvent): boolean {
    const objective = this.#spec.checkpoints.objective;
    const value = objective ? event.metrics[objective.metric] : undefined;
    if (!objective || value === undefined) return false;
    const bestValue = this.#bestValue;
    const better =
      bestValue === undefined || (objective.direction === 'minimize' ? value < bestValue : value > bestValue);
    if (better) this.#bestValue = value;
    return better;
  }

  #bestHeld() {
    const objective = this.#spec.checkpoints.objective;
    if (!objective) return undefined;
    const sign = objective.direction === 'minimize' ? 1 : -1;
    const scored = this.#held.filter((h) => h.event.metrics[objective.metric] !== undefined);
    scored.sort((a, b) => sign * ((a.event.metrics[objective.metric] ?? 0) - (b.event.metrics[objective.metric] ?? 0)));
    return scored[0];
  }
}

type Recorded = { checkpointId: number; uri: string };

function bump(counts: Map<string, number>, key: string, change: number): void {
  counts.set(key, (counts.get(key) ?? 0) + change);
}

/**
 * Leaves a quick task (describeWorker) on `taskQueue` for `within` seconds. 'answered': a worker
 * ran it; 'untaken': no worker took it; 'silent': one took it and never answered (a worker cut
 * off after its poll reached the server: the server still hands tasks to that poll).
 */
async function probeQueue(taskQueue: string, within: number): Promise<'answered' | 'untaken' | 'silent'> {
  const probe = proxyActivities<KeelActivities>({
    taskQueue,
    scheduleToStartTimeout: `${within} seconds`,
    startToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 1 },
  });
  try {
    await probe.describeWorker();
    return 'answered';
  } catch (err) {
    if (isCancellation(err)) throw err;
    return timeoutOf(err)?.timeoutType === TimeoutType.SCHEDULE_TO_START ? 'untaken' : 'silent';
  }
}

function timeoutOf(err: unknown): TimeoutFailure | undefined {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure ? err.cause : undefined;
}

function trainerSpec(spec: JobSpec) {
  return {
    command: spec.command,
    env: spec.env,
    ...(spec.cwd ? { cwd: spec.cwd } : {}),
    params: spec.params,
    gpus: spec.gpus,
    timeouts: spec.timeouts,
    ...(spec.trial ? { trial: spec.trial } : {}),
  };
}

function describeAttempt(result: RunTrainerResult, spec: JobSpec): string {
  const tail = result.outputTail.trim().split('\n').slice(-10).join('\n');
  if (result.outcome === 'crashed') {
    const how = result.exitCode !== null ? `exit code ${result.exitCode}` : `signal ${result.signal}`;
    return `the trainer crashed (${how}); its output ends:\n${tail}`;
  }
  if (result.outcome === 'hung') return `the trainer was silent for ${spec.timeouts.progressSeconds}s and was killed`;
  if (result.outcome === 'preempted') return 'the worker was told to stop (preemption); the trainer saved and exited';
  return '';
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure) return err.cause?.message ?? err.message;
  return err instanceof Error ? err.message : String(err);
}

/** What the Temporal UI shows under "current details". */
function render(p: JobProgress): void {
  const c = p.checkpoints;
  setCurrentDetails(
    [
      `**${p.status}** · attempt ${p.attempt} · step ${p.step ?? '-'}`,
      ...(p.waiting ? ['', p.waiting] : []),
      '',
      '| checkpoints | staged | uploading | committed | failed | collected |',
      '|---|---|---|---|---|---|',
      `| | ${c.staged} | ${c.uploading} | ${c.committed} | ${c.failed} | ${c.collected} |`,
      '',
      `newest committed step: ${p.newestCommittedStep ?? '-'} · failures ${p.failures} · preemptions ${p.preemptions}`,
      ...(p.lastError ? ['', `last problem: ${p.lastError.split('\n')[0]}`] : []),
    ].join('\n'),
  );
}
