#!/usr/bin/env node
// The `keel` command line. Run it from the repo with `npm run keel -- <command>`
// (or `pnpm keel <command>`); `keel <command> --help` describes each command.
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { devDefaults, startDevEnvironment } from './dev.ts';
import { stopOnSignal } from './signals.ts';

// If the terminal or a pipe reading our output goes away (Ctrl-C on `keel dev | tee log` ends tee
// too), writes fail with EPIPE: ignore that, so shutting down what we started still completes.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

const program = new Command('keel')
  .description('Durable GPU training jobs and HPO studies on Temporal')
  .showHelpAfterError();

program
  .command('dev')
  .description(
    'Start a local Temporal dev server (state kept in <home>/temporal.db, UI included) and a keel worker; ' +
      'reuse a server already listening on the port. Ctrl-C stops what this command started, nothing else.',
  )
  .option('--ip <ip>', 'address the dev server binds to', devDefaults.ip)
  .option('--port <port>', 'gRPC port of the dev server', parsePort, devDefaults.port)
  .option('--ui-port <port>', 'port of the Temporal Web UI (default: gRPC port + 1000)', parsePort)
  .option('--namespace <name>', 'Temporal namespace', devDefaults.namespace)
  .option('--home <dir>', "folder for keel's local state", process.env.KEEL_HOME ?? '.keel')
  .option('--no-worker', 'start only the server, no worker')
  .action(
    async (opts: { ip: string; port: number; uiPort?: number; namespace: string; home: string; worker: boolean }) => {
      const env = await startDevEnvironment({
        home: path.resolve(opts.home),
        ip: opts.ip,
        port: opts.port,
        uiPort: opts.uiPort ?? opts.port + 1000,
        namespace: opts.namespace,
        worker: opts.worker,
      });
      console.log(`keel dev: Temporal at ${env.address}, namespace '${env.namespace}'`);
      console.log(`keel dev: Temporal UI: ${env.uiUrl ?? '(none found for the reused server)'}`);
      console.log('keel dev: ready; press Ctrl-C to stop');
      await stopOnSignal(() => env.stop());
    },
  );

program
  .command('worker')
  .description(
    'Run a keel worker. Temporal connection from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, ' +
      'TEMPORAL_TLS_* (or a Temporal config profile); task queue from KEEL_TASK_QUEUE (default keel).',
  )
  .action(async () => {
    const { loadWorkerConfig, runWorker } = await import('@keel/workers');
    await runWorker(loadWorkerConfig());
  });

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidArgumentError('expected a port number between 1 and 65535.');
  }
  return port;
}

try {
  await program.parseAsync();
} catch (err) {
  console.error(`keel: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
