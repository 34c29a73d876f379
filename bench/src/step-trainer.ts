// The trainer of the step-overhead benchmark: `steps` fixed steps, each `iterations` of CPU-bound
// work (hashWork) and then, for a GPU-shaped step, `waitMs` blocked without using the CPU (the
// kernels running on the device), and every `every` steps (0: never) a checkpoint handed to keel,
// which uploads it while training goes on.
// Writes each step's start (epoch ms), duration and CPU part's duration, and each checkpoint's send
// time and blocked time, to params.resultFile. Step times cover the compute only, not the
// checkpoint call between steps.
import fs from 'node:fs';
import path from 'node:path';
import { connect } from '@keel/sdk';
import { epochMs, hashWork, waitOnDevice } from './step-work.ts';

interface Params {
  iterations: number;
  /** 0 for a CPU-bound step. */
  waitMs: number;
  steps: number;
  every: number;
  /** Random bytes the benchmark wrote once; linked in as each checkpoint (same bytes, new file). */
  source: string;
  resultFile: string;
}

const keel = await connect();
const params = keel.params<Params>();
const steps: [startedAt: number, ms: number, cpuPartMs: number][] = [];
const checkpoints: { step: number; sentAt: number; blockedMs: number }[] = [];
for (let step = 1; step <= params.steps; step++) {
  const startedAt = epochMs();
  hashWork(params.iterations); // a CPU-bound step; a GPU-shaped one's Python and kernel launches
  const cpuPartMs = epochMs() - startedAt;
  if (params.waitMs > 0) waitOnDevice(params.waitMs);
  steps.push([startedAt, epochMs() - startedAt, cpuPartMs]);
  if (step % 10 === 0) keel.report(step, { stepMs: steps.at(-1)?.[1] ?? 0 }); // as trainers do, in both modes
  if (params.every > 0 && step % params.every === 0) {
    const file = path.join(keel.checkpointDir, `step-${step}.bin`);
    fs.linkSync(params.source, file);
    const sentAt = epochMs();
    await keel.checkpoint(step, file);
    checkpoints.push({ step, sentAt, blockedMs: epochMs() - sentAt });
    fs.rmSync(file);
  }
}
fs.writeFileSync(params.resultFile, JSON.stringify({ steps, checkpoints }));
await keel.done();
