// The local development environment behind `keel dev` and the demo: a Temporal dev server (started,
// or reused when one already listens), keel's search attributes, and a worker. stop() ends exactly
// what start() started, nothing else.
import fs from 'node:fs';
import path from 'node:path';
import { resolveDatabaseUrl } from '@keel/db/url';
import { keelSearchAttributes } from '@keel/workflows/search-attributes';
import { KEEL_TASK_QUEUE } from '@keel/workflows/task-queues';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
// CommonJS: Node's ESM loader cannot see its named exports.
import proto from '@temporalio/proto';
import { httpOk, isListening, signalGroup, spawnManaged, stopManaged, waitUntilReady } from './processes.ts';

export interface DevOptions {
  /** Folder for the dev server's state (temporal.db) and log (temporal.log). */
  home: string;
  ip: string;
  port: number;
  uiPort: number;
  namespace: string;
  /** Start a keel worker in this process. */
  worker: boolean;
  /** The Temporal CLI; defaults to KEEL_TEMPORAL_BIN, then `temporal` on PATH. */
  temporalBin?: string;
  log?: (line: string) => void;
}

export interface DevEnvironment {
  /** gRPC address of the Temporal frontend, host:port. */
  address: string;
  namespace: string;
  /** The Web UI, when this environment knows of one. */
  uiUrl: string | undefined;
  /** Stops what this environment started; a reused server keeps running. */
  stop(): Promise<void>;
}

export const devDefaults = { ip: '127.0.0.1', port: 7233, namespace: 'default' } as const;

/** The CLI's names for search attribute types (`--search-attribute Name=Type`). */
const cliTypeName: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export async function startDevEnvironment(options: DevOptions): Promise<DevEnvironment> {
  const log = options.log ?? ((line: string) => console.log(`keel dev: ${line}`));
  const address = `${options.ip}:${options.port}`;
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };

  try {
    let uiUrl: string | undefined;
    if (await isListening(options.ip, options.port)) {
      log(`reusing the Temporal server already listening on ${address}`);
      await ensureSearchAttributes(address, options.namespace, log);
      const candidate = `http://${options.ip}:${options.uiPort}`;
      uiUrl = (await httpOk(candidate)) ? candidate : undefined;
    } else {
      const { server, uiUrl: startedUi } = await startDevServer(options, address, log);
      uiUrl = startedUi;
      // Safety net: if this process ends without stop() (an uncaught error), the server goes too.
      const onExit = () => signalGroup(server.pid, 'SIGTERM');
      process.once('exit', onExit);
      stops.push(async () => {
        process.off('exit', onExit);
        await stopManaged(server);
        log('Temporal dev server stopped');
      });
    }

    if (options.worker) {
      const { createKeelWorker, configureRuntime, hostSettings } = await import('@keel/workers');
      // This process decides when the worker stops; warnings only, not the bundler's output.
      configureRuntime({ logLevel: 'WARN', handleSignals: false });
      const env = { ...process.env, KEEL_HOME: options.home };
      const keel = await createKeelWorker({
        temporal: { connectionOptions: { address }, namespace: options.namespace },
        taskQueue: KEEL_TASK_QUEUE,
        databaseUrl: resolveDatabaseUrl({ env }),
        ...hostSettings(env),
      });
      const { db } = keel;
      const running = keel.run().finally(() => keel.close());
      stops.push(async () => {
        keel.shutdown();
        await running;
        log('worker stopped');
      });
      log(`worker serving task queue '${KEEL_TASK_QUEUE}', database ${db.location}`);
    }

    return { address, namespace: options.namespace, uiUrl, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Finds the Temporal CLI: explicit path, KEEL_TEMPORAL_BIN (set by the bootstrap), then PATH. */
export function findTemporalCli(explicit?: string): string {
  const candidate = explicit ?? process.env.KEEL_TEMPORAL_BIN;
  if (candidate) {
    if (isExecutable(candidate)) return candidate;
    throw new Error(`the Temporal CLI at '${candidate}' is not an executable file. Fix: run 'npm run setup'.`);
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, 'temporal');
    if (dir && isExecutable(file)) return file;
  }
  throw new Error(
    "the Temporal CLI was not found (KEEL_TEMPORAL_BIN is unset and 'temporal' is not on PATH). " +
      "Fix: run 'npm run setup', which builds it into ~/.cache/keel, then use 'npm run keel -- dev'.",
  );
}

/** Arguments of `temporal server start-dev` with keel's search attributes registered. */
export function devServerArgs(options: {
  ip: string;
  port: number;
  /** A port for the Web UI, or 'headless' for none. */
  ui: number | 'headless';
  /** Where the server keeps its state; in memory when absent. */
  dbFile?: string;
  namespace?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}): string[] {
  const args = ['server', 'start-dev', '--ip', options.ip, '--port', String(options.port)];
  args.push(...(options.ui === 'headless' ? ['--headless'] : ['--ui-port', String(options.ui)]));
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.namespace && options.namespace !== 'default') args.push('--namespace', options.namespace);
  args.push('--log-level', options.logLevel ?? 'warn');
  for (const key of keelSearchAttributes) args.push('--search-attribute', `${key.name}=${cliTypeName[key.type]}`);
  return args;
}

/** True once a Temporal frontend answers on `address`. */
export async function temporalAnswers(address: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 1_000 });
    try {
      await connection.workflowService.getSystemInfo({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

async function startDevServer(options: DevOptions, address: string, log: (line: string) => void) {
  const bin = findTemporalCli(options.temporalBin);
  fs.mkdirSync(options.home, { recursive: true });
  const dbFile = path.join(options.home, 'temporal.db');
  const args = devServerArgs({ ...options, ui: options.uiPort, dbFile });
  const server = spawnManaged('the Temporal dev server', bin, args, {
    logFile: path.join(options.home, 'temporal.log'),
  });
  log(`starting the Temporal dev server on ${address} (state: ${dbFile}, log: ${server.logFile})`);
  const uiUrl = `http://${options.ip}:${options.uiPort}`;
  try {
    await waitUntilReady(server, () => temporalAnswers(address));
    await waitUntilReady({ ...server, name: `the Temporal UI at ${uiUrl}` }, () => httpOk(uiUrl));
  } catch (err) {
    await stopManaged(server);
    throw err;
  }
  log(`Temporal dev server ready (pid ${server.pid})`);
  return { server, uiUrl };
}

/** Registers whichever of keel's search attributes the server lacks (an existing server). */
async function ensureSearchAttributes(address: string, namespace: string, log: (line: string) => void) {
  const connection = await Connection.connect({ address, connectTimeout: 5_000 }).catch((err: unknown) => {
    throw new Error(`port ${address} is in use, but it is not a Temporal server that answers (${String(err)})`);
  });
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = keelSearchAttributes.filter((key) => !(key.name in (customAttributes ?? {})));
    if (missing.length === 0) return;
    const indexed = proto.temporal.api.enums.v1.IndexedValueType;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, indexed[`INDEXED_VALUE_TYPE_${key.type}`]])),
    });
    log(`registered search attributes: ${missing.map((key) => key.name).join(', ')}`);
  } finally {
    await connection.close();
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
