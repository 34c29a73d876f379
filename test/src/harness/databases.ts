// Fresh databases for the repository tests: a SQLite file in a temp folder, or a new database on
// the harness's PostgreSQL. Each test file gets its own, so tests never see each other's rows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Dialect } from '@keel/db';
import postgres from 'postgres';

export interface FreshDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function freshDatabase(dialect: Dialect, postgresUrl: string): Promise<FreshDatabase> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-db-'));
    return { url: `file:${path.join(dir, 'keel.db')}`, drop: async () => fs.rmSync(dir, { recursive: true }) };
  }
  const name = `keel_${Math.random().toString(36).slice(2, 10)}`;
  const admin = postgres(postgresUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
