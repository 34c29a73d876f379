// Opens keel's database: a SQLite file by default (one machine, several processes), PostgreSQL
// when DATABASE_URL says so (fleets). Both drivers run under Node, Bun and Deno.
import fs from 'node:fs';
import path from 'node:path';
import type { SQL } from 'drizzle-orm';
import { drizzle as drizzleLibsql, type LibSQLDatabase } from 'drizzle-orm/libsql';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { DatabaseConfigError } from './errors.ts';
import * as postgresTables from './schema/postgres.ts';
import * as sqliteTables from './schema/sqlite.ts';
import { openSerializedSqliteClient } from './sqlite-writes.ts';
import { type Dialect, dialectOf, redact, resolveDatabaseUrl, type UrlOptions } from './url.ts';

export type Tables = typeof sqliteTables;

/**
 * An open database. Drizzle has no dialect-neutral tables, so the repository is typed against the
 * SQLite tables and query builder; on Postgres `orm` and `tables` are Drizzle's Postgres objects,
 * which expose the same methods and return the same row shapes (schema/postgres.ts mirrors
 * schema/sqlite.ts column for column, and the repository only uses calls both dialects share).
 */
export interface KeelDatabase {
  readonly dialect: Dialect;
  /** The URL it was opened with. It may hold a password: print `location` instead. */
  readonly url: string;
  /** Where it lives, with any password removed: safe to print. */
  readonly location: string;
  readonly orm: LibSQLDatabase;
  readonly tables: Tables;
  close(): Promise<void>;
}

export interface DatabaseOptions extends UrlOptions {
  /** How long a SQLite write waits for another process's lock before failing (ms). */
  busyTimeoutMs?: number;
  /** PostgreSQL pool size. */
  maxConnections?: number;
}

export const defaultBusyTimeoutMs = 10_000;

/** Opens the database. It does not migrate: workers call migrateDatabase at start. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<KeelDatabase> {
  const url = resolveDatabaseUrl(options);
  return dialectOf(url) === 'postgres' ? openPostgres(url, options) : openSqlite(url, options);
}

async function openSqlite(url: string, options: DatabaseOptions): Promise<KeelDatabase> {
  const file = url.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  // Processes sharing the file wait for each other's writes (up to the busy timeout) instead of
  // failing with SQLITE_BUSY; see sqlite-writes.ts for how, and for the libsql bug it avoids.
  const client = openSerializedSqliteClient({ url, busyTimeoutMs: options.busyTimeoutMs ?? defaultBusyTimeoutMs });
  try {
    // WAL lets readers (CLI, HTTP API) run while a worker writes; the mode is stored in the file.
    await client.execute('PRAGMA journal_mode = WAL');
  } catch (err) {
    client.close();
    throw new DatabaseConfigError(`cannot open SQLite database ${file}: ${(err as Error).message}`, { cause: err });
  }
  return {
    dialect: 'sqlite',
    url,
    location: file,
    orm: drizzleLibsql(client),
    tables: sqliteTables,
    close: async () => client.close(),
  };
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<KeelDatabase> {
  const client = postgres(url, { max: options.maxConnections ?? 10, onnotice: () => {} });
  try {
    await client`select 1`;
  } catch (err) {
    await client.end({ timeout: 1 });
    throw new DatabaseConfigError(`cannot reach PostgreSQL at ${redact(url)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    dialect: 'postgres',
    url,
    location: redact(url),
    orm: drizzlePostgres(client) as unknown as LibSQLDatabase,
    tables: postgresTables as unknown as Tables,
    close: () => client.end({ timeout: 5 }),
  };
}

/** Rows of a raw query; the one place where the dialects' drivers are called differently. */
export async function queryRows<Row>(db: KeelDatabase, query: SQL): Promise<Row[]> {
  if (db.dialect === 'sqlite') return db.orm.all<Row>(query);
  const pg = db.orm as unknown as { execute(query: SQL): Promise<Row[]> };
  return [...(await pg.execute(query))];
}
