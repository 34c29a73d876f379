import type { ResultSet } from '@libsql/client';
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import type { KeelDatabase } from '../open.ts';

/** What the repository queries run on: the database, or a transaction on it. */
export type Executor = BaseSQLiteDatabase<'async', ResultSet>;

/** Runs `work` in one transaction: BEGIN IMMEDIATE on SQLite (takes the write lock up front, so a
 *  busy database is waited for instead of failing midway), the default isolation on Postgres. */
export function inTransaction<T>(db: KeelDatabase, work: (tx: Executor) => Promise<T>): Promise<T> {
  return db.orm.transaction(work);
}
