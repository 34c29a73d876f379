#!/usr/bin/env node
// The `keel` command line. Run it from the repo with `npm run keel -- <command>`
// (or `pnpm keel <command>`); `keel <command> --help` describes each command.
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { registerCheckpointCommands, registerJobCommands, registerStudyCommands } from './cli/commands.ts';
import { CliError, exitCodeOf, exitCodes, explain } from './cli/errors.ts';
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
  .addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 failed (a job or study that failed, a checksum mismatch), 2 bad input ' +
      '(options, spec file), 3 no such job/study/checkpoint, 4 Temporal unreachable.\n' +
      'Temporal connection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* or a ' +
      'Temporal config profile; database: DATABASE_URL (default .keel/keel.db).',
  )
  .showHelpAfterError()
  // Usage errors exit 2 like other CLIs (commander's default is 1, the code of a failed study).
  .exitOverride((err) => {
    throw err;
  });

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
  .option(
    '--check',
    'check everything the worker needs (Temporal, database, storage write/read/delete, work dir, GPUs), ' +
      'print what was found, exit 0 if all is well and 1 if not; takes no work',
  )
  .action(async (opts: { check?: boolean }) => {
    const { loadWorkerConfig, runWorker } = await import('@keel/workers');
    if (!opts.check) return runWorker(loadWorkerConfig());
    const { checkWorker } = await import('@keel/workers/check');
    const results = await checkWorker(loadWorkerConfig());
    for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name.padEnd(8)}  ${r.detail}`);
    const failed = results.filter((r) => !r.ok).map((r) => r.name);
    if (failed.length > 0) throw new CliError(`worker check failed: ${failed.join(', ')}`, exitCodes.failed);
  });

registerJobCommands(program);
registerStudyCommands(program);
registerCheckpointCommands(program);

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidArgumentError('expected a port number between 1 and 65535.');
  }
  return port;
}

// Subcommands inherit the override so their usage errors come here too.
for (const command of program.commands) {
  command.exitOverride((err) => {
    throw err;
  });
  for (const sub of command.commands) {
    sub.exitOverride((err) => {
      throw err;
    });
  }
}

try {
  await program.parseAsync();
  process.exit(exitCodes.ok); // the Temporal connection's timers would keep the process alive
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed the message (or the help, for --help: exit code 0).
    process.exit(err.exitCode === 0 ? exitCodes.ok : exitCodes.usage);
  }
  const explained = explain(err);
  console.error(`keel: ${explained instanceof Error ? explained.message : String(explained)}`);
  process.exit(exitCodeOf(explained));
}
