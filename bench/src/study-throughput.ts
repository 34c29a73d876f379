// Benchmark (issue #5): the HPO study's parallel efficiency. A study of N trials of a fixed-length
// trainer (bench/src/study_throughput_trainer.py: keel's Python SDK, reports `loss` every 200 ms,
// lasts exactly --trial-seconds from its first line) runs at each concurrency in turn (random
// sampler, no pruner, gpus: 0). Measured per concurrency c:
// - makespan: from the client's start call to the study's result; ideal = ceil(N / c) * trial
//   seconds; efficiency = ideal / makespan (goal >= 0.9 at 16); per-trial overhead =
//   (makespan - ideal) / (N / c).
// - slot idle time: the trainers log their wall-clock start and end; each start after the first c
//   takes over the slot of the oldest not-yet-taken end before it (first freed, first refilled),
//   and the gap between them is the slot's idle time (goal p50 <= 150 ms). The interpreter's
//   start-up before the trainer's first line is idle time. The JSON also has the simpler lower
//   bound, each start minus the latest end before it.
// - where a handover's time goes: launch c + k is caused by the k-th trial end the study received;
//   its chain from the ending trainer's last line to the new trainer's first line is split at the
//   events of the two jobs' and the study's histories (regular activities get milestones of their
//   own; local activities are inside the workflow task that ran them). Also: the study's launch
//   rate, workflow-task and activity latencies, and CPU per process (/proc).
// A Temporal dev server (the test harness's), one `keel worker` process (the CLI, with the
// Temporal SDK's default slots), SQLite and file:// storage in a temporary folder.
// Run: npm run bench -- study-throughput
//   --trials 64  --concurrency 1,4,8,16  --trial-seconds 2  --step-ms 200  --seed 1  --out file.json
//   --python PATH (default: the interpreter `python3` runs, resolved, so that a shim in front of
//   it, e.g. pyenv's shell script, is not timed as part of every trial's start-up)
//   --temporal HOST:PORT (a running server instead of the harness's)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { trialEndedSignalName, trialReportSignalName } from '@keel/activities/contract';
import { connectClient } from '@keel/client';
import { type ManagedProcess, spawnManaged, stopManaged } from '@keel/client/processes';
import { startServices } from '@keel/test/harness';
import { hpoStudy, type StudySpecInput } from '@keel/workflows';
import { percentile, positive, round, table } from './report.ts';
import {
  activityLatencies,
  burstSegmentLabels,
  burstSegmentNames,
  gapsToLatestEnd,
  type HistoryTimes,
  handovers,
  historyTimes,
  launchBurst,
  parseTrainerLog,
  peakOverlap,
  segmentLabels,
  segmentNames,
  slotGaps,
  studyLoad,
  type TrainerRun,
  workflowTaskLatencies,
} from './study-throughput-analysis.ts';

const { values: args } = parseArgs({
  options: {
    trials: { type: 'string', default: '64' },
    concurrency: { type: 'string', default: '1,4,8,16' },
    'trial-seconds': { type: 'string', default: '2' },
    'step-ms': { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    python: { type: 'string' },
    temporal: { type: 'string' },
    out: { type: 'string' },
  },
});
const trials = positive(args.trials, '--trials');
const concurrencies = args.concurrency.split(',').map((c) => positive(c.trim(), '--concurrency'));
const trialSeconds = positive(args['trial-seconds'], '--trial-seconds', false);
const stepMs = positive(args['step-ms'], '--step-ms', false);
const seed = positive(args.seed, '--seed');

const repo = path.resolve(import.meta.dirname, '../..');
const cli = path.join(repo, 'client/src/cli.ts');
const trainer = path.join(import.meta.dirname, 'study_throughput_trainer.py');
const sdkPath = path.join(repo, 'sdk/python/src');
const name = `throughput-${process.pid}`;
/** What the worker runs (read at start: the working tree may change while the benchmark runs). */
const code = codeVersion();
const epochMs = () => performance.timeOrigin + performance.now();
const python = args.python ?? resolvePython();

/** The interpreter `python3` starts (its sys.executable). */
function resolvePython(): string {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return (r.status === 0 && r.stdout.trim()) || 'python3';
}

// The interpreter's start-up, which the trainer cannot time itself (it happens before its first
// line): `python3 -c pass`, median of 9, on an idle machine.
const pythonStartupMs = (() => {
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const started = epochMs();
    const r = spawnSync(python, ['-c', 'pass']);
    if (r.status !== 0) throw new Error(`${python} -c pass failed: ${r.stderr?.toString()}`);
    times.push(epochMs() - started);
  }
  return percentile(times, 0.5);
})();

// ---- CPU accounting (Linux /proc) ----
const clockTicks = 100; // USER_HZ on Linux
function processCpuSeconds(pid: number): number | null {
  if (!pid) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime, stime
  } catch {
    return null;
  }
}
function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / clockTicks, total: total / clockTicks };
}

interface ConcurrencyResult {
  concurrency: number;
  makespanSeconds: number;
  idealSeconds: number;
  efficiency: number;
  perTrialOverheadMs: number;
  /** From the study's workflow history: started -> completed. */
  studyWorkflowSeconds: number;
  peakConcurrentTrainers: number;
  slotIdleMs: { n: number; p50: number; p95: number; max: number; mean: number };
  /** The simpler lower bound: each start minus the latest end before it. */
  slotIdleToLatestEndMs: { p50: number; p95: number };
  /** Study start (client call) -> the c-th trainer's first line: all slots filled. */
  fillSlotsSeconds: number;
  /** Study start -> the first trainer's first line. */
  firstTrainerSeconds: number;
  /** The last trainer's end -> the study's result at the client. */
  tailSeconds: number;
  /** The last trainer's end -> the last trialEnded signal in the study's history -> the study closed. */
  tailMs: { toLastEndSignal: number; toStudyClosed: number; lastStudyTask: number };
  /** Failed workflow tasks (e.g. UNHANDLED_COMMAND: an event arrived while the task completed). */
  workflowTaskFailures: { study: Record<string, number>; jobs: Record<string, number> };
  handover: {
    n: number;
    totalMs: { p50: number; p95: number };
    segmentsMs: Record<string, { p50: number; p95: number; mean: number }>;
    studyWorkflowTasksPerLaunch: number;
    slowest: { from: string; to: string; totalMs: number; segmentsMs: Record<string, number> }[];
  };
  /** The first c launches, back to back: the interval between launches and its parts. */
  launchBurst: {
    n: number;
    intervalMs: { p50: number; p95: number };
    segmentsMs: Record<string, { p50: number; p95: number }>;
  };
  /** Intervals between consecutive launches after the first c. */
  launchIntervalMs: { p50: number; p95: number };
  study: { workflowTasks: number; signals: Record<string, number>; busyFraction: number };
  workflowTasksMs: { queueP50: number; queueP95: number; workerP50: number; workerP95: number; count: number };
  activitiesMs: Record<string, { n: number; queueP50: number; queueP95: number; runP50: number; runP95: number }>;
  /** Activities run as local activities (inside workflow tasks): name -> how many. */
  localActivities: Record<string, number>;
  trainer: { importMsP50: number; cpuSecondsMean: number };
  cpuSeconds: { worker: number | null; temporal: number | null; trainers: number; machineBusyFraction: number };
  status: string;
  counts: Record<string, number>;
}

// --temporal ADDRESS: use a server that is already running (its search attributes registered, as
// `keel dev` does), e.g. one started with other dynamic config; its CPU is then not measured.
const services = args.temporal
  ? {
      endpoints: { temporal: { address: args.temporal, namespace: 'default' } },
      pids: { temporal: 0 },
      stop: async () => {},
    }
  : await startServices(['temporal']);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-throughput-'));
let worker: ManagedProcess | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const pid of [worker?.pid, services.pids.temporal]) {
      try {
        if (pid) process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
}

const results: ConcurrencyResult[] = [];
try {
  const temporal = services.endpoints.temporal;
  worker = spawnManaged('keel worker', process.execPath, [cli, 'worker'], {
    logFile: path.join(work, 'worker.log'),
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      KEEL_TASK_QUEUE: name,
      KEEL_GPU_TASK_QUEUE: `${name}-gpu`,
      KEEL_HOST_ID: name,
      KEEL_HOME: work,
      DATABASE_URL: `file:${path.join(work, 'keel.db')}`,
      KEEL_STORAGE_URI: pathToFileURL(path.join(work, 'checkpoints')).href,
    },
  });
  await waitForWorker(worker);
  const client = await connectClient({ connectionOptions: { address: temporal.address } });
  try {
    // A short warm-up study (not measured): the worker's first workflows and activities.
    console.error('warm-up: 4 trials at concurrency 2');
    await runStudy(client, 'warmup', 4, 2, path.join(work, 'warmup.jsonl'));
    for (const c of concurrencies) {
      console.error(`concurrency ${c}: ${trials} trials of ${trialSeconds} s`);
      const result = await measure(client, c);
      console.error(
        `concurrency ${c}: makespan ${result.makespanSeconds.toFixed(2)} s, efficiency ${result.efficiency.toFixed(3)}, ` +
          `slot idle p50 ${result.slotIdleMs.p50.toFixed(0)} ms`,
      );
      results.push(result);
    }
  } finally {
    await client.connection.close();
  }
} finally {
  if (worker) await stopManaged(worker, 'SIGTERM', 15_000);
  await services.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

type Client = Awaited<ReturnType<typeof connectClient>>;

function spec(logFile: string, nTrials: number, concurrency: number): StudySpecInput {
  return {
    name: `throughput c=${concurrency}`,
    space: { x: { type: 'float', low: -1, high: 1 } },
    objective: { metric: 'loss', direction: 'minimize' },
    nTrials,
    maxConcurrency: concurrency,
    sampler: { type: 'random' },
    pruner: { type: 'none' },
    seed,
    trial: {
      command: [python, trainer],
      env: { PYTHONPATH: sdkPath },
      params: { seconds: trialSeconds, step_ms: stepMs, log_file: logFile },
      gpus: 0,
      gpuTaskQueue: `${name}-gpu`,
    },
  };
}

async function runStudy(client: Client, label: string, nTrials: number, concurrency: number, logFile: string) {
  const handle = await client.workflow.start(hpoStudy, {
    taskQueue: name,
    workflowId: `${name}-${label}`,
    args: [spec(logFile, nTrials, concurrency)],
  });
  const result = await handle.result();
  if (result.status !== 'completed' || result.counts.completed !== nTrials) {
    throw new Error(`study ${label} ended ${result.status} with ${JSON.stringify(result.counts)}`);
  }
  return { handle, result };
}

async function measure(client: Client, c: number): Promise<ConcurrencyResult> {
  const logFile = path.join(work, `c${c}.jsonl`);
  const cpuBefore = {
    worker: worker ? processCpuSeconds(worker.pid) : null,
    temporal: processCpuSeconds(services.pids.temporal),
    machine: machineCpu(),
  };
  const startedAt = epochMs();
  const { handle, result } = await runStudy(client, `c${c}`, trials, c, logFile);
  const endedAt = epochMs();
  const machine = machineCpu();
  const workerCpu = worker ? processCpuSeconds(worker.pid) : null;
  const temporalCpu = processCpuSeconds(services.pids.temporal);

  const runs = parseTrainerLog(fs.readFileSync(logFile, 'utf8'));
  if (runs.length !== trials) throw new Error(`${runs.length} trainer runs logged, expected ${trials}`);
  const makespan = (endedAt - startedAt) / 1000;
  const ideal = Math.ceil(trials / c) * trialSeconds;
  const gaps = slotGaps(runs, c);
  const starts = runs.map((r) => r.start).sort((a, b) => a - b);

  // Histories: the study's and every trial's job.
  const study = historyTimes(await handle.fetchHistory());
  const jobs = new Map<string, HistoryTimes>();
  for (const jobId of study.childrenInitiated.keys()) {
    jobs.set(jobId, historyTimes(await client.workflow.getHandle(jobId).fetchHistory()));
  }
  const byJob = new Map<string, TrainerRun>(runs.map((r) => [r.job, r]));
  const chain = handovers(c, study, jobs, byJob, trialEndedSignalName);
  const all = [study, ...jobs.values()];
  const wft = workflowTaskLatencies(all);
  const acts = activityLatencies(all);
  const localActivities: Record<string, number> = {};
  for (const h of all) {
    for (const [n, count] of Object.entries(h.localActivities)) localActivities[n] = (localActivities[n] ?? 0) + count;
  }
  const stat = (values: number[]) => ({
    p50: round(percentile(values, 0.5), 1),
    p95: round(percentile(values, 0.95), 1),
  });
  const burst = launchBurst(c, study);
  const launchTimes = [...study.childrenInitiated.values()].sort((a, b) => a - b);
  const steadyIntervals = launchTimes.slice(c).map((t, i) => t - (launchTimes[c + i - 1] as number));
  const load = studyLoad(study);
  const lastTask = study.workflowTasks[study.workflowTasks.length - 1];
  const lastEnd = Math.max(...runs.map((r) => r.end));
  const lastEndSignal = Math.max(...study.signals.filter((x) => x.name === trialEndedSignalName).map((x) => x.at));

  return {
    concurrency: c,
    makespanSeconds: round(makespan, 3),
    idealSeconds: ideal,
    efficiency: round(ideal / makespan, 3),
    perTrialOverheadMs: round(((makespan - ideal) * 1000) / (trials / c), 1),
    studyWorkflowSeconds: round(((study.closed ?? Number.NaN) - study.started) / 1000, 3),
    peakConcurrentTrainers: peakOverlap(runs),
    slotIdleMs: {
      n: gaps.length,
      p50: round(percentile(gaps, 0.5), 1),
      p95: round(percentile(gaps, 0.95), 1),
      max: round(Math.max(...gaps), 1),
      mean: round(gaps.reduce((a, b) => a + b, 0) / gaps.length, 1),
    },
    slotIdleToLatestEndMs: stat(gapsToLatestEnd(runs, c)),
    fillSlotsSeconds: round(((starts[Math.min(c, trials) - 1] as number) - startedAt) / 1000, 3),
    firstTrainerSeconds: round(((starts[0] as number) - startedAt) / 1000, 3),
    tailSeconds: round((endedAt - lastEnd) / 1000, 3),
    tailMs: {
      toLastEndSignal: round(lastEndSignal - lastEnd, 1),
      toStudyClosed: round((study.closed ?? Number.NaN) - lastEndSignal, 1),
      lastStudyTask: round((lastTask?.completed ?? Number.NaN) - (lastTask?.started ?? Number.NaN), 1),
    },
    workflowTaskFailures: { study: countCauses([study]), jobs: countCauses([...jobs.values()]) },
    handover: {
      n: chain.length,
      totalMs: stat(chain.map((h) => h.total)),
      segmentsMs: Object.fromEntries(
        segmentNames.map((s) => {
          const values = chain.map((h) => h.segments[s] ?? Number.NaN).filter((v) => !Number.isNaN(v));
          return [s, { ...stat(values), mean: round(values.reduce((a, b) => a + b, 0) / values.length, 1) }];
        }),
      ),
      studyWorkflowTasksPerLaunch: round(chain.reduce((a, h) => a + h.studyWorkflowTasks, 0) / chain.length, 2),
      slowest: [...chain]
        .sort((x, y) => y.total - x.total)
        .slice(0, 3)
        .map((h) => ({
          from: h.from,
          to: h.to,
          totalMs: round(h.total, 1),
          segmentsMs: Object.fromEntries(
            Object.entries(h.segments)
              .filter(([, v]) => !Number.isNaN(v))
              .map(([k, v]) => [k, round(v, 1)]),
          ),
        })),
    },
    launchBurst: {
      n: burst.intervals.length,
      intervalMs: stat(burst.intervals),
      segmentsMs: Object.fromEntries(burstSegmentNames.map((n) => [n, stat(burst.segments[n])])),
    },
    launchIntervalMs: stat(steadyIntervals),
    study: { ...load, busyFraction: round(load.busyFraction, 3) },
    workflowTasksMs: {
      queueP50: round(percentile(wft.queue, 0.5), 1),
      queueP95: round(percentile(wft.queue, 0.95), 1),
      workerP50: round(percentile(wft.worker, 0.5), 1),
      workerP95: round(percentile(wft.worker, 0.95), 1),
      count: wft.queue.length,
    },
    localActivities,
    activitiesMs: Object.fromEntries(
      [...acts.entries()].map(([n, a]) => [
        n,
        {
          n: a.queue.length,
          queueP50: round(percentile(a.queue, 0.5), 1),
          queueP95: round(percentile(a.queue, 0.95), 1),
          runP50: round(percentile(a.run, 0.5), 1),
          runP95: round(percentile(a.run, 0.95), 1),
        },
      ]),
    ),
    trainer: {
      importMsP50: round(
        percentile(
          runs.map((r) => r.imported - r.start),
          0.5,
        ),
        1,
      ),
      cpuSecondsMean: round(runs.reduce((a, r) => a + r.cpu, 0) / runs.length, 3),
    },
    cpuSeconds: {
      worker: workerCpu !== null && cpuBefore.worker !== null ? round(workerCpu - cpuBefore.worker, 2) : null,
      temporal: temporalCpu !== null && cpuBefore.temporal !== null ? round(temporalCpu - cpuBefore.temporal, 2) : null,
      trainers: round(
        runs.reduce((a, r) => a + r.cpu, 0),
        2,
      ),
      machineBusyFraction: round(
        (machine.busy - cpuBefore.machine.busy) / Math.max(1e-9, machine.total - cpuBefore.machine.total),
        3,
      ),
    },
    status: result.status,
    counts: result.counts,
  };
}

function countCauses(histories: HistoryTimes[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of histories) for (const f of h.workflowTaskFailures) out[f.cause] = (out[f.cause] ?? 0) + 1;
  return out;
}

/** The commit measured, and whether the workflows or activities had uncommitted changes. */
function codeVersion(): { commit: string | null; uncommittedChanges: boolean | null } {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: repo, encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  const status = git('status', '--porcelain', '--', 'workflows', 'activities', 'workers');
  return {
    commit: head.status === 0 ? head.stdout.trim() : null,
    uncommittedChanges: status.status === 0 ? status.stdout.trim() !== '' : null,
  };
}

async function waitForWorker(proc: ManagedProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`the keel worker exited; log: ${proc.logFile}`);
    if (fs.existsSync(proc.logFile) && fs.readFileSync(proc.logFile, 'utf8').includes('keel worker: serving')) return;
    if (Date.now() > deadline) throw new Error(`the keel worker did not start in 120 s; log: ${proc.logFile}`);
    await sleep(50);
  }
}

// ---- report ----
const at16 = results.find((r) => r.concurrency === 16);
const report = {
  benchmark: 'study-throughput',
  target:
    'Temporal dev server on loopback (in memory), one `keel worker` process (Temporal SDK default slots: ' +
    '100 activity and 40 workflow-task slots per worker, 10 pollers each), SQLite, file:// storage, trials with gpus: 0',
  goals: { efficiencyAt16: '>= 0.9', slotIdleP50Ms: '<= 150' },
  settings: { trials, concurrencies, trialSeconds, stepMs, seed, sampler: 'random', pruner: 'none' },
  code,
  machine: {
    cpus: os.availableParallelism(),
    loadAverage1mAtEnd: round(os.loadavg()[0] ?? 0, 2),
    pythonStartupMs: round(pythonStartupMs, 1),
  },
  summary: {
    efficiencyAt16: at16?.efficiency ?? null,
    slotIdleP50MsAt16: at16?.slotIdleMs.p50 ?? null,
  },
  results,
};
console.log(JSON.stringify(report, null, 2));
if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);

const perTrial = (cpuSeconds: number | null) => (cpuSeconds === null ? '-' : ((cpuSeconds * 1000) / trials).toFixed(0));
const localNames = [...new Set(results.flatMap((r) => Object.keys(r.localActivities)))].join(', ');
const ms = (v: number | null | undefined) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(0));
/** `p50 / p95` of a distribution, in whole ms. */
const pair = (d: { p50?: number; p95?: number } | undefined) => `${ms(d?.p50)} / ${ms(d?.p95)}`;
console.log(
  `\nHPO study parallel efficiency: ${trials} trials of a ${trialSeconds} s trainer (Python, keel_sdk), random sampler, no pruner:\n\n${table(
    [
      'concurrency',
      'makespan s',
      'ideal s',
      'efficiency',
      'overhead/trial ms',
      'slot idle p50 ms',
      'p95 ms',
      'max ms',
      'peak trainers',
      'slots filled s',
      'tail s',
    ],
    results.map((r) => [
      r.concurrency,
      r.makespanSeconds.toFixed(2),
      r.idealSeconds,
      r.efficiency.toFixed(3),
      ms(r.perTrialOverheadMs),
      ms(r.slotIdleMs.p50),
      ms(r.slotIdleMs.p95),
      ms(r.slotIdleMs.max),
      r.peakConcurrentTrainers,
      r.fillSlotsSeconds.toFixed(2),
      r.tailSeconds.toFixed(2),
    ]),
  )}\n\nGoals: efficiency >= 0.9 at 16, slot idle p50 <= 150 ms.`,
);
console.log(
  `\nWhere a slot handover's time goes (trial A's trainer ends, the study launches B into its slot), p50 / p95 ms:\n\n${table(
    ['segment', ...results.map((r) => `c=${r.concurrency}`)],
    [
      [segmentLabels.trainerEnd, ...results.map(() => '')],
      ...segmentNames
        .filter((s) => results.some((r) => !Number.isNaN(r.handover.segmentsMs[s]?.p50 ?? Number.NaN)))
        .map((s) => [segmentLabels[s], ...results.map((r) => pair(r.handover.segmentsMs[s]))]),
      ['total: A ends → B starts', ...results.map((r) => pair(r.handover.totalMs))],
      [
        'study workflow tasks per handover (mean)',
        ...results.map((r) => String(r.handover.studyWorkflowTasksPerLaunch)),
      ],
    ],
  )}`,
);
console.log(
  `\nThe study's launch rate: its first c launches back to back (burst), and launches after those (steady), p50 / p95 ms:\n\n${table(
    ['', ...results.map((r) => `c=${r.concurrency}`)],
    [
      ...burstSegmentNames
        .filter((n) => results.some((r) => !Number.isNaN(r.launchBurst.segmentsMs[n]?.p50 ?? Number.NaN)))
        .map((n) => [burstSegmentLabels[n], ...results.map((r) => pair(r.launchBurst.segmentsMs[n]))]),
      ['burst: one launch (startChild to next startChild)', ...results.map((r) => pair(r.launchBurst.intervalMs))],
      ['steady: interval between launches', ...results.map((r) => pair(r.launchIntervalMs))],
      ['study: workflow tasks', ...results.map((r) => String(r.study.workflowTasks))],
      [
        'study: trialReport / trialEnded signals',
        ...results.map(
          (r) => `${r.study.signals[trialReportSignalName] ?? 0} / ${r.study.signals[trialEndedSignalName] ?? 0}`,
        ),
      ],
      [
        'failed workflow tasks: study / jobs (causes in the JSON)',
        ...results.map((r) => {
          const n = (c: Record<string, number>) => Object.values(c).reduce((x, y) => x + y, 0);
          return `${n(r.workflowTaskFailures.study)} / ${n(r.workflowTaskFailures.jobs)}`;
        }),
      ],
      [
        'tail ms: last trainer end → its end signal → study closed (its last workflow task)',
        ...results.map(
          (r) => `${ms(r.tailMs.toLastEndSignal)} → ${ms(r.tailMs.toStudyClosed)} (${ms(r.tailMs.lastStudyTask)})`,
        ),
      ],
      [
        'study: time with a workflow task in flight',
        ...results.map((r) => `${(r.study.busyFraction * 100).toFixed(0)}%`),
      ],
    ],
  )}`,
);
console.log(
  `\nWorkflow tasks and activities (all histories of the study and its jobs), p50 / p95 ms; CPU during the study:\n\n${table(
    ['', ...results.map((r) => `c=${r.concurrency}`)],
    [
      [
        'workflow task: scheduled → started',
        ...results.map((r) => `${ms(r.workflowTasksMs.queueP50)} / ${ms(r.workflowTasksMs.queueP95)}`),
      ],
      [
        'workflow task: started → completed',
        ...results.map((r) => `${ms(r.workflowTasksMs.workerP50)} / ${ms(r.workflowTasksMs.workerP95)}`),
      ],
      ...['startTrial', 'endTrial', 'startJob', 'runTrainer', 'finishJob']
        .filter((a) => results.some((r) => r.activitiesMs[a]))
        .flatMap((a) => [
          [
            `${a}: scheduled → started`,
            ...results.map((r) => `${ms(r.activitiesMs[a]?.queueP50)} / ${ms(r.activitiesMs[a]?.queueP95)}`),
          ],
          [
            `${a}: started → completed`,
            ...results.map((r) => `${ms(r.activitiesMs[a]?.runP50)} / ${ms(r.activitiesMs[a]?.runP95)}`),
          ],
        ]),
      [
        'local activities (inside workflow tasks)',
        ...results.map((r) => String(Object.values(r.localActivities).reduce((x, y) => x + y, 0))),
      ],
      ['trainer: first line → imports done', ...results.map((r) => ms(r.trainer.importMsP50))],
      ['CPU ms per trial: keel worker', ...results.map((r) => perTrial(r.cpuSeconds.worker))],
      ['CPU ms per trial: Temporal server', ...results.map((r) => perTrial(r.cpuSeconds.temporal))],
      ['CPU ms per trial: the trainer (Python)', ...results.map((r) => perTrial(r.cpuSeconds.trainers))],
      ['machine busy (of all cores)', ...results.map((r) => `${(r.cpuSeconds.machineBusyFraction * 100).toFixed(0)}%`)],
    ],
  )}\n\nLocal activities: ${localNames || 'none'}.\nPython start-up before the trainer's first line (\`${python} -c pass\`, measured apart): ${pythonStartupMs.toFixed(0)} ms.`,
);
