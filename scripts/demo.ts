// `npm run demo`: everything embedded. Starts (or reuses) a Temporal dev server with its UI and a
// keel worker, runs a smoke workflow, then a real training job (the example MLP, checkpoints to
// <home>/checkpoints, records in <home>/keel.db) while printing its progress, says where to see
// both, and keeps running until Ctrl-C. `--no-wait` stops right after the job (used by the tests).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient } from '@keel/client';
import { devDefaults, startDevEnvironment } from '@keel/client/dev';
import { stopOnSignal } from '@keel/client/signals';
import { KEEL_TASK_QUEUE, progressQuery, smokeCheck, trainingJob } from '@keel/workflows';

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

  const jobId = `keel-demo-mlp-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const trainer = path.resolve(import.meta.dirname, '../examples/mlp/src/train.ts');
  say(`training job ${jobId}: the example MLP (examples/mlp), 2000 steps, a checkpoint every 500`);
  const job = await client.workflow.start(trainingJob, {
    taskQueue: KEEL_TASK_QUEUE,
    workflowId: jobId,
    args: [
      {
        command: [process.execPath, trainer],
        params: { seed: 1, steps: 2000, checkpointEvery: 500, stepDelayMs: 2 },
        gpus: 0,
        checkpoints: { objective: { metric: 'val_loss', direction: 'minimize' } },
      },
    ],
  });
  let last = '';
  const ticker = setInterval(() => {
    job.query(progressQuery).then(
      (p) => {
        const line = `  step ${p.step ?? 0}, val_acc ${p.metrics.val_acc?.toFixed(3) ?? '-'}, checkpoints committed ${p.checkpoints.committed}`;
        if (line !== last) say(line);
        last = line;
      },
      () => {},
    );
  }, 500);
  const outcome = await job.result().finally(() => clearInterval(ticker));
  say(`job ${outcome.status}: step ${outcome.step}, final metrics ${JSON.stringify(outcome.finalMetrics)}`);
  say(
    `  ${outcome.committedCheckpoints} checkpoints committed (best at step ${outcome.bestStep}); kept under ${path.resolve(args.home, 'checkpoints')}`,
  );
  await client.connection.close();
  if (env.uiUrl) {
    say(`see them in the Temporal UI: ${env.uiUrl}/namespaces/${env.namespace}/workflows/${workflowId}`);
    say(`                             ${env.uiUrl}/namespaces/${env.namespace}/workflows/${jobId}`);
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
