// `keel worker --check`: everything a worker needs, tried once without taking any work. A pod's
// bootstrap runs it before `keel worker`, so a wrong address, credential or bucket shows up as
// one named line at start, not as activities failing later.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, pendingMigrations } from '@keel/db';
import { openStorage } from '@keel/storage';
import { keelSearchAttributes } from '@keel/workflows/search-attributes';
import { Connection } from '@temporalio/client';
import type { WorkerConfig } from './config.ts';
import { describeGpus, describeHost, describeSlots } from './host.ts';

export interface CheckResult {
  name: 'temporal' | 'database' | 'storage' | 'work dir' | 'gpus' | 'slots';
  ok: boolean;
  detail: string;
}

/** Runs every check (each on its own: one failure does not hide the others). */
export async function checkWorker(config: WorkerConfig, env: NodeJS.ProcessEnv = process.env): Promise<CheckResult[]> {
  const host = describeHost(config, env);
  const checks: [CheckResult['name'], () => Promise<string>][] = [
    ['temporal', () => checkTemporal(config)],
    ['database', () => checkDatabase(config.databaseUrl)],
    ['storage', () => checkStorage(config.storageUri)],
    ['work dir', () => checkWorkDir(config.workDir)],
    ['gpus', async () => describeGpus(host)],
    ['slots', async () => describeSlots(host)],
  ];
  return Promise.all(
    checks.map(async ([name, run]) => {
      try {
        return { name, ok: true, detail: await run() };
      } catch (err) {
        return { name, ok: false, detail: (err as Error).message };
      }
    }),
  );
}

async function checkTemporal(config: WorkerConfig): Promise<string> {
  const { address } = config.temporal.connectionOptions;
  const namespace = config.temporal.namespace ?? 'default';
  const how = connectionKind(config);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...config.temporal.connectionOptions, connectTimeout: '10 seconds' });
  } catch (err) {
    throw new Error(
      `cannot reach ${address}${how}: ${(err as Error).message} (TEMPORAL_ADDRESS, TEMPORAL_TLS_*, TEMPORAL_API_KEY)`,
    );
  }
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } catch (err) {
    await connection.close();
    throw new Error(
      `reached ${address}${how}, but namespace '${namespace}': ${(err as Error).message} (TEMPORAL_NAMESPACE, TEMPORAL_API_KEY)`,
    );
  }
  let attributes: string;
  try {
    attributes = await missingSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }
  return `${address}${how}, namespace '${namespace}'${attributes}; task queues ${config.taskQueue}, ${config.gpuTaskQueue}, ${config.hostTaskQueue}`;
}

/** How the connection is secured, for the check's line: ` (TLS, API key)`, ` (mTLS)`, or nothing. */
function connectionKind(config: WorkerConfig): string {
  const { tls, apiKey } = config.temporal.connectionOptions;
  const parts = [];
  if (tls) parts.push(typeof tls === 'object' && tls.clientCertPair ? 'mTLS' : 'TLS');
  if (apiKey) parts.push('API key');
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/**
 * keel's workflows set typed search attributes (KeelKind, KeelStatus, ...); on a namespace that
 * lacks them every job's first workflow task fails. `keel dev` registers them on its server; a
 * fleet's cluster needs them registered once (docs/fleet.md). Where the operator API is not
 * open to this client (Temporal Cloud registers them with tcld or the UI), this says so instead.
 */
async function missingSearchAttributes(connection: Connection, namespace: string): Promise<string> {
  let names: string[];
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    names = Object.keys(customAttributes ?? {});
  } catch (err) {
    return ` (search attributes not checked: ${(err as Error).message})`;
  }
  const missing = keelSearchAttributes.filter((key) => !names.includes(key.name));
  if (missing.length === 0) return `, keel's search attributes registered`;
  // One attribute per command: the Temporal CLI (v1.5.1) adds only the first of several --name.
  const commands = missing.map(
    (key) =>
      `temporal operator search-attribute create --namespace ${namespace} --name ${key.name} ` +
      `--type ${key.type.charAt(0)}${key.type.slice(1).toLowerCase()}`,
  );
  throw new Error(
    `namespace '${namespace}' lacks keel's search attributes ${missing.map((k) => k.name).join(', ')}; ` +
      `register them once (docs/fleet.md): ${commands.join(' && ')}`,
  );
}

async function checkDatabase(url: string): Promise<string> {
  const shown = redactUrl(url);
  const db = await openDatabase({ url }).catch((err: Error) => {
    throw new Error(`cannot open ${shown}: ${err.message} (DATABASE_URL)`);
  });
  try {
    const pending = await pendingMigrations(db).catch((err: Error) => {
      throw new Error(`cannot query ${shown}: ${err.message} (DATABASE_URL)`);
    });
    return `${shown} (${db.dialect}); ${pending === 0 ? 'schema up to date' : `${pending} migration(s) to apply at worker start`}`;
  } finally {
    await db.close();
  }
}

/** Writes, reads back and deletes a small object: proves the credentials can do what uploads do. */
async function checkStorage(uri: string): Promise<string> {
  // A local folder is created on first use by the worker too (startJob).
  if (uri.startsWith('file://')) await fs.mkdir(new URL(uri), { recursive: true });
  const storage = openStorage(uri);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'keel-check-'));
  const key = `.keel-check/${os.hostname()}-${randomUUID()}`;
  try {
    const file = path.join(dir, 'probe');
    await fs.writeFile(file, `keel worker --check ${new Date().toISOString()}\n`);
    await storage.put(key, file);
    await storage.get(key, path.join(dir, 'back'));
    await storage.delete(key);
    return `${uri}: write, read (sha256 checked) and delete work`;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function checkWorkDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const probe = path.join(dir, `.keel-check-${process.pid}`);
  await fs.writeFile(probe, '');
  await fs.rm(probe);
  const stats = await fs.statfs(dir);
  const freeGiB = (stats.bavail * stats.bsize) / 2 ** 30;
  return `${dir}: writable, ${freeGiB.toFixed(1)} GiB free (staged checkpoints wait here until uploaded)`;
}

/** The URL without its password: the check's output ends up in pod logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}
