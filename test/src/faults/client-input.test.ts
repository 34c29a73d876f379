// Bad input through every door (issue #7): the typed client (KeelClient), the `keel` CLI (a real
// process) and the HTTP API (edge/src/main.ts, a real Node process with a token). Each refusal
// must be named (an error class, an exit code and a line, an HTTP status and error code, naming
// the field) AND change nothing saved: the keel database's rows (jobs, studies, trials, trial
// values, checkpoints) and Temporal's workflows on the worker's queue (each one's status and
// history length, so a stray signal or update shows) are the same after as before, and no
// workflow exists under the id the bad request asked for.
// The refusals themselves are covered in test/src/edge/api.test.ts, test/src/client/cli.test.ts
// and keel-client.test.ts; this file adds "changed nothing", and the cases they lack: refusals
// aimed at a live job and a live study (stop with a bad body, the other kind's id, a taken id, a
// concurrency the study refuses), a wrong token on requests that would start or stop something,
// an oversize body sent without a Content-Length, and oversize specs through the client and CLI.
// The live job and study are parked: their trials wait on a GPU queue no worker serves, so
// nothing in them moves while the test looks, and any change is the bad input's doing.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { InvalidSpecError, KeelClient, NotFoundError } from '@keel/client';
import { hpoStudy, type JobSpecInput, type StudySpecInput, studyProgressQuery, trainingJob } from '@keel/workflows';
import {
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { clientEnv, mlpJob, mlpStudy } from '../client/fixtures/specs.ts';
import { waitFor } from '../harness/fault-job.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';

const services = inject('services');
const worker = useInProcessWorker('client-input', services.temporal);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-client-input-'));
const token = 'client-input-token-0123456789';
const MiB = 1024 * 1024;
let keel: KeelClient;
let api: { url: string; process: ChildProcess };
let jobId: string;
let studyId: string;
let fresh = 0;
/** An id no workflow has: where a bad request that wrongly went through would show. */
const unusedId = (kind: string) => `input-${kind}-${process.pid}-${++fresh}`;

// ---- the parked job and study, and what "saved" means

const parkedQueue = () => `${worker.name}-parked`;
const parkedJob = (): JobSpecInput => ({ ...mlpJob(worker), gpuTaskQueue: parkedQueue() });
const parkedStudy = (extra: Partial<StudySpecInput> = {}): StudySpecInput => {
  const spec = mlpStudy(worker, { nTrials: 2, maxConcurrency: 2, ...extra });
  return { ...spec, trial: { ...spec.trial, gpuTaskQueue: parkedQueue() } };
};

/** Settled: no workflow task pending, and its trainer's attempt scheduled (it never starts). */
async function parked(handle: WorkflowHandle): Promise<boolean> {
  const { raw } = await handle.describe();
  const scheduled = raw.pendingActivities?.some((a) => a.activityType?.name === 'runTrainer');
  return !raw.pendingWorkflowTask && Boolean(scheduled);
}

/** Everything saved: the database's rows, and each workflow on the worker's queue. */
async function saved() {
  const { orm, tables } = worker.keel.db;
  const rows = {
    jobs: await orm.select().from(tables.jobs),
    studies: await orm.select().from(tables.studies),
    trials: await orm.select().from(tables.trials),
    trialValues: await orm.select().from(tables.trialValues),
    checkpoints: await orm.select().from(tables.checkpoints),
  };
  const workflows = [];
  for await (const listed of worker.client.workflow.list({ query: `TaskQueue = "${worker.name}"` })) {
    const { status, historyLength, runId, type } = await worker.client.workflow
      .getHandle(listed.workflowId, listed.runId)
      .describe();
    workflows.push({ id: listed.workflowId, runId, type, status: status.name, historyLength });
  }
  workflows.sort((a, b) => (a.id < b.id ? -1 : 1));
  return { rows, workflows };
}

async function exists(workflowId: string): Promise<boolean> {
  try {
    await worker.client.workflow.getHandle(workflowId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Runs a bad request; everything saved must be as before, and no workflow under `ids`. */
async function changesNothing<T>(ids: string[], bad: () => Promise<T>): Promise<T> {
  const before = await saved();
  const answer = await bad();
  expect(await saved()).toEqual(before);
  for (const id of ids) expect(await exists(id), `a workflow '${id}'`).toBe(false);
  return answer;
}

// ---- the three doors

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** The `keel` CLI as a person runs it (see test/src/client/cli.test.ts). */
function cli(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.resolve('client/src/cli.ts'), ...args],
      { env: { ...process.env, ...clientEnv(worker) }, cwd: tmp, maxBuffer: 16 * MiB },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

function specFile(name: string, spec: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(spec));
  return file;
}

/** The API under Node, with a token (see test/src/edge/api.test.ts for Bun and Deno). */
function startApi(): Promise<{ url: string; process: ChildProcess }> {
  const child = spawn(process.execPath, [path.resolve('edge/src/main.ts')], {
    env: { ...process.env, ...clientEnv(worker), KEEL_API_PORT: '0', KEEL_API_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, signalled as a whole in afterAll
  });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve({ url: match[1] as string, process: child });
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('exit', (code) => reject(new Error(`the API exited with ${code}: ${output}`)));
  });
}

const call = (route: string, init: RequestInit = {}, auth: string | null = `Bearer ${token}`) =>
  fetch(`${api.url}${route}`, {
    ...init,
    headers: { 'content-type': 'application/json', ...(auth === null ? {} : { authorization: auth }), ...init.headers },
  });
const post = (route: string, body: unknown, auth?: string | null) =>
  call(route, { method: 'POST', body: JSON.stringify(body) }, auth);
/**
 * POSTs `body` in 64 KiB chunks with no Content-Length, on a connection of its own (the server
 * may close it before reading everything: no later request must inherit that).
 */
function postChunked(route: string, body: unknown): Promise<{ status: number; body: string }> {
  const text = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const request = http.request(`${api.url}${route}`, {
      method: 'POST',
      agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    request.on('response', (response) => {
      let answer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        answer += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: answer }));
      response.on('error', reject);
    });
    request.on('error', reject);
    for (let at = 0; at < text.length; at += 64 * 1024) request.write(text.subarray(at, at + 64 * 1024));
    request.end();
  });
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read the API's JSON field by field
const json = (response: Response): Promise<any> => response.json();

beforeAll(async () => {
  keel = await KeelClient.connect({
    client: worker.client,
    taskQueue: worker.name,
    databaseUrl: worker.config.databaseUrl,
  });
  jobId = `input-parked-job-${process.pid}`;
  studyId = `input-parked-study-${process.pid}`;
  const job = await worker.client.workflow.start(trainingJob, {
    taskQueue: worker.name,
    workflowId: jobId,
    args: [parkedJob()],
  });
  const study = await worker.client.workflow.start(hpoStudy, {
    taskQueue: worker.name,
    workflowId: studyId,
    args: [parkedStudy()],
  });
  api = await startApi();
  await waitFor('the job parked', () => parked(job));
  await waitFor('both trials parked', async () => {
    const progress = await study.query(studyProgressQuery);
    const trials = progress.trials.map((t) => worker.client.workflow.getHandle(t.jobId as string));
    const { raw } = await study.describe();
    return (
      progress.counts.running === 2 &&
      !raw.pendingWorkflowTask &&
      (await Promise.all(trials.map(parked))).every(Boolean)
    );
  });
});

afterAll(async () => {
  if (api) {
    const exited = new Promise((resolve) => api.process.once('exit', resolve));
    process.kill(-(api.process.pid as number), 'SIGTERM');
    await exited;
  }
  for (const id of [studyId, jobId]) {
    await worker.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => {});
  }
  // The study's trials were abandoned by design (ParentClosePolicy ABANDON): end them too.
  for await (const listed of worker.client.workflow.list({
    query: `TaskQueue = "${worker.name}" AND ExecutionStatus = "Running"`,
  })) {
    await worker.client.workflow
      .getHandle(listed.workflowId)
      .terminate('test over')
      .catch(() => {});
  }
  await keel?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- the cases

const invalidJob = { command: [], gpus: -1, checkpoints: { keepLast: 0 }, typo: true };
const invalidStudy = () => ({ ...parkedStudy(), nTrials: 0, objective: { metric: 'loss', direction: 'up' } });
const oversizeJob = () => ({ ...parkedJob(), env: { BIG: 'x'.repeat(3 * MiB) } });

describe('the typed client', () => {
  test('invalid job and study specs: InvalidSpecError naming each field', async () => {
    const id = unusedId('job');
    const job = await changesNothing([id], () => keel.startJob(invalidJob as never, { id }).catch((e) => e));
    expect(job).toBeInstanceOf(InvalidSpecError);
    expect(job.issues.map((i: { field: string }) => i.field)).toEqual(
      expect.arrayContaining(['command', 'gpus', 'checkpoints.keepLast']),
    );
    expect(job.message).toContain('typo');
    const sid = unusedId('study');
    const study = await changesNothing([sid], () =>
      keel.startStudy(invalidStudy() as never, { id: sid }).catch((e) => e),
    );
    expect(study).toBeInstanceOf(InvalidSpecError);
    expect(study.issues.map((i: { field: string }) => i.field)).toEqual(
      expect.arrayContaining(['nTrials', 'objective.direction']),
    );
  });

  test('an oversize spec (3 MiB): refused, nothing started', async () => {
    const id = unusedId('job');
    const err = await changesNothing([id], () => keel.startJob(oversizeJob(), { id }).catch((e) => e));
    expect(err).toBeInstanceOf(Error);
  });

  // Temporal's own refusal (its blob size limit) would be a ServiceError 'Failed to start Workflow'.
  test('an oversize spec is refused by name, with the size and the fix', async () => {
    const id = unusedId('job');
    const err = await changesNothing([id], () => keel.startJob(oversizeJob(), { id }).catch((e) => e));
    expect(err.message).toMatch(/too large|size|limit/i);
    expect(err.name).not.toBe('ServiceError');
  });

  test('an id already taken: WorkflowExecutionAlreadyStartedError, the live job untouched', async () => {
    const err = await changesNothing([], () => keel.startJob(parkedJob(), { id: jobId }).catch((e) => e));
    expect(err).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
  });

  test("the other kind's id: NotFoundError, and the study is not stopped nor the job", async () => {
    const stopJob = await changesNothing([], () => keel.stopJob(studyId, 'wrong kind').catch((e) => e));
    expect(stopJob).toBeInstanceOf(NotFoundError);
    expect(stopJob).toMatchObject({ kind: 'job', id: studyId });
    expect(stopJob.message).toBe(`'${studyId}' is a hpoStudy workflow, not a keel job`);
    const stopStudy = await changesNothing([], () => keel.stopStudy(jobId, 'wrong kind').catch((e) => e));
    expect(stopStudy).toMatchObject({ name: 'NotFoundError', kind: 'study', id: jobId });
    const pause = await changesNothing([], () => keel.pauseStudy(jobId).catch((e) => e));
    expect(pause).toBeInstanceOf(NotFoundError);
  });

  test('a concurrency the study refuses: the update is rejected and leaves no trace in its history', async () => {
    for (const n of [0, 1.5, 10_000]) {
      const err = await changesNothing([], () => keel.setStudyConcurrency(studyId, n).catch((e) => e));
      expect(err, `maxConcurrency ${n}`).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String(err.cause?.message)).toContain('maxConcurrency');
    }
  });

  test('unknown ids: NotFoundError for every read and control, and no download folder', async () => {
    const id = unusedId('nothing');
    const dest = path.join(tmp, 'never');
    const calls = [
      () => keel.jobProgress(id),
      () => keel.stopJob(id),
      () => keel.jobResult(id),
      () => keel.listCheckpoints(id),
      () => keel.downloadCheckpoint(id, { dest }),
      () => keel.studyProgress(id),
      () => keel.stopStudy(id),
      () => keel.resumeStudy(id),
      () => keel.setStudyConcurrency(id, 2),
      () => keel.studyTrials(id),
      () => keel.studyReport(id),
    ];
    for (const bad of calls) {
      const err = await changesNothing([id], () => bad().catch((e: unknown) => e));
      expect(err, String(bad)).toBeInstanceOf(NotFoundError);
      expect((err as NotFoundError).id).toBe(id);
    }
    expect(fs.existsSync(dest)).toBe(false);
    // A job with no committed checkpoint: the download names it, and writes nothing.
    const none = await changesNothing([], () => keel.downloadCheckpoint(jobId, { dest }).catch((e) => e));
    expect(none).toMatchObject({ name: 'NotFoundError', kind: 'checkpoint' });
    expect(none.message).toBe(`job '${jobId}' has no committed checkpoint`);
    expect(fs.existsSync(dest)).toBe(false);
  });
});

describe('the keel CLI', () => {
  test('invalid specs exit 2 naming each field', async () => {
    const id = unusedId('job');
    const job = await changesNothing([id], () =>
      cli(['job', 'start', specFile('bad-job.json', invalidJob), '--id', id]),
    );
    expect(job.code).toBe(2);
    expect(job.stderr).toMatch(/^keel: invalid job spec:/);
    for (const field of ['command', 'gpus', 'checkpoints.keepLast']) expect(job.stderr).toContain(`- ${field}: `);
    const sid = unusedId('study');
    const study = await changesNothing([sid], () =>
      cli(['study', 'start', specFile('bad-study.json', invalidStudy()), '--id', sid]),
    );
    expect(study.code).toBe(2);
    for (const field of ['nTrials', 'objective.direction']) expect(study.stderr).toContain(`- ${field}: `);
  });

  test('an oversize spec file, an id already taken: refused, nothing started, the live job untouched', async () => {
    const id = unusedId('job');
    const huge = await changesNothing([id], () =>
      cli(['job', 'start', specFile('huge.json', oversizeJob()), '--id', id]),
    );
    expect(huge.code).not.toBe(0);
    const taken = await changesNothing([], () =>
      cli(['job', 'start', specFile('job.json', parkedJob()), '--id', jobId]),
    );
    expect(taken.code).not.toBe(0);
  });

  test('an oversize spec file and a taken id exit 2 naming the problem', async () => {
    const huge = await cli(['job', 'start', specFile('huge.json', oversizeJob()), '--id', unusedId('job')]);
    expect(huge.stderr).toMatch(/too large|size|limit/i);
    expect(huge.code).toBe(2);
    const taken = await cli(['job', 'start', specFile('job.json', parkedJob()), '--id', jobId]);
    expect(taken.stderr).toContain(`'${jobId}' already exists`);
    expect(taken.code).toBe(2);
  });

  test("the other kind's id exits 3, and nothing is stopped", async () => {
    const stopJob = await changesNothing([], () => cli(['job', 'stop', studyId, '--reason', 'wrong kind']));
    expect(stopJob.code).toBe(3);
    expect(stopJob.stderr.trim()).toBe(`keel: '${studyId}' is a hpoStudy workflow, not a keel job`);
    const stopStudy = await changesNothing([], () => cli(['study', 'stop', jobId]));
    expect(stopStudy.code).toBe(3);
    expect(stopStudy.stderr.trim()).toBe(`keel: '${jobId}' is a trainingJob workflow, not a keel study`);
  });

  test('a concurrency that is not a whole number in range: refused, the study untouched', async () => {
    for (const n of ['0', 'ten', '1.5']) {
      const ran = await changesNothing([], () => cli(['study', 'concurrency', studyId, n]));
      expect(ran.code, `concurrency ${n}`).not.toBe(0);
    }
  });

  test('a concurrency that is not a whole number in range exits 2 naming it', async () => {
    for (const n of ['0', 'ten', '1.5']) {
      const ran = await cli(['study', 'concurrency', studyId, n]);
      expect(ran.stderr, `concurrency ${n}`).toContain('maxConcurrency');
      expect(ran.code, `concurrency ${n}: ${ran.stderr}`).toBe(2);
    }
  });

  test('unknown ids exit 3 and download nothing', async () => {
    const id = unusedId('nothing');
    for (const args of [
      ['job', 'stop', id],
      ['job', 'watch', id],
      ['study', 'pause', id],
      ['study', 'report', id, '-o', 'report.html'],
      ['checkpoints', 'download', id],
    ]) {
      const ran = await changesNothing([id], () => cli(args));
      expect(ran.code, args.join(' ')).toBe(3);
      expect(ran.stderr).toContain(`'${id}'`);
    }
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith(id) || f === 'report.html')).toEqual([]);
  });
});

describe('the HTTP API', () => {
  test('no token or a wrong one: 401; a header not "Bearer <token>": 400; on each door that starts or stops', async () => {
    const expected = new Map([
      [null, 401],
      ['Bearer wrong-token-0123456789', 401],
      [`Basic ${token}`, 400], // a malformed request (RFC 6750 invalid_request), named all the same
      [token, 400],
    ]);
    for (const [auth, status] of expected) {
      const id = unusedId('job');
      const answers = await changesNothing([id], async () => [
        await post(`/v1/jobs?id=${id}`, parkedJob(), auth),
        await post(`/v1/studies?id=${id}`, parkedStudy(), auth),
        await post(`/v1/jobs/${jobId}/stop`, { reason: 'no' }, auth),
        await post(`/v1/studies/${studyId}/stop`, { reason: 'no' }, auth),
        await post(`/v1/studies/${studyId}/pause`, {}, auth),
      ]);
      for (const answer of answers) {
        expect(answer.status, `${answer.url} with ${auth}`).toBe(status);
        expect((await json(answer)).error).toBe('unauthorized');
      }
    }
  });

  test('invalid specs: 400 invalid_spec naming each field', async () => {
    const id = unusedId('job');
    const job = await changesNothing([id], () => post(`/v1/jobs?id=${id}`, invalidJob));
    expect(job.status).toBe(400);
    const body = await json(job);
    expect(body.error).toBe('invalid_spec');
    expect(body.issues.map((i: { field: string }) => i.field)).toEqual(
      expect.arrayContaining(['command', 'gpus', 'checkpoints.keepLast']),
    );
    const sid = unusedId('study');
    const study = await changesNothing([sid], () => post(`/v1/studies?id=${sid}`, invalidStudy()));
    expect(study.status).toBe(400);
    expect((await json(study)).issues.map((i: { field: string }) => i.field)).toEqual(
      expect.arrayContaining(['nTrials', 'objective.direction']),
    );
  });

  test('an oversize body: 413 payload_too_large, nothing started', async () => {
    const id = unusedId('job');
    const sized = await changesNothing([id], () => post(`/v1/jobs?id=${id}`, oversizeJob()));
    expect(sized.status).toBe(413);
    expect((await json(sized)).error).toBe('payload_too_large');
  });

  test('an oversize body sent without a Content-Length (chunked): refused, nothing started', async () => {
    const id = unusedId('job');
    const chunked = await changesNothing([id], () => postChunked(`/v1/jobs?id=${id}`, oversizeJob()));
    expect(chunked.status).toBeGreaterThanOrEqual(400);
  });

  test('an oversize chunked body: 413 payload_too_large', async () => {
    const chunked = await postChunked(`/v1/jobs?id=${unusedId('job')}`, oversizeJob());
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error).toBe('payload_too_large');
  });

  test('a bad stop body: 400 naming the field, and the job is not stopped', async () => {
    const long = await changesNothing([], () => post(`/v1/jobs/${jobId}/stop`, { reason: 'x'.repeat(1001) }));
    expect(long.status).toBe(400);
    expect((await json(long)).issues.map((i: { field: string }) => i.field)).toEqual(['reason']);
    const extra = await changesNothing([], () => post(`/v1/studies/${studyId}/stop`, { reason: 'ok', force: true }));
    expect(extra.status).toBe(400);
    expect((await json(extra)).message).toContain('force');
    const notJson = await changesNothing([], () => call(`/v1/jobs/${jobId}/stop`, { method: 'POST', body: 'stop!' }));
    expect(notJson.status).toBe(400);
    expect((await json(notJson)).issues).toEqual([{ field: '(body)', message: 'not JSON' }]);
  });

  test("an id already taken: 409; the other kind's id: 404; nothing stopped", async () => {
    const taken = await changesNothing([], () => post(`/v1/jobs?id=${jobId}`, parkedJob()));
    expect(taken.status).toBe(409);
    expect(await json(taken)).toMatchObject({ error: 'conflict', message: expect.stringContaining(jobId) });
    const takenByStudy = await changesNothing([], () => post(`/v1/jobs?id=${studyId}`, parkedJob()));
    expect(takenByStudy.status).toBe(409);
    const stopJob = await changesNothing([], () => post(`/v1/jobs/${studyId}/stop`, {}));
    expect(stopJob.status).toBe(404);
    expect(await json(stopJob)).toMatchObject({ error: 'not_found', kind: 'job', id: studyId });
    const stopStudy = await changesNothing([], () => post(`/v1/studies/${jobId}/stop`, {}));
    expect(stopStudy.status).toBe(404);
    expect(await json(stopStudy)).toMatchObject({ error: 'not_found', kind: 'study', id: jobId });
  });

  test('unknown ids: 404 not_found on every control, nothing started', async () => {
    const id = unusedId('nothing');
    for (const route of [`/v1/jobs/${id}/stop`, `/v1/studies/${id}/stop`, `/v1/studies/${id}/resume`]) {
      const answer = await changesNothing([id], () => post(route, {}));
      expect(answer.status, route).toBe(404);
      expect(await json(answer)).toMatchObject({ error: 'not_found', id });
    }
  });
});
