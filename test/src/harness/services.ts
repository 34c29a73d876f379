// Real servers for the tests, each on free loopback ports in a throw-away folder: a Temporal dev
// server, MinIO, fake-gcs-server, Azurite and a PostgreSQL cluster. Binaries come from the
// bootstrap (KEEL_*_BIN in .keel/tools.env); a server that cannot start fails the run, by name.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { devServerArgs, temporalAnswers } from '@keel/client/dev';
import {
  groupAlive,
  httpOk,
  isListening,
  type ManagedProcess,
  signalGroup,
  spawnManaged,
  stopManaged,
  waitUntilReady,
} from '@keel/client/processes';
import getPort from 'get-port';
import postgres from 'postgres';

const host = '127.0.0.1';

export interface ServiceEndpoints {
  temporal: { address: string; namespace: string };
  minio: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  gcs: { endpoint: string; projectId: string };
  azurite: { blobEndpoint: string; accountName: string; accountKey: string; connectionString: string };
  postgres: { url: string };
}

export type ServiceName = keyof ServiceEndpoints;

export interface RunningServices<K extends ServiceName = ServiceName> {
  endpoints: Pick<ServiceEndpoints, K>;
  /** Process-group leaders, for the leak check. */
  pids: Record<K, number>;
  root: string;
  stop(): Promise<void>;
}

interface Started<K extends ServiceName> {
  endpoint: ServiceEndpoints[K];
  proc: ManagedProcess;
  /** Postgres shuts down fast on SIGINT; SIGTERM waits for clients. */
  stopSignal?: NodeJS.Signals;
}

type Starter<K extends ServiceName> = (dir: string) => Promise<Started<K>>;

const starters: { [K in ServiceName]: Starter<K> } = {
  temporal: startTemporal,
  minio: startMinio,
  gcs: startFakeGcs,
  azurite: startAzurite,
  postgres: startPostgres,
};

export const allServices = Object.keys(starters) as ServiceName[];

/** Starts the services at once (all by default; benchmarks pick some); if any fails, stops the
 *  rest and throws naming each failure. */
export async function startServices<K extends ServiceName = ServiceName>(
  names: readonly K[] = allServices as K[],
): Promise<RunningServices<K>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-services-'));
  fs.chmodSync(root, 0o755); // PostgreSQL runs as its own user when we are root
  const results = await Promise.allSettled(
    names.map((name) => {
      const dir = path.join(root, name);
      fs.mkdirSync(dir);
      return (starters[name] as Starter<ServiceName>)(dir);
    }),
  );
  const started = new Map<K, Started<ServiceName>>();
  const failures: string[] = [];
  results.forEach((result, i) => {
    const name = names[i] as K;
    if (result.status === 'fulfilled') started.set(name, result.value);
    else failures.push(`${name}: ${result.reason instanceof Error ? result.reason.message : String(result.reason)}`);
  });

  const stop = async () => {
    await Promise.all([...started.values()].map((s) => stopManaged(s.proc, s.stopSignal ?? 'SIGTERM')));
  };
  if (failures.length > 0) {
    await stop();
    throw new Error(`test services failed to start (logs kept in ${root}):\n${failures.join('\n')}`);
  }
  const endpoints = Object.fromEntries(names.map((name) => [name, started.get(name)?.endpoint]));
  return {
    root,
    endpoints: endpoints as Pick<ServiceEndpoints, K>,
    pids: Object.fromEntries(names.map((name) => [name, started.get(name)?.proc.pid])) as Record<K, number>,
    async stop() {
      await stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Names of the services whose process group is still alive. */
export function leakedServices(pids: Record<string, number>): string[] {
  return Object.entries(pids)
    .filter(([, pid]) => groupAlive(pid))
    .map(([name, pid]) => `${name} (process group ${pid})`);
}

function toolPath(variable: string): string {
  const value = process.env[variable];
  if (!value) {
    throw new Error(`${variable} is not set. Fix: run the tests with 'npm test', which bootstraps the test tools.`);
  }
  if (!fs.existsSync(value)) throw new Error(`${variable}=${value} does not exist. Fix: rerun 'npm test'.`);
  return value;
}

async function startTemporal(dir: string): Promise<Started<'temporal'>> {
  const port = await getPort({ host });
  const address = `${host}:${port}`;
  const args = devServerArgs({ ip: host, port, ui: 'headless', logLevel: 'error' });
  const proc = spawnManaged('Temporal dev server', toolPath('KEEL_TEMPORAL_BIN'), args, {
    logFile: path.join(dir, 'server.log'),
  });
  await waitUntilReady(proc, () => temporalAnswers(address));
  return { proc, endpoint: { address, namespace: 'default' } };
}

async function startMinio(dir: string): Promise<Started<'minio'>> {
  const ports = { port: await getPort({ host }), consolePort: await getPort({ host }) };
  const data = path.join(dir, 'data');
  fs.mkdirSync(data);
  return launchMinio(dir, ports);
}

/** Starts MinIO on the given ports over `<dir>/data` (kept as it is: a restart finds its objects). */
async function launchMinio(dir: string, ports: { port: number; consolePort: number }): Promise<Started<'minio'>> {
  const { port, consolePort } = ports;
  // Test-only credentials for a throw-away server on loopback.
  const accessKeyId = 'keel-test';
  const secretAccessKey = 'keel-test-secret';
  const data = path.join(dir, 'data');
  const proc = spawnManaged(
    'MinIO',
    toolPath('KEEL_MINIO_BIN'),
    ['server', data, '--address', `${host}:${port}`, '--console-address', `${host}:${consolePort}`, '--quiet'],
    {
      logFile: path.join(dir, 'server.log'),
      env: { ...process.env, MINIO_ROOT_USER: accessKeyId, MINIO_ROOT_PASSWORD: secretAccessKey, MINIO_BROWSER: 'off' },
    },
  );
  const endpoint = `http://${host}:${port}`;
  await waitUntilReady(proc, () => httpOk(`${endpoint}/minio/health/ready`));
  return { proc, endpoint: { endpoint, region: 'us-east-1', accessKeyId, secretAccessKey } };
}

/** A MinIO of one test's own, which the test may take down and bring back (outage tests). */
export interface PrivateMinio {
  endpoint: ServiceEndpoints['minio'];
  /** The current server's process-group leader (a new one after each restart). */
  readonly pid: number;
  /** Whether the server is up (started or restarted, not stopped). */
  readonly running: boolean;
  /** Takes the server down (SIGKILL by default: a crash; SIGTERM: an orderly stop) and waits
   *  until its process group is gone. Connections are refused until restart(). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the server stays, its port accepts connections, and nothing answers (a hung server,
   *  a network black hole). resume() sends SIGCONT. */
  pause(): void;
  resume(): void;
  /** Starts the server again on the same port over the same data folder; waits until it answers. */
  restart(): Promise<void>;
  /** Stops the server for good and deletes its folder. */
  close(): Promise<void>;
}

/**
 * Starts a MinIO that belongs to the caller (same binary as the shared one, its own folder and
 * ports), so a test can stop and restart it without disturbing the other tests' server.
 */
export async function startPrivateMinio(): Promise<PrivateMinio> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-minio-'));
  fs.mkdirSync(path.join(dir, 'data'));
  const ports = { port: await getPort({ host }), consolePort: await getPort({ host }) };
  let current: Started<'minio'> | undefined;
  try {
    current = await launchMinio(dir, ports);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const first = current;
  const alive = () =>
    current !== undefined && current.proc.child.exitCode === null && current.proc.child.signalCode === null;
  return {
    endpoint: first.endpoint,
    get pid() {
      return (current ?? first).proc.pid;
    },
    get running() {
      return alive();
    },
    async stop(signal = 'SIGKILL') {
      if (!current) return;
      const proc = current.proc;
      current = undefined;
      signalGroup(proc.pid, 'SIGCONT'); // a paused server cannot act on SIGTERM
      await stopManaged(proc, signal);
    },
    pause() {
      if (current) signalGroup(current.proc.pid, 'SIGSTOP');
    },
    resume() {
      if (current) signalGroup(current.proc.pid, 'SIGCONT');
    },
    async restart() {
      if (alive()) throw new Error('MinIO is still running: stop() it before restart()');
      current = await launchMinio(dir, ports);
    },
    async close() {
      if (current) {
        const proc = current.proc;
        current = undefined;
        signalGroup(proc.pid, 'SIGCONT');
        await stopManaged(proc, 'SIGTERM');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startFakeGcs(dir: string): Promise<Started<'gcs'>> {
  fs.mkdirSync(path.join(dir, 'data'));
  return launchFakeGcs(dir, await getPort({ host }));
}

/** Starts fake-gcs-server on `port` over `<dir>/data` (its filesystem backend: a restart finds
 *  its buckets and objects). */
async function launchFakeGcs(dir: string, port: number): Promise<Started<'gcs'>> {
  const endpoint = `http://${host}:${port}`;
  const root = path.join(dir, 'data');
  const args = ['-scheme', 'http', '-host', host, '-port', String(port), '-external-url', endpoint];
  args.push('-backend', 'filesystem', '-filesystem-root', root, '-log-level', 'warn');
  const proc = spawnManaged('fake-gcs-server', toolPath('KEEL_FAKE_GCS_BIN'), args, {
    logFile: path.join(dir, 'server.log'),
  });
  await waitUntilReady(proc, () => httpOk(`${endpoint}/storage/v1/b?project=keel-test`));
  return { proc, endpoint: { endpoint, projectId: 'keel-test' } };
}

/** A fake-gcs-server of one test's own, to take down and bring back (outage tests). */
export interface PrivateFakeGcs {
  endpoint: ServiceEndpoints['gcs'];
  readonly pid: number;
  /** SIGKILLs the server and waits until its process group is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port over the same folder; waits until it answers. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Like startPrivateMinio, for fake-gcs-server. */
export async function startPrivateFakeGcs(): Promise<PrivateFakeGcs> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-fake-gcs-'));
  fs.mkdirSync(path.join(dir, 'data'));
  const port = await getPort({ host });
  let current: Started<'gcs'> | undefined;
  try {
    current = await launchFakeGcs(dir, port);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const first = current;
  return {
    endpoint: first.endpoint,
    get pid() {
      return (current ?? first).proc.pid;
    },
    async stop() {
      if (!current) return;
      const proc = current.proc;
      current = undefined;
      await stopManaged(proc, 'SIGKILL');
    },
    async restart() {
      if (current) throw new Error('fake-gcs-server is still running: stop() it before restart()');
      current = await launchFakeGcs(dir, port);
    },
    async close() {
      if (current) {
        const proc = current.proc;
        current = undefined;
        await stopManaged(proc, 'SIGTERM');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startAzurite(dir: string): Promise<Started<'azurite'>> {
  const port = await getPort({ host });
  const location = path.join(dir, 'data');
  fs.mkdirSync(location);
  const args = ['--blobHost', host, '--blobPort', String(port), '--location', location];
  args.push('--skipApiVersionCheck', '--loose', '--debug', path.join(dir, 'debug.log'));
  const proc = spawnManaged('Azurite', toolPath('KEEL_AZURITE_BIN'), args, { logFile: path.join(dir, 'server.log') });
  await waitUntilReady(proc, () => isListening(host, port));
  // Azurite's fixed development account (documented by Microsoft; not a secret).
  const accountName = 'devstoreaccount1';
  const accountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
  const blobEndpoint = `http://${host}:${port}/${accountName}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${accountName};AccountKey=${accountKey};BlobEndpoint=${blobEndpoint};`;
  return { proc, endpoint: { blobEndpoint, accountName, accountKey, connectionString } };
}

async function startPostgres(dir: string): Promise<Started<'postgres'>> {
  const cluster = await initPostgresCluster(toolPath('KEEL_PG_BINDIR'), dir);
  const proc = spawnManaged('PostgreSQL', cluster.postgres, cluster.args, cluster.spawnOptions);
  await waitUntilReady(proc, () => postgresAnswers(cluster.url));
  return { proc, endpoint: { url: cluster.url }, stopSignal: 'SIGINT' };
}

/**
 * A new PostgreSQL cluster in `dir` (trust auth, loopback only, no fsync), on a free port: what to
 * spawn to run it. initdb and postgres refuse to run as root: when we are root, they run as the
 * 'postgres' user.
 */
export async function initPostgresCluster(bindir: string, dir: string) {
  const port = await getPort({ host });
  const data = path.join(dir, 'data');
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  execFileSync(path.join(bindir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'], {
    ...owner,
    stdio: 'pipe',
  });
  const logFile = path.join(dir, 'server.log');
  fs.writeFileSync(logFile, '');
  if (owner) fs.chownSync(logFile, owner.uid, owner.gid);
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    postgres: path.join(bindir, 'postgres'),
    args: ['-D', data, '-p', String(port), '-k', dir, '-c', `listen_addresses=${host}`, '-c', 'fsync=off'],
    spawnOptions: { logFile, ...owner },
  };
}

/** Whether the server at `url` answers a query (for waitUntilReady). */
export async function postgresAnswers(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The uid and gid PostgreSQL runs as when we are root (initdb and postgres refuse root). */
export function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      "running as root, and there is no 'postgres' user to run PostgreSQL as. Fix: apt-get install postgresql (creates it).",
    );
  }
}
