// docs/fleet.md, run as written. Every ```sh block after `<!-- recipe: name -->` is taken from the
// doc and run with bash, and every ```dotenv block after `<!-- env: name -->` is loaded:
// - Each settings listing is read by keel's own loaders (no network): the addresses, namespace,
//   API key, TLS, storage URI, GPU class, metrics and preemption settings come out as the page
//   says.
// - The page's fleet is then built for real, in this order: the image (`npm run setup` in a copy of
//   the checkout), the namespace and its search attributes (`keel worker --check` names them while
//   missing), the database and role, a CPU pod (no GPU class), a job that needs GPU class a100
//   (its progress says no worker serves the class), two A100 pods, all three started with the
//   page's own start command, health and metrics, database connections, a rehearsed preemption of
//   the first A100 pod (it exits 0 and the job resumes on the second), and the job watched to its
//   end. The pods' settings are the page's listings
//   with this test's servers as values: Temporal behind a TLS proxy that demands a client
//   certificate (the mTLS listing), PostgreSQL, MinIO as the S3-compatible endpoint (the R2
//   listing), a notice file as the preemption source. No GPU here: each pod finds its GPUs with a
//   fake `nvidia-smi` on its PATH that prints recorded nvidia-smi output (four A100s).
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { resolveDatabaseUrl } from '@keel/db/url';
import { openStorage } from '@keel/storage';
import { loadTemporalConfig, loadWorkerConfig } from '@keel/workers/config';
import getPort from 'get-port';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type PrivateTemporal, startPrivateTemporal } from '../harness/private-temporal.ts';
import { fencedBlocks, markedBlocks, type Ran, runBash, runUntil } from './doc-recipes.ts';

const services = inject('services');
const docFile = path.resolve('docs/fleet.md');
const doc = fs.readFileSync(docFile, 'utf8');

const fences = (lang: string) => fencedBlocks(doc, lang);
const recipes = markedBlocks(doc, 'recipe', 'sh');
const envBlocks = markedBlocks(doc, 'env', 'dotenv');
const ran = new Set<string>();

/** A dotenv listing as a map (comments and blank lines skipped). */
function envOf(name: string): Record<string, string> {
  const block = envBlocks.get(name);
  if (block === undefined) throw new Error(`docs/fleet.md has no env listing '${name}'`);
  const entries = block
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => {
      const at = l.indexOf('=');
      return [l.slice(0, at), l.slice(at + 1)] as [string, string];
    });
  return Object.fromEntries(entries);
}

/** The listing's variables with this test's values: the same names, none more, none fewer. */
function sameKeys(name: string, values: Record<string, string>): Record<string, string> {
  expect(Object.keys(values).sort(), `the variables of the '${name}' listing`).toEqual(Object.keys(envOf(name)).sort());
  return values;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-fleet-doc-'));
/** The image's checkout: a copy of this one's files (tracked and new, as git lists them). */
const checkout = path.join(root, 'checkout');
const fakeGpus = path.join(root, 'fake-nvidia-smi');
// What `nvidia-smi --query-gpu=index,name --format=csv,noheader` prints on a host with four A100s.
const recordedNvidiaSmi =
  '0, NVIDIA A100-SXM4-80GB\n1, NVIDIA A100-SXM4-80GB\n2, NVIDIA A100-SXM4-80GB\n3, NVIDIA A100-SXM4-80GB\n';

/** What every process here starts from: this machine's PATH and HOME, none of the test's settings. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Nor what npm and pnpm pass to the scripts they run (this test runs under `pnpm exec`).
    if (!/^(KEEL_|TEMPORAL_|DATABASE_URL$|AWS_|GOOGLE_|AZURE_|PG|npm_|PNPM_)/i.test(key)) env[key] = value;
  }
  return env;
}

/** Runs a recipe as the doc has it (bash, stopping at the first failing command) in the checkout. */
async function run(name: string, env: Record<string, string>): Promise<Ran> {
  const recipe = recipes.get(name);
  if (recipe === undefined) throw new Error(`docs/fleet.md has no recipe '${name}'`);
  ran.add(name);
  return runScript(recipe, env);
}

const runScript = (script: string, env: Record<string, string>) =>
  runBash(script, { cwd: checkout, env: { ...baseEnv(), ...env }, timeoutMs: 150_000 });

/** Runs the recipe again until `ok` holds for what it printed. */
const until = (name: string, env: Record<string, string>, ok: (r: Ran) => boolean, timeoutMs = 90_000) =>
  runUntil(name, () => run(name, env), ok, { timeoutMs, pauseMs: 1000 });

/** The JSON an `npm run keel -- … --json` prints after npm's own banner lines. */
function jsonOf<T>(r: Ran): T {
  const at = r.stdout.search(/^\{/m);
  if (at < 0) throw new Error(`no JSON in:\n${r.stdout}`);
  return JSON.parse(r.stdout.slice(at)) as T;
}

/** `keel worker --check` with the given settings (the page's check, run on its own). Async: the
 *  TLS proxy it may go through runs in this process. */
async function check(env: Record<string, string>): Promise<Ran & { line: (part: string) => string }> {
  const result = await new Promise<Ran>((resolve) => {
    execFile(
      process.execPath,
      [path.resolve('client/src/cli.ts'), 'worker', '--check'],
      { env: { ...baseEnv(), KEEL_HOME: path.join(root, 'check-home'), KEEL_GPUS: 'none', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
  const line = (part: string) => result.stdout.split('\n').find((l) => l.slice(6).startsWith(part)) ?? '';
  return { ...result, line };
}

// ---- servers: Temporal behind an mTLS proxy, PostgreSQL, MinIO

let temporal: PrivateTemporal;
let proxy: tls.Server;
const proxySockets = new Set<net.Socket>();
let proxyAddress = '';
const tlsDir = path.join(root, 'tls');

/** A CA, a server certificate for temporal.internal and a client certificate, with openssl. */
function makeCertificates(): void {
  fs.mkdirSync(tlsDir);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: tlsDir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=keel test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  for (const [name, usage, san] of [
    ['server', 'serverAuth', 'subjectAltName=DNS:temporal.internal'],
    ['client', 'clientAuth', 'subjectAltName=DNS:gpu-pod'],
  ] as const) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    fs.writeFileSync(
      path.join(tlsDir, `${name}.ext`),
      `${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
}

/** A TLS front for the dev server that, like a secured cluster, refuses clients without a certificate. */
async function startTlsProxy(upstream: string): Promise<void> {
  const [upHost, upPort] = upstream.split(':') as [string, string];
  proxy = tls.createServer(
    {
      key: fs.readFileSync(path.join(tlsDir, 'server.key')),
      cert: fs.readFileSync(path.join(tlsDir, 'server.pem')),
      ca: fs.readFileSync(path.join(tlsDir, 'ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'], // gRPC clients insist on it
    },
    (socket) => {
      const backend = net.connect(Number(upPort), upHost);
      for (const s of [socket, backend]) {
        proxySockets.add(s);
        s.on('close', () => proxySockets.delete(s));
        s.on('error', () => {
          socket.destroy();
          backend.destroy();
        });
      }
      socket.pipe(backend).pipe(socket);
    },
  );
  proxy.on('tlsClientError', () => {}); // a client without a certificate: refused, as intended
  const port = await getPort({ host: '127.0.0.1' });
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  proxyAddress = `127.0.0.1:${port}`;
}

const pgUrl = new URL(services.postgres.url);
/** The database the page's recipe creates, on this test's PostgreSQL. */
const keelDatabaseUrl = `postgres://keel:change-me@${pgUrl.host}/keel`;
const admin = postgres(services.postgres.url, { max: 1, onnotice: () => {} });
async function dropKeelDatabase(): Promise<void> {
  await admin.unsafe('drop database if exists keel with (force)');
  await admin.unsafe('drop role if exists keel');
}

// ---- the pods

/** The page's Temporal listings (self-hosted + mTLS) with this test's values. */
function temporalEnv(): Record<string, string> {
  return {
    ...sameKeys('temporal-self-hosted', { TEMPORAL_ADDRESS: proxyAddress, TEMPORAL_NAMESPACE: 'ml' }),
    ...sameKeys('temporal-mtls', {
      TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(tlsDir, 'client.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(tlsDir, 'client.key'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(tlsDir, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    }),
  };
}

/** What a client (the keel CLI on an admin's machine) needs: Temporal and the database. */
function clientEnv(): Record<string, string> {
  return { ...temporalEnv(), ...sameKeys('database', { DATABASE_URL: keelDatabaseUrl }) };
}

interface Pod {
  name: string;
  env: Record<string, string>;
  child: ChildProcess;
  log(): string;
  exited: Promise<number | null>;
}
const pods: Pod[] = [];

/** A pod's settings: the page's listings, this test's values. An A100 host finds four GPUs with
 *  the fake nvidia-smi; a CPU host has none and no GPU class. */
async function podEnv(name: string, kind: 'a100' | 'cpu'): Promise<Record<string, string>> {
  const home = path.join(root, name);
  fs.mkdirSync(home);
  return {
    ...clientEnv(),
    ...sameKeys('storage-r2', {
      KEEL_STORAGE_URI: 's3://ml-checkpoints/keel',
      AWS_ENDPOINT_URL_S3: services.minio.endpoint,
      AWS_REGION: services.minio.region,
      AWS_ACCESS_KEY_ID: services.minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: services.minio.secretAccessKey,
    }),
    ...sameKeys('host', {
      KEEL_GPU_CLASS: kind === 'a100' ? 'a100' : '',
      KEEL_HOST_ID: name,
      KEEL_HOME: home,
      KEEL_METRICS_PORT: String(await getPort({ host: '127.0.0.1' })),
      KEEL_METRICS_HOST: '127.0.0.1',
      KEEL_PREEMPTION_NOTICE: `file:${path.join(home, 'preempt')}`,
      KEEL_DRAIN_SECONDS: '90',
    }),
    PATH: kind === 'a100' ? `${fakeGpus}${path.delimiter}${process.env.PATH}` : (process.env.PATH as string),
  };
}

/** A pod: the page's start command, as written (no options added), with its settings. */
async function startPod(name: string, kind: 'a100' | 'cpu'): Promise<Pod> {
  const env = await podEnv(name, kind);
  ran.add('pod-start');
  const child = spawn('bash', ['-c', recipes.get('pod-start') as string], {
    cwd: checkout,
    env: { ...baseEnv(), ...env },
    detached: true, // its own process group, as a container's processes are
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const pod = { name, env, child, log: () => log, exited };
  pods.push(pod);
  const deadline = Date.now() + 150_000;
  while (!log.includes('keel worker: serving task queues')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`pod ${name} did not start:\n${log}`);
    await sleep(200);
  }
  return pod;
}

function stopPods(): void {
  for (const pod of pods) {
    if (pod.child.exitCode !== null) continue;
    try {
      process.kill(-(pod.child.pid as number), 'SIGKILL');
    } catch {}
  }
}

beforeAll(async () => {
  fs.mkdirSync(fakeGpus);
  fs.writeFileSync(path.join(fakeGpus, 'recorded-output.csv'), recordedNvidiaSmi);
  fs.writeFileSync(
    path.join(fakeGpus, 'nvidia-smi'),
    `#!/bin/sh\n# A fake nvidia-smi (no GPU here): recorded output for the one query keel makes.\n` +
      `[ "$*" = "--query-gpu=index,name --format=csv,noheader" ] || exit 9\nexec cat '${path.join(fakeGpus, 'recorded-output.csv')}'\n`,
    { mode: 0o755 },
  );
  makeCertificates();
  temporal = await startPrivateTemporal();
  await startTlsProxy(temporal.address);
  await dropKeelDatabase();
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({
    endpoint: services.minio.endpoint,
    region: services.minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: services.minio.accessKeyId, secretAccessKey: services.minio.secretAccessKey },
  });
  await s3.send(new CreateBucketCommand({ Bucket: 'ml-checkpoints' })).catch(() => {});
  s3.destroy();
  // The image: the checkout's files, then `npm run setup` once, as the page says to build it.
  fs.mkdirSync(checkout);
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && fs.existsSync(f));
  for (const file of files) fs.cpSync(file, path.join(checkout, file));
  execFileSync('npm', ['run', 'setup'], { cwd: checkout, env: baseEnv(), stdio: 'pipe', timeout: 300_000 });
}, 400_000);

afterAll(async () => {
  stopPods();
  for (const s of proxySockets) s.destroy();
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
  await temporal?.close();
  await dropKeelDatabase().catch(() => {});
  await admin.end();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('docs/fleet.md', () => {
  test('marks every shell block as a recipe and every settings listing as env', () => {
    expect([...recipes.keys()].sort()).toEqual(
      [
        'database',
        'database-connections',
        'health',
        'job-start',
        'job-status',
        'job-watch',
        'namespace',
        'pod-start',
        'rehearse-preemption',
      ].sort(),
    );
    expect(fences('sh')).toHaveLength(recipes.size); // none unmarked, no name used twice
    expect(fences('dotenv')).toHaveLength(envBlocks.size);
    expect([...envBlocks.keys()].sort()).toEqual(
      [
        'database',
        'host',
        'storage-gcs',
        'storage-r2',
        'storage-s3',
        'temporal-cloud',
        'temporal-mtls',
        'temporal-self-hosted',
      ].sort(),
    );
  });

  test('the settings listings are read as the page says (keel loaders, no network)', async () => {
    const selfHosted = loadTemporalConfig(envOf('temporal-self-hosted'));
    expect(selfHosted.connectionOptions).toMatchObject({ address: 'temporal.internal:7233' });
    expect(selfHosted.connectionOptions.tls).toBeFalsy();
    expect(selfHosted.namespace).toBe('ml');

    const cloud = loadTemporalConfig(envOf('temporal-cloud'));
    expect(cloud.namespace).toBe('ml-prod.a1b2c');
    expect(cloud.connectionOptions).toMatchObject({
      address: 'us-east-1.aws.api.temporal.io:7233',
      apiKey: 'replace-with-the-service-account-key',
    });
    expect(cloud.connectionOptions.tls).toBeTruthy(); // "TLS is then on by itself"

    expect(resolveDatabaseUrl({ env: envOf('database') })).toBe('postgres://keel:change-me@db.internal:5432/keel');
    for (const [name, uri] of [
      ['storage-s3', 's3://ml-checkpoints/keel'],
      ['storage-r2', 's3://ml-checkpoints/keel'],
      ['storage-gcs', 'gs://ml-checkpoints/keel'],
    ] as const) {
      const env = envOf(name);
      expect(loadWorkerConfig(env).storageUri, name).toBe(uri);
    }
    // R2 as the page has it: its endpoint and region reach the S3 client (opening makes no request).
    const r2 = envOf('storage-r2');
    const saved = { ...process.env };
    Object.assign(process.env, r2);
    try {
      const storage = openStorage(r2.KEEL_STORAGE_URI as string);
      await storage.close();
    } finally {
      for (const key of Object.keys(r2)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }

    const host = loadWorkerConfig(envOf('host'));
    expect(host).toMatchObject({
      gpuClass: 'a100',
      gpuTaskQueue: 'keel-gpu-a100',
      hostId: 'gpu-pod-1',
      hostTaskQueue: 'keel-host-gpu-pod-1',
      workDir: '/workspace/keel/work',
      storageUri: 'file:///workspace/keel/checkpoints',
      metrics: { host: '0.0.0.0', port: 9464 },
      preemptionNotice: { source: 'http://169.254.169.254/latest/meta-data/spot/instance-action' },
      drainSeconds: 90,
    });
  });

  test('mTLS for real: through the TLS proxy the check passes with the listing’s certificate, and fails without one', async () => {
    const withCert = await check({ ...temporalEnv(), TEMPORAL_NAMESPACE: 'default' });
    expect(withCert.line('temporal')).toMatch(
      new RegExp(
        `^ok {4}temporal  ${proxyAddress} \\(mTLS\\), namespace 'default', keel's search attributes registered;`,
      ),
    );
    const { TEMPORAL_TLS_CLIENT_CERT_PATH: _, TEMPORAL_TLS_CLIENT_KEY_PATH: __, ...noCert } = temporalEnv();
    const without = await check({ ...noCert, TEMPORAL_NAMESPACE: 'default' });
    expect(without.line('temporal')).toMatch(new RegExp(`^FAIL {2}temporal  cannot reach ${proxyAddress} \\(TLS\\): `));
  });

  test('a pod whose check fails exits 1 naming the part, and starts no worker', async () => {
    const env = { ...(await podEnv('broken-pod', 'cpu')), DATABASE_URL: 'postgres://keel:change-me@127.0.0.1:1/keel' };
    const child = spawn('bash', ['-c', recipes.get('pod-start') as string], {
      cwd: checkout,
      env: { ...baseEnv(), ...env },
    });
    let log = '';
    child.stdout.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, log).toBe(1);
    expect(log).toMatch(
      /^FAIL {2}database {2}cannot open postgres:\/\/keel:\*\*\*@127\.0\.0\.1:1\/keel: .*\(DATABASE_URL\)$/m,
    );
    // (Temporal fails too when this runs before the namespace exists: each part is named.)
    expect(log).toMatch(/^keel: worker check failed: (temporal, )?database$/m);
    expect(log).not.toContain('keel worker: serving');
    expect(log).not.toContain('change-me');
  });

  test('a fleet from the page: namespace, database, a job waiting for its class, two pods, health, a rehearsed preemption', async () => {
    // The namespace: missing, then without keel's search attributes (the check names the
    // commands), then ready.
    const admin = temporalEnv();
    expect((await check(admin)).line('temporal')).toMatch(/^FAIL {2}temporal .*namespace 'ml'.*\(TEMPORAL_NAMESPACE/);
    const created = await run('namespace', admin);
    expect(created.stdout, created.stderr).toContain('Namespace ml successfully registered.');
    // As the page warns: a namespace just created may not be known yet to the next command.
    if (created.code !== 0) expect(created.stdout + created.stderr).toContain('Namespace ml is not found');
    let missing = '';
    for (const deadline = Date.now() + 60_000; !missing.includes('lacks') && Date.now() < deadline; await sleep(1000)) {
      missing = (await check(admin)).line('temporal');
    }
    expect(missing).toBe(
      "FAIL  temporal  namespace 'ml' lacks keel's search attributes KeelKind, KeelJob, KeelStudy, KeelStatus, " +
        'KeelBestValue, KeelTrialsDone; register them once (docs/fleet.md): ' +
        [
          'KeelKind --type Keyword',
          'KeelJob --type Keyword',
          'KeelStudy --type Keyword',
          'KeelStatus --type Keyword',
          'KeelBestValue --type Double',
          'KeelTrialsDone --type Int',
        ]
          .map((a) => `temporal operator search-attribute create --namespace ml --name ${a}`)
          .join(' && '),
    );
    // The page's answer to that: its attribute commands (run again while the namespace is new).
    const attributes = (recipes.get('namespace') as string).replace(/^temporal operator namespace create .*\n/m, '');
    expect(attributes).not.toBe(recipes.get('namespace'));
    let registered = await runScript(attributes, admin);
    for (const deadline = Date.now() + 60_000; registered.code !== 0 && Date.now() < deadline; await sleep(1000)) {
      registered = await runScript(attributes, admin);
    }
    expect(registered.code, registered.stdout + registered.stderr).toBe(0);
    expect((await check(admin)).line('temporal')).toMatch(
      /^ok {4}temporal .*namespace 'ml', keel's search attributes registered/,
    );

    // The database and its role, as the database's superuser.
    const database = await run('database', {
      PGHOST: pgUrl.hostname,
      PGPORT: pgUrl.port,
      PGUSER: decodeURIComponent(pgUrl.username),
    });
    expect(database.code, database.stderr).toBe(0);

    // A CPU host first (no GPU class): it runs the workflows, and takes no A100 job.
    const cpu = await startPod('cpu-1', 'cpu');
    expect(cpu.log()).toContain(
      'ok    gpus      none: a CPU-only host (jobs asking for GPUs fail here; beside GPU hosts, give it a class of its own, e.g. KEEL_GPU_CLASS=cpu); ' +
        'no GPU class: takes jobs without gpuClass from task queue keel-gpu',
    );
    expect(cpu.log()).toContain("keel worker: serving task queues 'keel', 'keel-gpu', 'keel-host-cpu-1'");

    // A job that needs an A100, before any A100 host is up: it says so.
    const JOB_ID = `fleet-doc-${Date.now()}`;
    const client = { ...clientEnv(), JOB_ID };
    const started = await run('job-start', client);
    expect(started.code, started.stdout + started.stderr).toBe(0);
    const waiting = jsonOf<{ waiting: string | null; status: string; attempt: number; taskQueue: string }>(
      await until('job-status', client, (r) => jsonOf<{ waiting: string | null }>(r).waiting !== null),
    );
    expect(waiting).toMatchObject({
      status: 'running',
      attempt: 0,
      taskQueue: 'keel-gpu-a100',
      waiting: 'waiting: no worker serves GPU class a100 (task queue keel-gpu-a100)',
    });

    // The first A100 pod: its check passes line by line, then it takes the job.
    const pod1 = await startPod('gpu-pod-1', 'a100');
    const log1 = pod1.log();
    expect(log1).toMatch(/^bootstrap: ready/m);
    expect(log1).toMatch(
      new RegExp(
        `^ok {4}temporal  ${proxyAddress} \\(mTLS\\), namespace 'ml', keel's search attributes registered; task queues keel, keel-gpu-a100, keel-host-gpu-pod-1$`,
        'm',
      ),
    );
    expect(log1).toMatch(/^ok {4}database {2}postgres:\/\/keel:\*\*\*@.*\/keel \(postgres\); schema up to date$/m);
    expect(log1).toMatch(
      /^ok {4}storage {3}s3:\/\/ml-checkpoints\/keel: write, read \(sha256 checked\) and delete work$/m,
    );
    expect(log1).toMatch(/^ok {4}work dir {2}/m);
    expect(log1).toContain(
      "ok    gpus      4: 0 (NVIDIA A100-SXM4-80GB), 1 (NVIDIA A100-SXM4-80GB), 2 (NVIDIA A100-SXM4-80GB), 3 (NVIDIA A100-SXM4-80GB); GPU class a100: takes jobs with gpuClass 'a100' from task queue keel-gpu-a100",
    );
    expect(log1).toContain("keel worker: serving task queues 'keel', 'keel-gpu-a100', 'keel-host-gpu-pod-1'");
    expect(log1).not.toContain('change-me');
    const training = jsonOf<{ waiting: string | null; step: number | null }>(
      await until('job-status', client, (r) => (jsonOf<{ step: number | null }>(r).step ?? 0) >= 100),
    );
    expect(training.waiting).toBeNull();

    // Health and metrics, from inside the pod.
    const health = await run('health', pod1.env);
    expect(health.code, health.stderr).toBe(0);
    const [healthz, ...metricLines] = health.stdout.trim().split('\n');
    expect(JSON.parse(healthz as string)).toMatchObject({
      ok: true,
      host: 'gpu-pod-1',
      gpus: { total: 4, busy: 1, class: 'a100', models: ['NVIDIA A100-SXM4-80GB'] },
      trainers: 1,
    });
    expect(metricLines).toEqual([
      'keel_worker_info{gpu_class="a100",gpu_task_queue="keel-gpu-a100",gpu_models="NVIDIA A100-SXM4-80GB",host="gpu-pod-1"} 1',
      'keel_gpu_slots{host="gpu-pod-1"} 4',
      'keel_gpu_slots_busy{host="gpu-pod-1"} 1',
    ]);

    // A second pod of the class; the database's connections with both up.
    const pod2 = await startPod('gpu-pod-2', 'a100');
    expect(pod2.log()).toContain("serving task queues 'keel', 'keel-gpu-a100', 'keel-host-gpu-pod-2'");
    const connections = await run('database-connections', client);
    expect(connections.code, connections.stderr).toBe(0);
    expect(connections.stdout).toMatch(/max_connections\s*\n-+\s*\n\s*\d+/);
    const held = Number(/keel_connections\s*\n-+\s*\n\s*(\d+)/.exec(connections.stdout)?.[1]);
    expect(held).toBeGreaterThanOrEqual(3); // each of the three pods holds some
    expect(held).toBeLessThanOrEqual(3 * 10 + 1); // at most 10 each, plus this psql

    // A rehearsed preemption of the first pod: it saves, drains, exits 0; the job resumes on the second.
    const rehearsal = await run('rehearse-preemption', pod1.env);
    expect(rehearsal.code, rehearsal.stderr).toBe(0);
    expect(await pod1.exited).toBe(0);
    expect(pod1.log()).toMatch(
      /keel worker: preemption notice \(.*gpu-pod-1\/preempt appeared\), preempting 1 trainer\(s\)/,
    );
    const watched = await run('job-watch', client);
    expect(watched.code, watched.stdout + watched.stderr).toBe(0);
    expect(watched.stdout).toMatch(new RegExp(`job ${JOB_ID} completed: step 6000 `));
    const final = jsonOf<{
      status: string;
      preemptions: number;
      failures: number;
      resumedFromStep: number | null;
      attempt: number;
    }>(await run('job-status', client));
    expect(final).toMatchObject({ status: 'completed', preemptions: 1, failures: 0, attempt: 2 });
    expect(final.resumedFromStep).toBeGreaterThanOrEqual(100);
    expect(pod2.log()).not.toContain('preempting');
    expect(cpu.log()).not.toContain('preempting');
  }, 600_000);

  test('every recipe in the doc was run', () => {
    expect([...recipes.keys()].filter((name) => !ran.has(name))).toEqual([]);
  });
});
