// Benchmark (issue #4): resume after kill -9. A job runs a fixed-step-time trainer that
// checkpoints every K steps; at a seeded random step the worker and its trainer are killed with
// SIGKILL and a new worker is started. Measured per run: the time from the kill to the first step
// of the resumed attempt (goal: heartbeat timeout + 5 s) and the steps lost, the step reached at
// the kill minus the step resumed from (goal: <= one checkpoint interval). A Temporal dev server
// (the test harness's), SQLite and file:// storage; workers are real `keel worker` processes.
// Prints JSON, then tables.
// Run: npm run bench -- resume-latency
//   --runs 3  --heartbeat-seconds 10  --every 20 (K, steps per checkpoint)  --step-ms 50
//   --seed 1 (where the kills land)  --out file.json
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient } from '@keel/client';
import { startServices } from '@keel/test/harness';
import { median, positive, round, table } from './report.ts';
import { measureRun, type RunResult } from './resume-run.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'heartbeat-seconds': { type: 'string', default: '10' },
    every: { type: 'string', default: '20' },
    'step-ms': { type: 'string', default: '50' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
const option = (name: keyof typeof args, integer = true) => positive(args[name] as string, `--${name}`, integer);
const runs = option('runs');
const heartbeatSeconds = option('heartbeat-seconds');
if (heartbeatSeconds < 5) throw new Error('--heartbeat-seconds must be at least 5 (the job spec minimum)');
const every = option('every');
const stepMs = option('step-ms', false);
const seed = option('seed');
const goalSeconds = heartbeatSeconds + 5;
// The kill lands after the second checkpoint and before the fourth: a committed checkpoint exists.
const random = mulberry32(seed);
const killSteps = Array.from({ length: runs }, () => 2 * every + 1 + Math.floor(random() * 2 * every));
const steps = 6 * every;

const services = await startServices(['temporal']);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-resume-'));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    try {
      process.kill(-services.pids.temporal, 'SIGKILL');
    } catch {
      // already gone
    }
    fs.rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
}
const results: RunResult[] = [];
try {
  const temporal = services.endpoints.temporal;
  const client = await connectClient({ connectionOptions: { address: temporal.address } });
  try {
    for (let run = 1; run <= runs; run++) {
      const dir = path.join(work, `run-${run}`);
      fs.mkdirSync(dir);
      const killAfterStep = killSteps[run - 1] as number;
      console.error(`run ${run}/${runs}: kill -9 after step ${killAfterStep}`);
      const result = await measureRun({
        run,
        client,
        temporal,
        dir,
        every,
        stepMs,
        steps,
        killAfterStep,
        heartbeatSeconds,
      });
      console.error(`run ${run}: ${JSON.stringify(result)}`);
      results.push(result);
    }
  } finally {
    await client.connection.close();
  }
} finally {
  await services.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

const latencies = results.map((r) => r.killToFirstStepSeconds);
const lost = results.map((r) => r.stepsLost);
const result = {
  benchmark: 'resume-latency',
  target: 'Temporal dev server on loopback, SQLite, file:// storage; `keel worker` processes on one machine',
  goals: { killToFirstStepSeconds: `<= heartbeat timeout + 5 = ${goalSeconds}`, stepsLost: `<= ${every}` },
  settings: { runs, heartbeatSeconds, checkpointEverySteps: every, stepMs, steps, seed },
  machine: { cpus: os.availableParallelism(), loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2) },
  summary: {
    killToFirstStepSeconds: { median: round(median(latencies), 3), max: round(Math.max(...latencies), 3) },
    stepsLost: { median: median(lost), max: Math.max(...lost) },
    withinGoals: results.filter((r) => r.killToFirstStepSeconds <= goalSeconds && r.stepsLost <= every).length,
  },
  runs: results,
};
console.log(JSON.stringify(result, null, 2));
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);

const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
const s = (v: number | null) => (v === null ? '-' : v.toFixed(2));
console.log(
  `\nResume after kill -9 of the worker and its trainer (heartbeat timeout ${heartbeatSeconds} s, a checkpoint every ${every} steps of ${stepMs} ms; ${runs} runs):\n\n${table(
    ['run', 'killed at step', 'resumed from', 'steps lost', 'goal', 'kill → first step s', 'goal s', 'within goals'],
    [
      ...results.map((r) => [
        r.run,
        r.stepAtKill,
        r.resumedFromStep,
        r.stepsLost,
        `<= ${every}`,
        r.killToFirstStepSeconds.toFixed(2),
        `<= ${goalSeconds}`,
        yes(r.killToFirstStepSeconds <= goalSeconds && r.stepsLost <= every),
      ]),
      ['median', '', '', median(lost), '', median(latencies).toFixed(2), '', ''],
    ],
  )}\n\nWhere the time went, seconds after the kill (the new worker was started at the kill):\n\n${table(
    [
      'run',
      'new worker ready',
      'attempt timed out',
      'workflow task',
      'new attempt scheduled',
      'picked up',
      'trainer started',
      'first step',
      'workflow task timeouts',
      'job ended',
    ],
    results.map((r) => [
      r.run,
      s(r.timeline.newWorkerReady),
      s(r.timeline.attemptTimedOut),
      s(r.timeline.workflowTaskStarted),
      s(r.timeline.attemptScheduled),
      s(r.timeline.attemptPickedUp),
      s(r.timeline.trainerStarted),
      s(r.timeline.firstStep),
      r.workflowTaskTimeouts.join(' ') || '-',
      s(r.job.endedAfterKillSeconds),
    ]),
  )}`,
);
if (results.some((r) => r.workflowTaskTimeouts.includes('SCHEDULE_TO_START'))) {
  console.log(
    "\nSCHEDULE_TO_START: the first workflow task after the kill went to the dead worker's sticky queue and waited\n" +
      "there out its schedule-to-start timeout (stickyQueueScheduleToStartTimeout: 3 s in keel's workers, 10 s\n" +
      'by the SDK\'s default) before going to the queue the new worker polls; "workflow task" is the one that\n' +
      'scheduled the new attempt.',
  );
}
for (const r of results.filter((r) => r.retriedActivities.length > 0)) {
  console.log(
    `\nrun ${r.run}: retried: ${r.retriedActivities.join('; ')}. ` +
      `The job ended ${r.job.endedAfterLastStepSeconds.toFixed(1)} s after its trainer's last step.`,
  );
}
for (const r of results) {
  if (r.job.status !== 'completed' || r.job.attempts !== 2) {
    console.log(`\nrun ${r.run}: the job ended ${r.job.status} after ${r.job.attempts} attempts (${r.job.lastError})`);
  }
}

/** A small seeded PRNG, so the kill points are the same for the same --seed. */
function mulberry32(a: number): () => number {
  let state = a >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
