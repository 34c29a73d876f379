// A worker's /metrics and /healthz (KEEL_METRICS_PORT), as a pod runs it: a real `runWorker`
// process against the real dev server. keel's counters grow by what the database says happened
// (checkpoint rows and their bytes, one resume), the GPU gauges follow KEEL_GPUS and a running
// trainer, Temporal's SDK metrics come in the same scrape, and the text is Prometheus' format.
// /healthz answers 200 while the worker serves, 503 naming the reason once SIGTERM began its
// shutdown.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeelClient } from '@keel/client';
import { afterAll, beforeAll, describe, expect, inject, test, vi } from 'vitest';
import { mlpJob } from '../client/fixtures/specs.ts';
import { startWorkerProcess, type WorkerProcess } from '../harness/worker-process.ts';
import { testWorkerConfig } from '../harness/workers.ts';

const services = inject('services');
const name = `metrics-${process.pid}`;
const hostId = `metrics-host-${process.pid}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-metrics-'));
const config = testWorkerConfig(home, services.temporal, name, { hostId, metrics: { host: '127.0.0.1', port: 0 } });
let worker: WorkerProcess;
let exited: Promise<number | null>;
let metricsUrl: string;
let healthUrl: string;
let keel: KeelClient;
const started: string[] = [];

beforeAll(async () => {
  vi.stubEnv('KEEL_GPUS', '0,1'); // the child inherits it
  worker = startWorkerProcess(config);
  exited = new Promise((resolve) => worker.child.once('exit', (code) => resolve(code)));
  metricsUrl = await waitFor(() => /keel worker: metrics on (http:\/\/\S+)/.exec(worker.output())?.[1], 'metrics line');
  healthUrl = metricsUrl.replace(/\/metrics$/, '/healthz');
  keel = await KeelClient.connect({
    temporal: { connectionOptions: { address: services.temporal.address }, namespace: services.temporal.namespace },
    taskQueue: name,
    databaseUrl: config.databaseUrl,
  });
});
afterAll(async () => {
  for (const jobId of started)
    await keel?.temporal.workflow
      .getHandle(jobId)
      .terminate('test over')
      .catch(() => {});
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.child.kill('SIGKILL');
    await exited;
  }
  await keel?.close();
  vi.unstubAllEnvs();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('worker /metrics and /healthz', () => {
  test("keel's counters match the database, GPU gauges match KEEL_GPUS, Temporal's metrics come along", async () => {
    const health = await waitFor(async () => {
      const res = await fetch(healthUrl);
      return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
    }, 'healthz 200');
    expect(health).toMatchObject({ ok: true, gpus: { total: 2, busy: 0 }, trainers: 0 });
    expect(Object.values(health.workers as Record<string, string>)).toEqual(['RUNNING', 'RUNNING', 'RUNNING']);

    const before = await scrape();
    expect(before.value('keel_gpu_slots')).toBe(2);
    expect(before.value('keel_gpu_slots_busy')).toBe(0);
    expect(before.value('keel_checkpoints_staged_total')).toBe(0);
    expect(before.text).toContain(`keel_gpu_slots{host="${hostId}"} 2`);

    // Attempt 1 fails at step 250, after staging 100 and 200; attempt 2 resumes from a committed one.
    const { jobId } = await keel.startJob(mlpJob({ name }, { failAtStep: 250 }), { id: `metrics-job-${Date.now()}` });
    started.push(jobId);
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      keel.jobResult(jobId),
      new Promise<never>((_, reject) => {
        timer = setTimeout(async () => {
          const progress = await keel.jobProgress(jobId).catch((e) => e);
          reject(
            new Error(`the job did not end in 60 s: ${JSON.stringify(progress)}\n${worker.output().slice(-6000)}`),
          );
        }, 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(result.status).toBe('completed');
    expect(result.attempts).toBe(2);
    expect((await keel.jobProgress(jobId)).resumedFromStep).not.toBeNull();

    const rows = await keel.listCheckpoints(jobId);
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const row of rows) expect(['committed', 'gc']).toContain(row.status);
    const bytes = rows.reduce((sum, row) => sum + row.bytes, 0);
    expect(bytes).toBeGreaterThan(0);

    const after = await scrape();
    const grew = (metric: string) => after.value(metric) - before.value(metric);
    expect(grew('keel_checkpoints_staged_total')).toBe(rows.length);
    expect(grew('keel_upload_bytes_total')).toBe(bytes);
    expect(grew('keel_resumes_total')).toBe(1);
    expect(after.value('keel_uploads_failed_total')).toBe(0);
    expect(after.value('keel_uploads_in_flight')).toBe(0);
    expect(after.value('keel_uploads_pending')).toBe(0);
    expect(after.value('keel_trainers_running')).toBe(0);
    expect(after.value('keel_gpu_slots')).toBe(2);
    expect(after.value('keel_gpu_slots_busy')).toBe(0);
    // Temporal's SDK metrics, from Core's exporter, in the same answer: its slots, its requests,
    // and the activities this worker ran.
    expect(after.names).toContain('temporal_worker_task_slots_available');
    expect(after.names).toContain('temporal_request');
    expect(after.value('temporal_activity_execution_latency_count', { task_queue: `${name}-gpu` })).toBeGreaterThan(0);
    expect(after.names).toContain('process_resident_memory_bytes');
  });

  test('a trainer holding a GPU shows in the gauges; /healthz turns 503 once SIGTERM begins the shutdown', async () => {
    const spec = { ...mlpJob({ name }, { steps: 1_000_000, stepDelayMs: 20 }), gpus: 1 };
    const { jobId } = await keel.startJob(spec, { id: `metrics-gpu-job-${Date.now()}` });
    started.push(jobId);
    const running = await waitFor(async () => {
      const s = await scrape();
      return s.value('keel_trainers_running') === 1 ? s : undefined;
    }, 'a running trainer');
    expect(running.value('keel_gpu_slots_busy')).toBe(1);
    expect(running.value('keel_gpu_slots')).toBe(2);
    const busy = (await (await fetch(healthUrl)).json()) as Record<string, unknown>;
    expect(busy).toMatchObject({ ok: true, gpus: { total: 2, busy: 1 }, trainers: 1 });

    worker.child.kill('SIGTERM');
    // The preempted trainer saves and the workers drain before the process ends: /healthz says so.
    let answer: { status: number; body: Record<string, unknown> } | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const res = await fetch(healthUrl).catch(() => undefined);
      if (!res) break; // the server is gone: the process finished shutting down
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status !== 200) {
        answer = { status: res.status, body };
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(answer, worker.output().slice(-3000)).toBeDefined();
    expect(answer?.status).toBe(503);
    expect(answer?.body).toMatchObject({ ok: false, reason: 'shutting down' });
    expect(await exited).toBe(0);
  });
});

interface Scrape {
  text: string;
  /** Metric names with samples. */
  names: string[];
  /** The sum of the samples of `metric` whose labels include `labels`. */
  value(metric: string, labels?: Record<string, string>): number;
}

// A sample line: name, optional {labels}, value, optional timestamp (text format 0.0.4).
const labelPair = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"`;
const sampleLine = new RegExp(
  String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:${labelPair})(?:,${labelPair})*,?)?\})? ` +
    String.raw`(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)(?: -?\d+)?$`,
);
const commentLine = /^#(?: (?:HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*| .*)?$/;

async function scrape(): Promise<Scrape> {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const typed = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      expect(line, 'a comment line').toMatch(commentLine);
      const family = /^# TYPE (\S+) /.exec(line)?.[1];
      if (family) typed.set(family, (typed.get(family) ?? 0) + 1);
      continue;
    }
    const m = sampleLine.exec(line);
    expect(m, `not a Prometheus sample line: ${line}`).not.toBeNull();
    const [, metric = '', labelText = '', value = ''] = m ?? [];
    const labels = Object.fromEntries(
      [...labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    samples.push({ name: metric, labels, value: Number(value) });
  }
  // keel's and Temporal's families never overlap: each is declared once.
  for (const [family, count] of typed) expect(count, `# TYPE ${family} declared ${count} times`).toBe(1);
  return {
    text,
    names: [...new Set(samples.map((s) => s.name))],
    value(metric, labels = {}) {
      const found = samples.filter(
        (s) => s.name === metric && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      );
      if (found.length === 0) throw new Error(`no sample of ${metric} ${JSON.stringify(labels)} in:\n${text}`);
      return found.reduce((sum, s) => sum + s.value, 0);
    },
  };
}

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, ms = 90_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    const got = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; worker output:\n${worker.output().slice(-3000)}`);
}
