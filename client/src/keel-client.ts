// The typed client scripts use (and the CLI and the HTTP API are built on): start jobs and studies,
// read their progress, watch them, stop them, list and download checkpoints. Specs are checked
// with the workflows' own zod schemas before anything starts, so a bad field is named at once.
// Runs on Node, Bun and Deno (the Temporal client and both database drivers do).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  type Checkpoint,
  type KeelDatabase,
  listCheckpoints,
  listTrials,
  openDatabase,
  RecordNotFoundError,
  requireStudy,
  type Trial,
} from '@keel/db';
import { resolveDatabaseUrl } from '@keel/db/url';
import { ChecksumMismatchError, openStorage } from '@keel/storage';
import { loadTemporalConfig } from '@keel/workers/config';
import {
  type JobProgress,
  type JobResult,
  type JobSpecInput,
  KEEL_TASK_QUEUE,
  pauseUpdate,
  progressQuery,
  resumeUpdate,
  type StudyProgress,
  type StudyResult,
  type StudySpecInput,
  setConcurrencyUpdate,
  stopSignal,
  stopStudyUpdate,
  studyProgressQuery,
} from '@keel/workflows';
import { InvalidSpecError, parseJobSpec, parseStudySpec } from '@keel/workflows/specs';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { ClientConnectConfig } from '@temporalio/envconfig';
import { loadStudyReport, renderStudyReport } from './report/index.ts';

export type { Checkpoint, JobProgress, JobResult, JobSpecInput, StudyProgress, StudyResult, StudySpecInput, Trial };

/**
 * The largest spec (serialized as JSON) keel starts, and the HTTP API's body limit. Temporal
 * refuses workflow inputs past its blob limit (2 MiB by default) with a bare 'Failed to start
 * Workflow'; a spec is a few KB, so anything this big is data that belongs in storage.
 */
export const MAX_SPEC_BYTES = 1024 * 1024;

/** A spec over MAX_SPEC_BYTES: an InvalidSpecError (CLI exit 2, HTTP 400) stating size, limit and fix. */
export class SpecTooLargeError extends InvalidSpecError {
  override name = 'SpecTooLargeError';
  readonly bytes: number;
  readonly limit: number;
  constructor(kind: 'job spec' | 'study spec', bytes: number, largest: { field: string; bytes: number } | undefined) {
    const where = largest ? `; the largest part is ${largest.field} (${largest.bytes} bytes)` : '';
    super(kind, [
      {
        field: largest?.field ?? '(the spec itself)',
        message:
          `the spec is too large: ${bytes} bytes as JSON, over the limit of ${MAX_SPEC_BYTES} bytes (1 MiB)${where}. ` +
          'Keep large data out of the spec (params, env, command): put it in storage and pass its path or URI',
      },
    ]);
    this.bytes = bytes;
    this.limit = MAX_SPEC_BYTES;
  }
}

/** What was asked for does not exist (or is not that kind of thing): CLI exit 3, HTTP 404. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  readonly kind: 'job' | 'study' | 'checkpoint';
  readonly id: string;
  constructor(kind: 'job' | 'study' | 'checkpoint', id: string, detail?: string) {
    super(detail ?? `no ${kind} '${id}'`);
    this.kind = kind;
    this.id = id;
  }
}

export interface KeelClientOptions {
  /** Temporal connection; default: Temporal's environment variables or config profile. */
  temporal?: ClientConnectConfig;
  /** An existing Temporal client (its connection stays the caller's to close). */
  client?: Client;
  /** The database jobs and studies are recorded in (default: DATABASE_URL, else .keel/keel.db). */
  databaseUrl?: string;
  /** Where workflows start (default: KEEL_TASK_QUEUE, else `keel`). */
  taskQueue?: string;
}

const jobType = 'trainingJob';
const studyType = 'hpoStudy';
const finishedStudy = new Set(['completed', 'stopped', 'failed']);
const finishedJob = new Set(['completed', 'failed', 'stopped', 'cancelled']);

export class KeelClient {
  readonly temporal: Client;
  readonly taskQueue: string;
  readonly databaseUrl: string;
  readonly #ownConnection: Connection | undefined;
  #db: Promise<KeelDatabase> | undefined;

  private constructor(temporal: Client, ownConnection: Connection | undefined, options: KeelClientOptions) {
    this.temporal = temporal;
    this.#ownConnection = ownConnection;
    this.taskQueue = options.taskQueue ?? process.env.KEEL_TASK_QUEUE ?? KEEL_TASK_QUEUE;
    this.databaseUrl = options.databaseUrl ?? resolveDatabaseUrl({ env: process.env });
  }

  /** Connects to Temporal (the database is opened on first use, by the calls that read it). */
  static async connect(options: KeelClientOptions = {}): Promise<KeelClient> {
    if (options.client) return new KeelClient(options.client, undefined, options);
    const config = options.temporal ?? loadTemporalConfig();
    let connection: Connection;
    try {
      connection = await Connection.connect({ ...config.connectionOptions, connectTimeout: '10 seconds' });
    } catch (err) {
      const address = config.connectionOptions.address;
      throw new Error(
        `cannot reach Temporal at ${address}: ${(err as Error).message}. ` +
          'Start one with `keel dev`, or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_API_KEY).',
      );
    }
    const client = new Client({ connection, namespace: config.namespace ?? 'default' });
    return new KeelClient(client, connection, options);
  }

  async close(): Promise<void> {
    if (this.#db) await (await this.#db).close();
    await this.#ownConnection?.close();
  }

  // ---- jobs

  /** Starts a training job; the spec is validated first (InvalidSpecError names each bad field). */
  async startJob(spec: JobSpecInput, options: { id?: string } = {}): Promise<{ jobId: string; runId: string }> {
    const parsed = parseJobSpec(spec);
    checkSpecSize('job spec', spec);
    const jobId = options.id ?? newId('job', parsed.name);
    const handle = await this.temporal.workflow.start(jobType, {
      taskQueue: this.taskQueue,
      workflowId: jobId,
      args: [spec],
      staticSummary: `keel job${parsed.name ? ` ${parsed.name}` : ''}: ${parsed.command.join(' ')}`,
    });
    return { jobId, runId: handle.firstExecutionRunId };
  }

  async jobProgress(jobId: string): Promise<JobProgress> {
    const handle = await this.#handle('job', jobId);
    return handle.query(progressQuery);
  }

  /** Asks the job to save a final checkpoint and stop (the trainer is signalled, not killed). */
  async stopJob(jobId: string, reason?: string): Promise<void> {
    const handle = await this.#handle('job', jobId);
    await handle.signal(stopSignal, reason ? { reason } : {});
  }

  async jobResult(jobId: string): Promise<JobResult> {
    return (await this.#handle('job', jobId)).result();
  }

  /** The job's progress every `intervalMs` while it changes, ending with its last state. */
  watchJob(jobId: string, options: WatchOptions = {}): AsyncGenerator<JobProgress> {
    return this.#watch(
      () => this.jobProgress(jobId),
      (p) => finishedJob.has(p.status),
      jobId,
      options,
    );
  }

  // ---- studies

  async startStudy(spec: StudySpecInput, options: { id?: string } = {}): Promise<{ studyId: string; runId: string }> {
    const parsed = parseStudySpec(spec);
    checkSpecSize('study spec', spec);
    const studyId = options.id ?? newId('study', parsed.name);
    const handle = await this.temporal.workflow.start(studyType, {
      taskQueue: this.taskQueue,
      workflowId: studyId,
      args: [spec],
      staticSummary:
        `keel study${parsed.name ? ` ${parsed.name}` : ''}: ${parsed.nTrials} trials, ` +
        `${parsed.sampler.type} sampler, ${parsed.pruner.type === 'none' ? 'no' : parsed.pruner.type} pruner, ` +
        `${parsed.objective.direction} ${parsed.objective.metric}`,
    });
    return { studyId, runId: handle.firstExecutionRunId };
  }

  async studyProgress(studyId: string): Promise<StudyProgress> {
    const handle = await this.#handle('study', studyId);
    return handle.query(studyProgressQuery);
  }

  /** The study's progress every `intervalMs` while it changes, ending once it has finished. */
  watchStudy(studyId: string, options: WatchOptions = {}): AsyncGenerator<StudyProgress> {
    return this.#watch(
      () => this.studyProgress(studyId),
      (p) => finishedStudy.has(p.status),
      studyId,
      options,
    );
  }

  /** Stops the study: running trials save and stop; answers with the study's progress. */
  async stopStudy(studyId: string, reason?: string): Promise<StudyProgress> {
    const handle = await this.#handle('study', studyId);
    const args: [{ reason?: string }] = [reason ? { reason } : {}];
    // By name: the SDK's overloads do not accept the definition's optional argument.
    return handle.executeUpdate<StudyProgress, [{ reason?: string }]>(stopStudyUpdate.name, { args });
  }

  async pauseStudy(studyId: string): Promise<StudyProgress> {
    return (await this.#handle('study', studyId)).executeUpdate(pauseUpdate);
  }

  async resumeStudy(studyId: string): Promise<StudyProgress> {
    return (await this.#handle('study', studyId)).executeUpdate(resumeUpdate);
  }

  async setStudyConcurrency(studyId: string, maxConcurrency: number): Promise<StudyProgress> {
    const handle = await this.#handle('study', studyId);
    return handle.executeUpdate(setConcurrencyUpdate, { args: [{ maxConcurrency }] });
  }

  async studyResult(studyId: string): Promise<StudyResult> {
    return (await this.#handle('study', studyId)).result();
  }

  /** The study's trials as recorded in the database (params, state, value, attempts, error). */
  async studyTrials(studyId: string): Promise<Trial[]> {
    const db = await this.database();
    await requireStudyRow(db, studyId);
    return listTrials(db, studyId);
  }

  /** The study's report: one self-contained HTML file (see ./report), from the database. */
  async studyReport(studyId: string): Promise<string> {
    const db = await this.database();
    await requireStudyRow(db, studyId);
    return renderStudyReport(await loadStudyReport(db, studyId));
  }

  // ---- checkpoints

  /** A job's checkpoints by step, every state (committed, failed with its reason, collected...). */
  async listCheckpoints(jobId: string): Promise<Checkpoint[]> {
    const rows = await listCheckpoints(await this.database(), jobId);
    if (rows.length === 0) await this.#handle('job', jobId); // no rows: is there such a job at all?
    return rows;
  }

  /**
   * Downloads a committed checkpoint (the newest, or the one at `step`) into `dest` and checks
   * every file against the sha256 recorded at commit. Storage credentials come from the
   * environment, as for workers.
   */
  async downloadCheckpoint(
    jobId: string,
    options: { dest: string; step?: number },
  ): Promise<{ checkpoint: Checkpoint; files: { path: string; bytes: number; sha256: string }[] }> {
    const committed = (await this.listCheckpoints(jobId)).filter((c) => c.status === 'committed');
    const checkpoint =
      options.step === undefined ? committed.at(-1) : committed.findLast((c) => c.step === options.step);
    if (!checkpoint) {
      const which =
        options.step === undefined ? 'no committed checkpoint' : `no committed checkpoint at step ${options.step}`;
      const steps = committed.map((c) => c.step).join(', ');
      throw new NotFoundError(
        'checkpoint',
        jobId,
        `job '${jobId}' has ${which}${steps ? ` (committed: ${steps})` : ''}`,
      );
    }
    const storage = openStorage(checkpoint.uri);
    const files = [];
    for (const file of checkpoint.files) {
      const target = path.join(options.dest, file.path);
      await fs.mkdir(path.dirname(target), { recursive: true });
      const got = await storage.get(file.path, target);
      if (got.sha256 !== file.sha256) {
        await fs.rm(target, { force: true });
        const where = {
          provider: undefined,
          bucket: undefined,
          key: file.path,
          operation: 'get' as const,
          uri: got.uri,
        };
        throw new ChecksumMismatchError(where, file.sha256, got.sha256);
      }
      files.push({ path: file.path, bytes: file.bytes, sha256: got.sha256 });
    }
    return { checkpoint, files };
  }

  /** The keel database (opened once, on first use). */
  database(): Promise<KeelDatabase> {
    this.#db ??= openDatabase({ url: this.databaseUrl });
    return this.#db;
  }

  // ---- internals

  /** A handle to a job or study, after checking that the id is one (by workflow type). */
  async #handle(kind: 'job' | 'study', id: string) {
    const handle = this.temporal.workflow.getHandle(id);
    try {
      const description = await handle.describe();
      const expected = kind === 'job' ? jobType : studyType;
      if (description.type !== expected) {
        throw new NotFoundError(kind, id, `'${id}' is a ${description.type} workflow, not a keel ${kind}`);
      }
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new NotFoundError(kind, id);
      throw err;
    }
    return handle;
  }

  async *#watch<P>(
    read: () => Promise<P>,
    finished: (p: P) => boolean,
    id: string,
    options: WatchOptions,
  ): AsyncGenerator<P> {
    const intervalMs = options.intervalMs ?? 1000;
    let last = '';
    while (!options.signal?.aborted) {
      const progress = await read();
      const text = JSON.stringify(progress);
      if (text !== last) yield progress;
      last = text;
      if (finished(progress)) return;
      // The workflow may have closed since the read (yield its final state), or ended without
      // reaching a finished state (terminated, timed out): either way the watch is over.
      const { status } = await this.temporal.workflow.getHandle(id).describe();
      if (status.name !== 'RUNNING') {
        const final = await read();
        if (JSON.stringify(final) !== last) yield final;
        return;
      }
      await sleep(intervalMs, options.signal);
    }
  }
}

export interface WatchOptions {
  /** How often progress is read (default 1 s); a value is yielded only when it changed. */
  intervalMs?: number;
  /** Ends the watch (an HTTP client that went away). */
  signal?: AbortSignal;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

async function requireStudyRow(db: KeelDatabase, studyId: string) {
  try {
    return await requireStudy(db, studyId);
  } catch (err) {
    if (err instanceof RecordNotFoundError) throw new NotFoundError('study', studyId);
    throw err;
  }
}

/** Throws SpecTooLargeError for a spec over MAX_SPEC_BYTES as JSON (what Temporal is sent). */
function checkSpecSize(kind: 'job spec' | 'study spec', spec: unknown): void {
  const bytes = jsonBytes(spec);
  if (bytes > MAX_SPEC_BYTES) throw new SpecTooLargeError(kind, bytes, largestPart(spec));
}

function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value) ?? '').byteLength;
}

/** The path of the spec's bulk (`env.BIG`): down the largest child while it holds most of it. */
function largestPart(spec: unknown): { field: string; bytes: number } | undefined {
  const path: string[] = [];
  let node = spec;
  let bytes = jsonBytes(spec);
  while (node !== null && typeof node === 'object') {
    const children = Object.entries(node).map(([key, value]) => ({ key, value, bytes: jsonBytes(value) }));
    const largest = children.sort((a, b) => b.bytes - a.bytes)[0];
    if (!largest || largest.bytes < bytes / 2) break;
    path.push(largest.key);
    node = largest.value;
    bytes = largest.bytes;
  }
  return path.length > 0 ? { field: path.join('.'), bytes } : undefined;
}

/** `study-lr-sweep-1a2b3c4d`: readable in the UI, unique without coordination. */
function newId(kind: string, name: string | undefined): string {
  const slug = (name ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 40);
  return [kind, slug, randomUUID().slice(0, 8)].filter(Boolean).join('-');
}
