// The trainer of the resume-latency benchmark: fixed-time steps (a sleep of params.stepMs), a
// checkpoint every params.every steps (a tiny state file: the step), resuming from keel's
// checkpoint. It appends one JSON line per event to params.stepLog (epoch ms, comparable with the
// benchmark's clock): {attempt, startedAt, from, pid} once at start, then {attempt, step, at} per
// step, so the benchmark sees the step reached at a kill and the first step after the resume.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@keel/sdk';
import { epochMs } from './step-work.ts';

interface Params {
  steps: number;
  every: number;
  stepMs: number;
  stepLog: string;
}

const startedAt = epochMs();
const keel = await connect();
const params = keel.params<Params>();
const log = (entry: object) => fs.appendFileSync(params.stepLog, `${JSON.stringify(entry)}\n`);
let step = 0;
if (keel.resumeFrom) {
  ({ step } = JSON.parse(fs.readFileSync(path.join(keel.resumeFrom.path, 'state.json'), 'utf8')));
}
log({ attempt: keel.attempt, startedAt, connectedAt: epochMs(), from: step, pid: process.pid });
while (step < params.steps) {
  await sleep(params.stepMs); // the step's "work"
  step += 1;
  log({ attempt: keel.attempt, step, at: epochMs() });
  keel.report(step, { step });
  if (step % params.every === 0 || step === params.steps) {
    const dir = path.join(keel.checkpointDir, `step-${step}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ step }));
    await keel.checkpoint(step, `step-${step}`, { step });
  }
}
await keel.done({ step });
