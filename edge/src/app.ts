// keel's HTTP API: a Hono app over KeelClient, so it serves the same on Node, Bun and Deno.
//   POST /v1/jobs                     body: a job spec (JSON); ?id= picks the job id   → 201
//   GET  /v1/jobs/:id                 the job's progress
//   GET  /v1/jobs/:id/checkpoints     its checkpoint rows
//   POST /v1/jobs/:id/stop            body (optional): {"reason": "…"}                  → 202
//   POST /v1/studies                  body: a study spec (JSON); ?id= picks the study id → 201
//   GET  /v1/studies/:id              the study's progress
//   GET  /v1/studies/:id/trials       its trials as recorded (params, state, value, error)
//   GET  /v1/studies/:id/events       server-sent events: `progress` on each change, then `end`
//   POST /v1/studies/:id/stop|pause|resume                                               → 200 progress
//   GET  /v1/studies/:id/report       the self-contained HTML report
// Every route but /healthz needs `Authorization: Bearer <token>` when a token is configured.
// Errors are JSON: {"error": "<code>", "message": "…"} (+ "issues" naming fields for specs).
import { InvalidSpecError, type KeelClient, MAX_SPEC_BYTES, NotFoundError } from '@keel/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { type Context, Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { limitBody } from './body-limit.ts';

export interface ApiOptions {
  keel: KeelClient;
  /** Bearer token every request must carry; undefined: no auth (only allowed on loopback). */
  token: string | undefined;
  /** Largest request body accepted (default MAX_SPEC_BYTES, 1 MiB, the client's spec limit). */
  maxBodyBytes?: number;
}

class BadRequest extends Error {
  readonly issues: { field: string; message: string }[];
  constructor(message: string, issues: { field: string; message: string }[] = []) {
    super(message);
    this.issues = issues;
  }
}

const idSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\w.:@-]+$/, 'use letters, digits and . _ - : @');
const stopBody = z.strictObject({ reason: z.string().max(1000).optional() });

export function createApp(options: ApiOptions): Hono {
  const { keel } = options;
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ ok: true }));

  if (options.token) {
    const unauthorized = (message: string) => ({ error: 'unauthorized', message });
    app.use(
      '/v1/*',
      bearerAuth({
        token: options.token, // compared in constant time (hashes of both, timingSafeEqual)
        noAuthenticationHeader: { message: unauthorized('send Authorization: Bearer <KEEL_API_TOKEN>') },
        invalidAuthenticationHeader: { message: unauthorized('the Authorization header must be "Bearer <token>"') },
        invalidToken: { message: unauthorized('wrong token') },
      }),
    );
  }

  const maxBodyBytes = options.maxBodyBytes ?? MAX_SPEC_BYTES;
  app.use(
    '/v1/*',
    limitBody(maxBodyBytes, (c) => {
      const message =
        `request body over ${maxBodyBytes} bytes: keep large data out of the spec (params, env), ` +
        'put it in storage and pass its path or URI';
      return c.json({ error: 'payload_too_large', message }, 413);
    }),
  );
  app.post('/v1/jobs', async (c) => {
    const started = await keel.startJob(await jsonBody(c), optionalId(c));
    return created(c, 'jobs', started.jobId, started.runId);
  });
  app.get('/v1/jobs/:id', async (c) => c.json(await keel.jobProgress(param(c))));
  app.get('/v1/jobs/:id/checkpoints', async (c) => c.json(await keel.listCheckpoints(param(c))));
  app.post('/v1/jobs/:id/stop', async (c) => {
    const body = await optionalBody(c, stopBody);
    await keel.stopJob(param(c), body.reason);
    return c.json({ id: param(c), stopping: true }, 202);
  });

  app.post('/v1/studies', async (c) => {
    const started = await keel.startStudy(await jsonBody(c), optionalId(c));
    return created(c, 'studies', started.studyId, started.runId);
  });
  app.get('/v1/studies/:id', async (c) => c.json(await keel.studyProgress(param(c))));
  app.get('/v1/studies/:id/trials', async (c) => c.json(await keel.studyTrials(param(c))));
  app.post('/v1/studies/:id/stop', async (c) => {
    const body = await optionalBody(c, stopBody);
    return c.json(await keel.stopStudy(param(c), body.reason));
  });
  app.post('/v1/studies/:id/pause', async (c) => c.json(await keel.pauseStudy(param(c))));
  app.post('/v1/studies/:id/resume', async (c) => c.json(await keel.resumeStudy(param(c))));
  app.get('/v1/studies/:id/report', async (c) => c.html(await keel.studyReport(param(c))));
  app.get('/v1/studies/:id/events', async (c) => {
    const id = param(c);
    await keel.studyProgress(id); // a 404 before the stream starts, not an event inside it
    return streamSSE(c, async (stream) => {
      const aborted = new AbortController();
      stream.onAbort(() => aborted.abort());
      let n = 0;
      for await (const progress of keel.watchStudy(id, { signal: aborted.signal })) {
        await stream.writeSSE({ event: 'progress', id: String(n++), data: JSON.stringify(progress) });
      }
      if (!aborted.signal.aborted) await stream.writeSSE({ event: 'end', data: JSON.stringify({ id }) });
    });
  });

  app.notFound((c) => c.json({ error: 'not_found', message: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    if (err instanceof BadRequest)
      return c.json({ error: 'bad_request', message: err.message, issues: err.issues }, 400);
    if (err instanceof InvalidSpecError) {
      return c.json({ error: 'invalid_spec', message: err.message, issues: err.issues }, 400);
    }
    if (err instanceof NotFoundError)
      return c.json({ error: 'not_found', kind: err.kind, id: err.id, message: err.message }, 404);
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return c.json({ error: 'conflict', message: `'${err.workflowId}' already exists; pick another id` }, 409);
    }
    if (err instanceof WorkflowUpdateFailedError) {
      // The study's validator refused (e.g. a concurrency out of range): the caller's input.
      const cause = err.cause instanceof Error ? err.cause.message : err.message;
      return c.json({ error: 'rejected', message: cause }, 400);
    }
    if ('getResponse' in err && typeof err.getResponse === 'function') return err.getResponse(); // Hono's own
    console.error('keel api:', err);
    return c.json({ error: 'internal', message: err.message }, 500);
  });
  return app;
}

function param(c: Context): string {
  const parsed = idSchema.safeParse(c.req.param('id'));
  if (!parsed.success)
    throw new BadRequest(`invalid id: ${parsed.error.issues[0]?.message}`, [{ field: 'id', message: 'invalid' }]);
  return parsed.data;
}

function optionalId(c: Context): { id?: string } {
  const id = c.req.query('id');
  if (id === undefined) return {};
  const parsed = idSchema.safeParse(id);
  if (!parsed.success) {
    const message = parsed.error.issues[0]?.message ?? 'invalid';
    throw new BadRequest(`invalid ?id=: ${message}`, [{ field: 'id', message }]);
  }
  return { id: parsed.data };
}

// biome-ignore lint/suspicious/noExplicitAny: a spec is validated by KeelClient with the workflows' schema
async function jsonBody(c: Context): Promise<any> {
  try {
    return await c.req.json();
  } catch {
    throw new BadRequest('the request body must be a JSON spec (Content-Type: application/json)', [
      { field: '(body)', message: 'not JSON' },
    ]);
  }
}

async function optionalBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      throw new BadRequest('the request body must be JSON', [{ field: '(body)', message: 'not JSON' }]);
    }
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
  throw new BadRequest(`invalid body: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, issues);
}

function created(c: Context, collection: 'jobs' | 'studies', id: string, runId: string) {
  const self = `/v1/${collection}/${encodeURIComponent(id)}`;
  c.header('Location', self);
  const links = collection === 'studies' ? { self, events: `${self}/events`, report: `${self}/report` } : { self };
  return c.json({ id, runId, links }, 201);
}
