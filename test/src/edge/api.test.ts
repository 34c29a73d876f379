// keel's HTTP API (edge/) served by edge/src/main.ts under Node, Bun and Deno, each a real process
// against the real dev server, worker and database: studies and jobs started, progress read,
// server-sent events to the end, trials, the report, stop; and the refusals (token, spec, size, ids).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { clientEnv, mlpJob, mlpStudy } from '../client/fixtures/specs.ts';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { type Runtime, runtimeNames, runtimes } from '../harness/runtimes.ts';

const services = inject('services');
const worker = useInProcessWorker('edge', services.temporal);
const main = path.resolve('edge/src/main.ts');
const token = 'test-token-0123456789abcdef';

// biome-ignore lint/suspicious/noExplicitAny: the tests read the API's JSON field by field
const json = (response: Response): Promise<any> => response.json();

/** Starts the API process and resolves once it printed where it listens. */
function startApi(runtime: Runtime, env: Record<string, string>): Promise<{ url: string; process: ChildProcess }> {
  const [command, ...args] = [...runtimes[runtime], main];
  // Its own process group, so nothing it started can outlive the test (stopApi signals the group).
  const child = spawn(command as string, args, {
    env: { ...process.env, ...clientEnv(worker), KEEL_API_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+) \((\w+)\)/.exec(output);
      if (match) {
        expect(match[2]).toBe(runtime);
        resolve({ url: match[1] as string, process: child });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('exit', (code) => reject(new Error(`the API exited with ${code}: ${output}`)));
  });
}

/** SIGTERM to the API's process group; its exit code (SIGKILL after 10 s: then null). */
async function stopApi(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.kill(-(child.pid as number), 'SIGTERM');
  const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** Reads server-sent events until `end` (or the stream closes). */
async function readEvents(response: Response): Promise<{ event: string; data: unknown }[]> {
  const events: { event: string; data: unknown }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as ReadableStream<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
      events.push({ event, data });
      if (event === 'end') return events;
      end = buffer.indexOf('\n\n');
    }
  }
  return events;
}

describe.each(runtimeNames)('the HTTP API under %s', (runtime) => {
  let api: { url: string; process: ChildProcess };
  const call = (route: string, init: RequestInit = {}, auth = `Bearer ${token}`) =>
    fetch(`${api.url}${route}`, {
      ...init,
      headers: { authorization: auth, 'content-type': 'application/json', ...init.headers },
    });
  const post = (route: string, body: unknown) => call(route, { method: 'POST', body: JSON.stringify(body) });

  beforeAll(async () => {
    api = await startApi(runtime, { KEEL_API_TOKEN: token });
  });
  afterAll(async () => {
    // SIGTERM stops it cleanly: it closes the server and its clients, and exits 0.
    if (api) expect(await stopApi(api.process)).toBe(0);
  });

  test('a study: started, progress, events to the end, trials, report', async () => {
    const id = `api-${runtime}-${Date.now()}`;
    const started = await post(`/v1/studies?id=${id}`, mlpStudy(worker, { nTrials: 3 }));
    expect(started.status).toBe(201);
    expect(started.headers.get('location')).toBe(`/v1/studies/${id}`);
    expect(await json(started)).toMatchObject({ id, links: { events: `/v1/studies/${id}/events` } });

    const progress = await json(await call(`/v1/studies/${id}`));
    expect(progress).toMatchObject({ studyId: id, nTrials: 3 });

    const stream = await call(`/v1/studies/${id}/events`);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const events = await readEvents(stream);
    expect(events.at(-1)).toEqual({ event: 'end', data: { id } });
    const updates = events
      .filter((e) => e.event === 'progress')
      .map((e) => e.data as { status: string; counts: { completed: number } });
    expect(updates.length).toBeGreaterThan(1);
    expect(updates.at(-1)).toMatchObject({ status: 'completed', counts: { completed: 3 } });

    const trials = await json(await call(`/v1/studies/${id}/trials`));
    expect(trials.map((t: { number: number; state: string }) => [t.number, t.state])).toEqual([
      [0, 'completed'],
      [1, 'completed'],
      [2, 'completed'],
    ]);
    const report = await call(`/v1/studies/${id}/report`);
    expect(report.headers.get('content-type')).toContain('text/html');
    expect(await report.text()).toContain('data-chart="parallel"');
  });

  test('a job: started, progress, stopped, its checkpoints listed', async () => {
    const created = await post('/v1/jobs', mlpJob(worker, { steps: 100_000, stepDelayMs: 5 }));
    expect(created.status).toBe(201);
    const { id } = await json(created);
    let committed = 0;
    while (committed === 0) committed = (await json(await call(`/v1/jobs/${id}`))).checkpoints.committed;
    expect((await post(`/v1/jobs/${id}/stop`, { reason: 'from the api' })).status).toBe(202);
    let status = 'running';
    while (status === 'running') status = (await json(await call(`/v1/jobs/${id}`))).status;
    expect(status).toBe('stopped');
    const rows = await json(await call(`/v1/jobs/${id}/checkpoints`));
    expect(rows.some((r: { status: string }) => r.status === 'committed')).toBe(true);
  });

  test('stop answers with the progress of a stopping study', async () => {
    const spec = mlpStudy(worker, { nTrials: 20 });
    spec.trial.params = { ...spec.trial.params, steps: 100_000, stepDelayMs: 5 };
    const { id } = await json(await post('/v1/studies', spec));
    const stopped = await post(`/v1/studies/${id}/stop`, { reason: 'api test' });
    expect(stopped.status).toBe(200);
    expect(await json(stopped)).toMatchObject({ studyId: id, status: 'stopping', stopReason: 'api test' });
  });

  test('refusals: token, spec, size, ids', async () => {
    const none = await call('/v1/studies/x', {}, '');
    expect(none.status).toBe(401);
    expect((await json(none)).error).toBe('unauthorized');
    expect((await call('/v1/studies/x', {}, 'Bearer wrong-token-0123456789')).status).toBe(401);

    const invalid = await post('/v1/studies', { ...mlpStudy(worker), nTrials: 0, extra: 1 });
    expect(invalid.status).toBe(400);
    const body = await json(invalid);
    expect(body.error).toBe('invalid_spec');
    expect(body.issues.map((i: { field: string }) => i.field)).toEqual(expect.arrayContaining(['nTrials']));
    expect(body.message).toContain('extra');

    const notJson = await call('/v1/jobs', { method: 'POST', body: '{"command":' });
    expect(notJson.status).toBe(400);
    expect((await json(notJson)).issues[0].field).toBe('(body)');

    const huge = await post('/v1/jobs', { ...mlpJob(worker), env: { BIG: 'x'.repeat(2 * 1024 * 1024) } });
    expect(huge.status).toBe(413);
    expect((await json(huge)).error).toBe('payload_too_large');

    const missing = await call('/v1/studies/no-such-study');
    expect(missing.status).toBe(404);
    expect(await json(missing)).toMatchObject({ error: 'not_found', kind: 'study', id: 'no-such-study' });
    expect((await call('/v1/jobs/no-such-job/checkpoints')).status).toBe(404);
    expect((await call('/v1/studies/no-such-study/report')).status).toBe(404);
    expect((await call('/v1/nothing-here')).status).toBe(404);
    expect((await post('/v1/studies?id=has%20space', mlpStudy(worker))).status).toBe(400);
  });
});

describe('API settings', () => {
  const run = promisify(execFile);
  test('without a token it refuses any address but loopback, naming the fix', async () => {
    const err = await run(process.execPath, [main], {
      env: { ...process.env, ...clientEnv(worker), KEEL_API_HOST: '0.0.0.0', KEEL_API_TOKEN: '' },
    }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('refusing to serve on 0.0.0.0 without a token: set KEEL_API_TOKEN');
  });

  test('without a token on loopback it serves, unauthenticated', async () => {
    const open = await startApi('node', { KEEL_API_TOKEN: '' });
    try {
      const response = await fetch(`${open.url}/v1/studies/no-such-study`);
      expect(response.status).toBe(404);
    } finally {
      await stopApi(open.process);
    }
  });
});
