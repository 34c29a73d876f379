// `npm run demo`: everything embedded. Starts (or reuses) a Temporal dev server with its UI and a
// keel worker, runs a smoke workflow, then a real HPO study (8 trials of the example MLP, TPE and
// ASHA, 4 at a time; checkpoints to <home>/checkpoints, records in <home>/keel.db) while printing
// its progress, says where to see it, and keeps running until Ctrl-C. `--no-wait` stops right
// after the study (used by the tests). `--chaos` runs the worker as a process of its own and, once
// two trials are done, kills it with kill -9 (its trainers with it), starts it again, and at the
// end says which trials resumed from which checkpoint and that no checkpoint was lost.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient, KeelClient } from '@keel/client';
import { devDefaults, startDevEnvironment } from '@keel/client/dev';
import { stopOnSignal } from '@keel/client/signals';
import {
  hpoStudy,
  KEEL_TASK_QUEUE,
  progressQuery,
  type StudyProgress,
  smokeCheck,
  studyProgressQuery,
} from '@keel/workflows';
import {
  checkpointLedger,
  describeResumes,
  type HitTrial,
  killWorker,
  startWorker,
  stopWorker,
  type WorkerProcess,
} from './demo-chaos.ts';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: String(devDefaults.port) },
    'ui-port': { type: 'string' },
    home: { type: 'string', default: process.env.KEEL_HOME ?? '.keel' },
    'no-wait': { type: 'boolean', default: false },
    chaos: { type: 'boolean', default: false },
  },
});
const port = Number(args.port);
const home = path.resolve(args.home);
const say = (line: string) => console.log(`demo: ${line}`);
/** A trial's heartbeat timeout under --chaos: how soon Temporal gives up on the killed worker. */
const chaosHeartbeatSeconds = 5;
type Client = Awaited<ReturnType<typeof connectClient>>;

const env = await startDevEnvironment({
  home,
  ip: devDefaults.ip,
  port,
  uiPort: args['ui-port'] ? Number(args['ui-port']) : port + 1000,
  namespace: devDefaults.namespace,
  worker: !args.chaos, // under --chaos the worker is a process of its own, to be killed
  log: say,
});
let worker: WorkerProcess | undefined;
const stopEverything = async () => {
  if (worker) await stopWorker(worker);
  await env.stop();
};

try {
  if (args.chaos) {
    const logFile = path.join(home, 'chaos-worker.log');
    say(`--chaos: starting the worker as a process of its own (\`keel worker\`, log in ${logFile}), to kill it midway`);
    worker = await startWorker({ address: env.address, namespace: env.namespace, home, logFile });
    say(`worker ready (pid ${worker.pid})`);
  }
  const client = await connectClient({ connectionOptions: { address: env.address }, namespace: env.namespace });
  const workflowId = `keel-demo-smoke-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  say(`running workflow ${workflowId} (smokeCheck) on task queue '${KEEL_TASK_QUEUE}'`);
  const result = await client.workflow.execute(smokeCheck, {
    taskQueue: KEEL_TASK_QUEUE,
    workflowId,
    args: [{ message: 'hello from keel' }],
  });
  say(`result: ${JSON.stringify(result)}`);

  const studyId = `keel-demo-study-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const trainer = path.resolve(import.meta.dirname, '../examples/mlp/src/train.ts');
  say(`HPO study ${studyId}: 8 trials of the example MLP (examples/mlp), TPE + ASHA, 4 at a time`);
  const study = await client.workflow.start(hpoStudy, {
    taskQueue: KEEL_TASK_QUEUE,
    workflowId: studyId,
    args: [
      {
        space: {
          learningRate: { type: 'float', low: 0.003, high: 0.5, log: true },
          momentum: { type: 'float', low: 0, high: 0.95 },
          hiddenSize: { type: 'int', low: 4, high: 48, log: true },
        },
        objective: { metric: 'val_loss', direction: 'minimize' },
        nTrials: 8,
        maxConcurrency: 4,
        seed: 1,
        sampler: { type: 'tpe', nStartupTrials: 4 },
        pruner: { type: 'asha', minResource: 300, reductionFactor: 2 },
        trial: {
          command: [process.execPath, trainer],
          params: { seed: 1, steps: 1200, evalEvery: 100, checkpointEvery: 300, stepDelayMs: 8 },
          gpus: 0,
          ...(args.chaos ? { timeouts: { heartbeatSeconds: chaosHeartbeatSeconds } } : {}),
        },
      },
    ],
  });
  let last = '';
  let asking: Promise<void> = Promise.resolve();
  const ticker = setInterval(() => {
    asking = study.query(studyProgressQuery).then(
      (p) => {
        const c = p.counts;
        const best = p.best ? `best val_loss ${p.best.value.toFixed(4)} (trial ${p.best.number})` : 'no result yet';
        const line = `  ${c.completed + c.pruned + c.failed + c.stopped}/${p.nTrials} done (completed ${c.completed}, pruned ${c.pruned}, failed ${c.failed}), running ${c.running}; ${best}`;
        if (line !== last) say(line);
        last = line;
      },
      () => {},
    );
  }, 500);
  const ending = study.result();
  const chaos = args.chaos ? killMidway(client, studyId, ending) : undefined;
  const outcome = await ending.finally(() => clearInterval(ticker));
  await asking; // a query still on its way would outlive the connection
  say(`study ${outcome.status}: ${outcome.counts.completed} completed, ${outcome.counts.pruned} pruned by ASHA`);
  if (outcome.best) {
    say(
      `  best: trial ${outcome.best.number}, val_loss ${outcome.best.value.toFixed(4)}, params ${JSON.stringify(outcome.best.params)}`,
    );
    say(
      `  its checkpoints are under ${path.resolve(args.home, 'checkpoints', encodeURIComponent(outcome.best.jobId))}`,
    );
  }
  if (chaos) await reportChaos(client, studyId, await chaos);
  await client.connection.close();
  if (env.uiUrl) {
    say(`see them in the Temporal UI: ${env.uiUrl}/namespaces/${env.namespace}/workflows/${workflowId}`);
    say(`                             ${env.uiUrl}/namespaces/${env.namespace}/workflows/${studyId}`);
  }
} catch (err) {
  await stopEverything();
  throw err;
}

if (args['no-wait']) {
  await stopEverything();
} else {
  say('the dev server and worker keep running; press Ctrl-C to stop them');
  await stopOnSignal(stopEverything);
}

interface ChaosDone {
  killedPid: number;
  restartedPid: number;
  doneAtKill: number;
  hit: HitTrial[];
}

/**
 * Once two trials are done and a running one has a committed checkpoint, kills the worker with
 * kill -9 (and its trainers), says so, and starts it again at once. Temporal notices the dead
 * worker when the trials' heartbeats stop (chaosHeartbeatSeconds) and runs them again on the new
 * one, each from its newest committed checkpoint. Undefined if the study ended first.
 */
async function killMidway(client: Client, studyId: string, ending: Promise<unknown>): Promise<ChaosDone | undefined> {
  const study = client.workflow.getHandle(studyId);
  let ended = false;
  void ending.then(
    () => (ended = true),
    () => (ended = true),
  );
  for (; !ended; await new Promise((r) => setTimeout(r, 500))) {
    const p: StudyProgress | undefined = await study.query(studyProgressQuery).catch(() => undefined);
    const done = p ? p.counts.completed + p.counts.pruned + p.counts.failed + p.counts.stopped : 0;
    if (!p || done < 2) continue;
    const running = p.trials.filter((t) => t.state === 'running');
    const jobs = await Promise.all(
      running.map((t) =>
        client.workflow
          .getHandle(t.jobId)
          .query(progressQuery)
          .catch(() => undefined),
      ),
    );
    if (!jobs.some((j) => j?.newestCommittedStep)) continue;
    const current = worker as WorkerProcess;
    const trainers = await killWorker(current);
    const hit = running.flatMap((t, i) => {
      const before = jobs[i];
      return before && trainers.some((k) => k.jobId === t.jobId) ? [{ number: t.number, jobId: t.jobId, before }] : [];
    });
    say(
      `chaos: killed the worker (pid ${current.pid}) with kill -9, and its ${trainers.length} trainer(s) with it ` +
        `(trials ${hit.map((h) => h.number).join(', ') || 'none'}), at ${done}/${p.nTrials} trials done`,
    );
    worker = await startWorker({
      address: env.address,
      namespace: env.namespace,
      home,
      logFile: path.join(home, 'chaos-worker.log'),
    });
    say(
      `chaos: worker restarted (pid ${worker.pid}); the killed trials resume on it once their heartbeats ` +
        `time out (${chaosHeartbeatSeconds} s), each from its newest committed checkpoint`,
    );
    return { killedPid: current.pid, restartedPid: worker.pid, doneAtKill: done, hit };
  }
  return undefined;
}

/** What the kill did, trial by trial, and the checkpoint count: acked, committed, lost. */
async function reportChaos(client: Client, studyId: string, chaos: ChaosDone | undefined): Promise<void> {
  if (!chaos) {
    say('chaos: the study ended before the worker could be killed');
    return;
  }
  const keel = await KeelClient.connect({ client, databaseUrl: `file:${path.join(home, 'keel.db')}` });
  try {
    say(
      `chaos: killed worker pid ${chaos.killedPid} at ${chaos.doneAtKill} trials done, restarted as pid ${chaos.restartedPid}; ` +
        `the ${chaos.hit.length} trial(s) it was running:`,
    );
    for (const line of await describeResumes(keel, chaos.hit)) say(`chaos:   ${line}`);
    const trials = (await client.workflow.getHandle(studyId).query(studyProgressQuery)).trials;
    const c = await checkpointLedger(
      keel,
      trials.map((t) => t.jobId),
    );
    say(
      `chaos: checkpoints: ${c.acked} acked; ${c.committed} committed and re-read with sha256 equal, ` +
        `${c.collected} deleted by retention (keepLast), ${c.failed} failed with a reason; ${c.lost} lost`,
    );
    say(c.lost === 0 ? 'chaos: nothing was lost' : `chaos: ${c.lost} checkpoint(s) LOST`);
    if (c.lost > 0) process.exitCode = 1;
  } finally {
    await keel.close();
  }
}
