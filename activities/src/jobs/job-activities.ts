// The activities of a training job. runTrainer runs on the GPU queue; uploads run on the queue of
// the host that staged the files; records, commits and retention run on the main queue.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type Checkpoint,
  createJob,
  getCheckpoint,
  listCheckpoints,
  markCheckpoint,
  newestCommittedCheckpoint,
  recordCheckpoint,
  recordIntermediateValues,
  setBestCheckpoint,
  updateJob,
} from '@keel/db';
import type { JobStatus, JsonObject, Metrics } from '@keel/db/states';
import { ChecksumMismatchError, ChecksumMissingError, ObjectNotFoundError, sha256File } from '@keel/storage';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { launchTrainer, type RunningTrainer } from '../trainer/launch.ts';
import { removeInterruptedStaging } from '../trainer/staging.ts';
import {
  type CommitResult,
  checkpointStagedSignalName,
  checkpointsSkippedSignalName,
  type RecordStagedInput,
  type RetentionPolicy,
  type RunTrainerInput,
  type RunTrainerResult,
  type StagedCheckpointEvent,
  type TrialLink,
  trialReportSignalName,
  type UploadCheckpointInput,
} from './contract.ts';
import { type ActivityDeps, noJobMetrics } from './deps.ts';
import { checkpointPrefix, fileKey, manifestSha256 } from './keys.ts';
import { TrialReporter } from './trial-reporter.ts';

/** How long an attempt waits for storage it cannot reach before it restores (then it fails). */
const restoreWaitMs = 10 * 60_000;

export function createJobActivities(deps: ActivityDeps) {
  const { storages } = deps;
  const counts = deps.metrics ?? noJobMetrics();

  /** Batches a trial's objective values into the database and to its study. */
  const trialReporter = (link: TrialLink, jobId: string, context: Context) =>
    new TrialReporter({
      link,
      jobId,
      record: (points) =>
        recordIntermediateValues(
          deps.db,
          points.map(([step, value]) => ({ studyId: link.studyId, trialNumber: link.trialNumber, step, value })),
        ),
      send: (report) => context.client.workflow.getHandle(link.studyId).signal(trialReportSignalName, report),
      // A study that prunes judges each value as it comes; one that does not only shows the
      // trials' progress, and every signal costs it a workflow task.
      intervalMs: link.prune ? 1000 : 10_000,
      sendLastBatch: link.prune,
      onError: (err) => context.log.warn('could not report trial values (retried with the next batch)', { err }),
    });

  return {
    /** Records the job and resolves where its checkpoints go (once, so every attempt agrees). */
    async startJob(input: { jobId: string; spec: Record<string, unknown>; storage?: string; trial?: TrialLink }) {
      const storageUri = input.storage ?? deps.defaultStorageUri;
      if (storageUri.startsWith('file://')) await fs.mkdir(new URL(storageUri), { recursive: true });
      storages.get(storageUri); // a bad URI fails here, by name, before any training
      const trial = input.trial ? { studyId: input.trial.studyId, trialNumber: input.trial.trialNumber } : {};
      await createJob(deps.db, { id: input.jobId, spec: input.spec as JsonObject, ...trial });
      await updateJob(deps.db, input.jobId, { status: 'running' });
      return { storageUri };
    },

    async finishJob(input: { jobId: string; status: JobStatus; error?: string; finalMetrics?: Metrics }) {
      await updateJob(deps.db, input.jobId, {
        status: input.status,
        ...(input.error !== undefined ? { error: input.error } : {}),
        ...(input.finalMetrics ? { finalMetrics: input.finalMetrics } : {}),
      });
    },

    /**
     * One attempt: waits for GPUs, restores the newest committed checkpoint (verified; a corrupt
     * or missing one is marked failed and the one before it is tried), runs the trainer, and
     * signals the workflow for each checkpoint it stages. Heartbeats carry the step; a cancel
     * (the job stopped) or a worker shutdown (preemption) stops the trainer gracefully.
     */
    async runTrainer(input: RunTrainerInput): Promise<RunTrainerResult> {
      const context = Context.current();
      const { jobId, attempt, trainer } = input;
      const attemptDir = path.join(deps.workDir, encodeURIComponent(jobId), `attempt-${attempt}`);
      await fs.rm(attemptDir, { recursive: true, force: true }); // a retried attempt starts clean
      await fs.mkdir(attemptDir, { recursive: true });
      for (const left of await removeInterruptedStaging(path.dirname(attemptDir))) {
        context.log.info('removed a staging left by a killed worker', { path: left });
      }
      const heartbeat = (details: object) => context.heartbeat(details);
      const waiting = setInterval(() => heartbeat({ waitingForGpus: trainer.gpus }), 1000);
      let lease: Awaited<ReturnType<typeof deps.gpuSlots.acquire>>;
      try {
        lease = await deps.gpuSlots.acquire(trainer.gpus, context.cancellationSignal);
      } catch (err) {
        if (err instanceof Error && err.name === 'GpuCapacityError') {
          throw ApplicationFailure.nonRetryable(err.message, 'GpuCapacityError');
        }
        throw err;
      } finally {
        clearInterval(waiting);
      }
      let running: RunningTrainer | undefined;
      let reporter: TrialReporter | undefined;
      try {
        const restored = await restoreWhenReachable(context, jobId, input.storageUri, path.join(attemptDir, 'resume'));
        if (restored.from) counts.resumes.inc();
        const workflowId = context.info.workflowExecution?.workflowId;
        if (!workflowId) throw ApplicationFailure.nonRetryable('runTrainer runs only inside a trainingJob workflow');
        const handle = context.client.workflow.getHandle(workflowId);
        // The job's progress shows the checkpoints given up on now, while the attempt runs (the
        // result repeats them; the workflow counts each once).
        if (restored.skipped.length > 0) await handle.signal(checkpointsSkippedSignalName, restored.skipped);
        reporter = trainer.trial && trialReporter(trainer.trial, jobId, context);
        running = await launchTrainer({
          command: trainer.command,
          env: trainer.env,
          cwd: trainer.cwd,
          params: trainer.params,
          jobId,
          attempt,
          attemptDir,
          resume: restored.resume,
          gpus: lease.devices,
          progressTimeoutMs: trainer.timeouts.progressSeconds * 1000,
          stopGraceMs: trainer.timeouts.stopGraceSeconds * 1000,
          // The workflow hears of the checkpoint before the trainer is acked: an acked
          // checkpoint is always on record, even if this worker dies the next moment.
          onStaged: async (staged, metrics) => {
            const event: StagedCheckpointEvent = { attempt, hostQueue: deps.hostQueue, metrics, ...staged };
            await handle.signal(checkpointStagedSignalName, event);
            counts.checkpointsStaged.inc();
            counts.pendingUploads.add(staged.dir);
          },
          onMetrics: reporter ? (step, metrics) => reporter?.add(step, metrics) : undefined,
        });
        const trainerProcess = running;
        deps.trainers.add(trainerProcess);
        const beat = setInterval(
          // Live progress lives here, not in the workflow's history: clients read it from the
          // pending activity (describe), so a week-long job's history does not grow with it.
          () =>
            heartbeat({
              step: trainerProcess.session.step,
              metrics: trainerProcess.session.metrics,
              staged: trainerProcess.session.staged.length,
              // What keel refused from the trainer (bad lines, refused checkpoints), by name.
              problems: trainerProcess.session.problems,
              lastProblem: trainerProcess.session.lastProblem ?? null,
            }),
          1000, // throttled by the worker (maxHeartbeatThrottleInterval); cheap when unchanged
        );
        const onCancel = () => trainerProcess.stop(isWorkerShutdown(context) ? 'preempt' : 'cancel');
        context.cancellationSignal.addEventListener('abort', onCancel, { once: true });
        let result: Awaited<RunningTrainer['result']>;
        try {
          result = await trainerProcess.result;
        } finally {
          clearInterval(beat);
          context.cancellationSignal.removeEventListener('abort', onCancel);
          deps.trainers.delete(trainerProcess);
          await reporter?.close(); // the study hears every value before it hears how the trial ended
        }
        const outcome = result.outcome === 'stopped' && result.stopReason === 'preempt' ? 'preempted' : result.outcome;
        return {
          outcome,
          exitCode: result.exitCode,
          signal: result.signal,
          step: result.session.step ?? null,
          metrics: result.session.metrics,
          finalMetrics: result.session.finalMetrics ?? null,
          outputTail: result.outputTail.slice(-4000),
          resumedFrom: restored.from,
          skippedCheckpoints: restored.skipped,
          host: os.hostname(),
        };
      } finally {
        lease.release();
      }
    },

    /** Records a staged checkpoint as pending, at the URI its upload will write. */
    async recordStagedCheckpoint(input: RecordStagedInput): Promise<{ checkpointId: number; uri: string }> {
      const { staged } = input;
      const uri = `${input.storageUri}/${checkpointPrefix(input.jobId, staged.attempt, staged.step)}`;
      const row = await recordCheckpoint(deps.db, {
        jobId: input.jobId,
        step: staged.step,
        uri,
        bytes: staged.bytes,
        kind: staged.kind,
        files: staged.files.map((f) => ({ path: f.path, bytes: f.bytes, sha256: f.sha256 ?? '' })),
        metrics: staged.metrics,
      });
      return { checkpointId: row.id, uri };
    },

    /**
     * Uploads a staged checkpoint's files (hashing those staged by hard link), verified by the
     * storage layer, marks the row uploaded with its digests, then frees the staged files.
     * Runs on the host queue that staged it. Idempotent: a retry skips files already stored, and
     * one after the worker died between marking the row and reporting back (the staged files
     * already freed) returns what the row says. Staged files that are gone otherwise fail it for
     * good, by name, so the checkpoint is marked failed instead of retried forever.
     */
    async uploadCheckpoint(input: UploadCheckpointInput): Promise<{ sha256: string }> {
      const context = Context.current();
      const done = await getCheckpoint(deps.db, input.checkpointId);
      if (done?.sha256 && (done.status === 'uploaded' || done.status === 'committed')) {
        await fs.rm(input.staged.dir, { recursive: true, force: true });
        counts.pendingUploads.delete(input.staged.dir);
        return { sha256: done.sha256 };
      }
      if (done?.status === 'failed') throw await abandonUpload(done, input);
      const storage = storages.get(input.storageUri);
      const files = [];
      counts.uploadsInFlight.inc();
      try {
        for (const file of input.staged.files) {
          const local = path.join(input.staged.dir, file.path);
          await fs.access(local).catch(() => {
            throw ApplicationFailure.nonRetryable(
              `staged file ${file.path} of the checkpoint at step ${input.staged.step} is gone from ` +
                `${local} on host ${os.hostname()} (its disk was wiped, or something removed it); it cannot be uploaded`,
              'StagedCheckpointMissing',
            );
          });
          const sha256 = file.sha256 ?? (await sha256File(local));
          const put = await storage.put(fileKey(input.storageUri, input.uri, file.path), local, {
            sha256,
            signal: context.cancellationSignal,
            onProgress: (p) => context.heartbeat({ file: file.path, bytes: p.bytes, total: p.total }),
          });
          if (!put.skipped) counts.uploadBytes.inc(put.bytes); // a retry skips what is stored
          files.push({ path: file.path, bytes: file.bytes, sha256 });
        }
        const sha256 = manifestSha256(files);
        await markCheckpoint(deps.db, input.checkpointId, 'uploaded', { sha256, files });
        await fs.rm(input.staged.dir, { recursive: true, force: true });
        counts.pendingUploads.delete(input.staged.dir);
        return { sha256 };
      } catch (err) {
        counts.uploadsFailed.inc();
        // The job gave up on the checkpoint while this ran (it took this host for lost, and a
        // cancelled upload's put or a refused 'uploaded' ends here): what it wrote goes too.
        const row = await getCheckpoint(deps.db, input.checkpointId).catch(() => undefined);
        if (row?.status === 'failed') throw await abandonUpload(row, input);
        throw err;
      } finally {
        counts.uploadsInFlight.dec();
      }
    },

    /**
     * Checks every object of an uploaded checkpoint is in storage with its digest, marks it
     * committed (resume may now use it), flags the best, and deletes what retention lets go.
     */
    async commitCheckpoint(input: {
      checkpointId: number;
      jobId: string;
      storageUri: string;
      retention: RetentionPolicy;
    }): Promise<CommitResult> {
      const all = await listCheckpoints(deps.db, input.jobId);
      const row = all.find((c) => c.id === input.checkpointId);
      if (!row) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} is not recorded`);
      const storage = storages.get(input.storageUri);
      for (const file of row.files) {
        const found = await storage.head(fileKey(input.storageUri, row.uri, file.path));
        if (!found || found.sha256 !== file.sha256) {
          const reason = found
            ? `sha256 of ${file.path} in storage differs from the upload's`
            : `${file.path} is missing`;
          await markCheckpoint(deps.db, row.id, 'failed', { reason });
          throw ApplicationFailure.nonRetryable(`checkpoint at step ${row.step} failed verification: ${reason}`);
        }
      }
      await markCheckpoint(deps.db, row.id, 'committed');
      return applyRetention(input.jobId, input.storageUri, input.retention);
    },

    /** Marks a checkpoint failed and deletes whatever of it reached storage (best effort: the
     *  upload may have failed because storage is down; the row keeps the reason either way). */
    async markCheckpointFailed(input: { checkpointId: number; reason: string; storageUri?: string }) {
      const row = await markCheckpoint(deps.db, input.checkpointId, 'failed', { reason: input.reason });
      if (input.storageUri) await deleteObjects(row, input.storageUri);
    },

    /** Removes a host's staged files that will never be uploaded (a checkpoint marked failed). */
    async discardStaged(input: { dir: string }) {
      await fs.rm(input.dir, { recursive: true, force: true });
      counts.pendingUploads.delete(input.dir);
    },
  };

  /**
   * restoreNewest, waiting out storage that cannot be reached (heartbeating, retried with backoff
   * up to restoreWaitMs): an outage at resume is not a crash of the trainer, and must not use up
   * the job's maxFailures. Corrupt or missing objects are not waited for (restoreNewest skips them).
   */
  async function restoreWhenReachable(context: Context, jobId: string, storageUri: string, into: string) {
    const deadline = Date.now() + restoreWaitMs;
    let waitingFor = '';
    const beat = setInterval(() => context.heartbeat({ restoring: waitingFor || 'newest committed checkpoint' }), 1000);
    try {
      for (let pause = 1000; ; pause = Math.min(pause * 2, 30_000)) {
        try {
          return await restoreNewest(jobId, storageUri, into);
        } catch (err) {
          if (context.cancellationSignal.aborted || Date.now() + pause > deadline) throw err;
          waitingFor = `storage unreachable, retrying in ${pause / 1000}s: ${(err as Error).message}`;
          context.log.warn('restore waits for storage', { jobId, error: (err as Error).message });
          await context.sleep(pause);
        }
      }
    } finally {
      clearInterval(beat);
    }
  }

  /** The newest committed checkpoint that downloads and verifies; bad ones are marked failed. */
  async function restoreNewest(jobId: string, storageUri: string, into: string) {
    const skipped: RunTrainerResult['skippedCheckpoints'] = [];
    for (;;) {
      const row = await newestCommittedCheckpoint(deps.db, jobId);
      if (!row) return { resume: undefined, from: null, skipped };
      try {
        const storage = storages.get(storageUri);
        await fs.rm(into, { recursive: true, force: true });
        for (const file of row.files) {
          const got = await storage.get(fileKey(storageUri, row.uri, file.path), path.join(into, file.path), {
            signal: Context.current().cancellationSignal,
          });
          if (got.sha256 !== file.sha256) throw new RestoreMismatch(`${got.uri} is not the object that was committed`);
        }
        const resumePath = row.kind === 'file' ? path.join(into, row.files[0]?.path ?? '') : into;
        return {
          resume: { path: resumePath, step: row.step },
          from: { checkpointId: row.id, step: row.step },
          skipped,
        };
      } catch (err) {
        const corrupt =
          err instanceof ChecksumMismatchError ||
          err instanceof ChecksumMissingError ||
          err instanceof ObjectNotFoundError ||
          err instanceof RestoreMismatch;
        if (!corrupt) throw err;
        const reason = `restore failed: ${err.message}`;
        await markCheckpoint(deps.db, row.id, 'failed', { reason });
        await deleteObjects(row, storageUri);
        skipped.push({ checkpointId: row.id, step: row.step, reason });
      }
    }
  }

  /** An upload whose checkpoint the job marked failed: its staged files and objects are removed,
   *  and the upload ends for good, naming why. */
  async function abandonUpload(row: Checkpoint, input: UploadCheckpointInput): Promise<ApplicationFailure> {
    await fs.rm(input.staged.dir, { recursive: true, force: true });
    counts.pendingUploads.delete(input.staged.dir);
    await deleteObjects(row, input.storageUri);
    return ApplicationFailure.nonRetryable(
      `the checkpoint at step ${row.step} was marked failed before its upload ended (${row.failureReason}); ` +
        'its staged files and uploaded objects were removed',
      'CheckpointAbandoned',
    );
  }

  /** Deletes a failed checkpoint's objects, if storage answers; what is left is logged. */
  async function deleteObjects(row: Checkpoint, storageUri: string): Promise<void> {
    try {
      const storage = storages.get(storageUri);
      for (const file of row.files) await storage.delete(fileKey(storageUri, row.uri, file.path));
    } catch (err) {
      Context.current().log.warn("could not delete a failed checkpoint's objects", {
        uri: row.uri,
        error: (err as Error).message,
      });
    }
  }

  async function applyRetention(jobId: string, storageUri: string, retention: RetentionPolicy): Promise<CommitResult> {
    const committed = await listCheckpoints(deps.db, jobId, { status: ['committed'] });
    const keep = new Set(committed.slice(-retention.keepLast).map((c) => c.id));
    const best = rankByObjective(committed, retention);
    for (const c of best.slice(0, retention.keepBest)) keep.add(c.id);
    if (best[0]) await setBestCheckpoint(deps.db, jobId, best[0].id);
    const collected: number[] = [];
    for (const c of committed) {
      if (keep.has(c.id)) continue;
      const storage = storages.get(storageUri);
      for (const file of c.files) await storage.delete(fileKey(storageUri, c.uri, file.path));
      await markCheckpoint(deps.db, c.id, 'gc');
      collected.push(c.step);
    }
    return { committed: true, collected, bestStep: best[0]?.step ?? null };
  }
}

class RestoreMismatch extends Error {
  override name = 'RestoreMismatch';
}

function rankByObjective(rows: Checkpoint[], retention: RetentionPolicy): Checkpoint[] {
  const objective = retention.objective;
  if (!objective) return [];
  const sign = objective.direction === 'minimize' ? 1 : -1;
  return rows
    .filter((c) => typeof c.metrics[objective.metric] === 'number')
    .sort((a, b) => sign * ((a.metrics[objective.metric] as number) - (b.metrics[objective.metric] as number)));
}

/** Temporal cancels a worker's running activities when the worker shuts down: that is a preemption. */
function isWorkerShutdown(context: Context): boolean {
  const reason = context.cancellationSignal.reason as { name?: string; message?: string } | string | undefined;
  const text = typeof reason === 'string' ? reason : `${reason?.name ?? ''} ${reason?.message ?? ''}`;
  return /WORKER_SHUTDOWN/i.test(text);
}

export type JobActivities = ReturnType<typeof createJobActivities>;
