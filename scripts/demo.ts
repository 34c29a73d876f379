// `npm run demo`: everything embedded. Starts (or reuses) a Temporal dev server with its UI and a
// keel worker, runs a smoke workflow, then a real HPO study (8 trials of the example MLP, TPE and
// ASHA, 4 at a time; checkpoints to <home>/checkpoints, records in <home>/keel.db) while printing
// its progress, says where to see it, and keeps running until Ctrl-C. `--no-wait` stops right
// after the study (used by the tests).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient } from '@keel/client';
import { devDefaults, startDevEnvironment } from '@keel/client/dev';
import { stopOnSignal } from '@keel/client/signals';
import { hpoStudy, KEEL_TASK_QUEUE, smokeCheck, studyProgressQuery } from '@keel/workflows';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: String(devDefaults.port) },
    'ui-port': { type: 'string' },
    home: { type: 'string', default: process.env.KEEL_HOME ?? '.keel' },
    'no-wait': { type: 'boolean', default: false },
  },
});
const port = Number(args.port);
const say = (line: string) => console.log(`demo: ${line}`);

const env = await startDevEnvironment({
  home: path.resolve(args.home),
  ip: devDefaults.ip,
  port,
  uiPort: args['ui-port'] ? Number(args['ui-port']) : port + 1000,
  namespace: devDefaults.namespace,
  worker: true,
  log: say,
});

try {
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
  const outcome = await study.result().finally(() => clearInterval(ticker));
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
  await client.connection.close();
  if (env.uiUrl) {
    say(`see them in the Temporal UI: ${env.uiUrl}/namespaces/${env.namespace}/workflows/${workflowId}`);
    say(`                             ${env.uiUrl}/namespaces/${env.namespace}/workflows/${studyId}`);
  }
} catch (err) {
  await env.stop();
  throw err;
}

if (args['no-wait']) {
  await env.stop();
} else {
  say('the dev server and worker keep running; press Ctrl-C to stop them');
  await stopOnSignal(() => env.stop());
}
