// GPU slots across jobs on one worker. This machine has no GPU, so the worker's devices come from
// KEEL_GPUS (the setting a host uses to offer some of its GPUs): the scheduling is keel's real
// code, only the devices are named rather than found by nvidia-smi.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JobSpecInput, trainingJob } from '@keel/workflows';
import { WorkflowFailedError } from '@temporalio/client';
import { expect, inject, test, vi } from 'vitest';
import { useInProcessWorker } from '../harness/in-process-worker.ts';

const services = inject('services');
const trainer = fileURLToPath(new URL('./fixtures/device-trainer.ts', import.meta.url));

const worker = useInProcessWorker('gpus', services.temporal, async () => {
  vi.stubEnv('KEEL_GPUS', '0,1');
});
const { name } = worker;

interface Held {
  label: string;
  devices: string | null;
  startedAt: number;
  endedAt: number;
}

const spec = (label: string, gpus: number, logFile: string, holdMs: number): JobSpecInput => ({
  command: [process.execPath, trainer],
  params: { label, logFile, holdMs },
  gpus,
  gpuTaskQueue: `${name}-gpu`,
});

const run = (id: string, input: JobSpecInput) =>
  worker.client.workflow.start(trainingJob, { taskQueue: name, workflowId: `${id}-${Date.now()}`, args: [input] });

test('fake devices (KEEL_GPUS=0,1, no GPU here): two jobs get different CUDA_VISIBLE_DEVICES, a third waits for a free one', async () => {
  const logFile = path.join(worker.home, 'three.jsonl');
  const first = await run('slot-a', spec('a', 1, logFile, 3000));
  // b holds its device well after a gives its one back, so the one c gets is known.
  const second = await run('slot-b', spec('b', 1, logFile, 7000));
  // Only once both hold a device does the third job ask: it must wait for one of them.
  await vi.waitFor(() => expect(fs.readFileSync(`${logFile}.started`, 'utf8').trim().split('\n')).toHaveLength(2), {
    timeout: 30_000,
    interval: 100,
  });
  const third = await run('slot-c', spec('c', 1, logFile, 500));
  await Promise.all([first.result(), second.result(), third.result()]);

  const held: Held[] = fs
    .readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const by = Object.fromEntries(held.map((h) => [h.label, h])) as Record<string, Held>;
  expect(new Set([by.a?.devices, by.b?.devices])).toEqual(new Set(['0', '1']));
  // Two ran side by side; the third only started once one of them had given its device back.
  const a = by.a as Held;
  const b = by.b as Held;
  const c = by.c as Held;
  expect(Math.max(a.startedAt, b.startedAt)).toBeLessThan(Math.min(a.endedAt, b.endedAt));
  expect(c.startedAt).toBeGreaterThanOrEqual(a.endedAt);
  expect(c.devices).toBe(a.devices);
});

test('fake devices (KEEL_GPUS=0,1, no GPU here): a job asking for both gets CUDA_VISIBLE_DEVICES=0,1', async () => {
  const logFile = path.join(worker.home, 'both.jsonl');
  await (await run('slot-both', spec('both', 2, logFile, 300))).result();
  expect(JSON.parse(fs.readFileSync(logFile, 'utf8')).devices).toBe('0,1');
});

test('fake devices (KEEL_GPUS=0,1, no GPU here): a job asking for more GPUs than the host has fails, naming the shortfall', async () => {
  const handle = await run('slot-three', spec('three', 3, path.join(worker.home, 'never.jsonl'), 100));
  const failure = await handle.result().catch((err: unknown) => err);
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(/3 GPU/);
});
