// `npm run demo`: everything embedded. Starts (or reuses) a Temporal dev server with its UI and a
// keel worker, runs a smoke workflow through them, prints where to see it, and keeps running until
// Ctrl-C. `--no-wait` stops right after the workflow (used by the tests).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient } from '@keel/client';
import { devDefaults, startDevEnvironment } from '@keel/client/dev';
import { stopOnSignal } from '@keel/client/signals';
import { KEEL_TASK_QUEUE, smokeCheck } from '@keel/workflows';

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
  await client.connection.close();
  say(`result: ${JSON.stringify(result)}`);
  if (env.uiUrl) say(`see it in the Temporal UI: ${env.uiUrl}/namespaces/${env.namespace}/workflows/${workflowId}`);
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
