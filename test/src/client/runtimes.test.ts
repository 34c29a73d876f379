// Scripts use @keel/client from Node, Bun and Deno (both from the npm registry, devDependencies):
// each runtime runs the same script, which starts a study and reads its progress and its trials'
// rows, against the real dev server, worker and database.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KeelClient } from '@keel/client';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';
import { runtimeNames, runtimes } from '../harness/runtimes.ts';
import { clientEnv, mlpStudy } from './fixtures/specs.ts';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./fixtures/start-study.ts', import.meta.url));

const services = inject('services');
const worker = useInProcessWorker('client-rt', services.temporal);
let keel: KeelClient;
beforeAll(async () => {
  keel = await KeelClient.connect({
    temporal: { connectionOptions: { address: services.temporal.address } },
    taskQueue: worker.name,
    databaseUrl: worker.config.databaseUrl,
  });
});
afterAll(() => keel?.close());

describe('a script on each runtime', () => {
  test.each(runtimeNames)('starts a study and reads its progress under %s', async (runtime) => {
    const [command, ...args] = runtimes[runtime];
    const spec = mlpStudy(worker, { name: `from ${runtime}`, nTrials: 2 });
    const { stdout } = await run(command as string, [...args, script, JSON.stringify(spec)], {
      env: { ...process.env, ...clientEnv(worker) },
    });
    const out = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    expect(out.studyId).toMatch(new RegExp(`^study-from-${runtime}-`));
    expect(out.progress.studyId).toBe(out.studyId);
    expect(out.progress.nTrials).toBe(2);
    expect(out.progress.trials.some((t: { step: number | null }) => t.step !== null)).toBe(true);
    expect(out.trials).toBeGreaterThan(0);
    // The study it started is a real one: it runs to the end on the worker.
    const result = await keel.studyResult(out.studyId);
    expect(result.counts.completed).toBe(2);
  });
});
