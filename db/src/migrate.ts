// Applies the migrations drizzle-kit generated (db/migrations/<dialect>) at worker start. Workers
// on several hosts, or several processes on one machine, may start at the same moment; each
// dialect gets the guard it needs so that exactly one of them applies each migration.
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { migrate as migrateLibsql } from 'drizzle-orm/libsql/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { type KeelDatabase, queryRows } from './open.ts';
import type { Dialect } from './url.ts';

/** pg_advisory_lock key: "keel" in ASCII, so other tools' keys are unlikely to collide. */
const migrationLockKey = 0x6b65656c;

export function migrationsFolder(dialect: Dialect): string {
  return fileURLToPath(new URL(`../migrations/${dialect}`, import.meta.url));
}

/** Brings the schema up to date. Safe to call from many processes at once. */
export async function migrateDatabase(db: KeelDatabase): Promise<void> {
  if ((await pendingMigrations(db)) === 0) return;
  if (db.dialect === 'postgres') await migratePostgresLocked(db);
  else await migrateSqlite(db);
}

/** Migrations in the folder that the database has not recorded yet. */
export async function pendingMigrations(db: KeelDatabase): Promise<number> {
  const files = readMigrationFiles({ migrationsFolder: migrationsFolder(db.dialect) });
  const last = await lastAppliedMigration(db);
  return files.filter((m) => last === undefined || m.folderMillis > last).length;
}

/** How many migrations the database has recorded as applied. */
export async function appliedMigrations(db: KeelDatabase): Promise<number> {
  if (!(await hasMigrationsTable(db))) return 0;
  const [row] = await queryRows<{ n: unknown }>(db, sql`select count(*) as n from ${migrationsTable(db)}`);
  return Number(row?.n ?? 0);
}

const migrationsTable = (db: KeelDatabase) =>
  db.dialect === 'postgres' ? sql`drizzle.__drizzle_migrations` : sql`__drizzle_migrations`;

async function hasMigrationsTable(db: KeelDatabase): Promise<boolean> {
  const exists =
    db.dialect === 'postgres'
      ? sql`select to_regclass('drizzle.__drizzle_migrations') is not null as ok`
      : sql`select count(*) > 0 as ok from sqlite_master where name = '__drizzle_migrations'`;
  const [found] = await queryRows<{ ok: unknown }>(db, exists);
  return Boolean(found?.ok);
}

async function lastAppliedMigration(db: KeelDatabase): Promise<number | undefined> {
  if (!(await hasMigrationsTable(db))) return undefined;
  const [row] = await queryRows<{ last: unknown }>(db, sql`select max(created_at) as last from ${migrationsTable(db)}`);
  return row?.last === null || row?.last === undefined ? undefined : Number(row.last);
}

/**
 * Drizzle's libsql migrator reads the applied list outside its transaction, so two processes
 * starting together can both try the same migration; the loser fails (table exists, or busy).
 * Its work is then done by the winner, which pendingMigrations confirms before the error is kept.
 */
async function migrateSqlite(db: KeelDatabase): Promise<void> {
  try {
    await migrateLibsql(db.orm, { migrationsFolder: migrationsFolder('sqlite') });
  } catch (err) {
    if ((await pendingMigrations(db)) > 0) throw err;
  }
}

/**
 * Drizzle's Postgres migrator under a session-level advisory lock. A one-connection client keeps
 * the lock, the check and the migration on the same session: workers starting together queue on
 * the lock, and each reads the applied list only once it holds it.
 */
async function migratePostgresLocked(db: KeelDatabase): Promise<void> {
  const client = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${migrationLockKey})`;
    await migratePostgres(drizzlePostgres(client), { migrationsFolder: migrationsFolder('postgres') });
  } catch (err) {
    // postgres.js reconnects silently: if the server restarted after the lock was taken, the
    // migration ran on a new session without it, and a worker migrating beside it may have won.
    // Each migration is one transaction (Postgres DDL is transactional), so the loser's is rolled
    // back whole; as on SQLite, its error only matters if something is still unapplied.
    if ((await pendingMigrations(db).catch(() => 1)) > 0) throw err;
  } finally {
    await client.end({ timeout: 5 }); // ending the session releases the lock
  }
}
