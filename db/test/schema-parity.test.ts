// The two dialects' schemas must describe the same tables: same columns, nullability, keys and
// indexes. The repository relies on it (it is typed against the SQLite tables only).
import { getTableConfig as pgConfig } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteConfig } from 'drizzle-orm/sqlite-core';
import { describe, expect, test } from 'vitest';
import * as pg from '../src/schema/postgres.ts';
import * as sqlite from '../src/schema/sqlite.ts';

type Config = ReturnType<typeof sqliteConfig> | ReturnType<typeof pgConfig>;

function shape(config: Config) {
  return {
    name: config.name,
    columns: config.columns.map((c) => ({ name: c.name, notNull: c.notNull, primary: c.primary })).sort(byName),
    primaryKeys: config.primaryKeys.map((pk) => pk.columns.map((c) => c.name)),
    indexes: config.indexes
      .map((i) => ({
        name: i.config.name,
        unique: i.config.unique,
        columns: i.config.columns.map((c) => ('name' in c ? c.name : String(c))),
      }))
      .sort(byName),
  };
}

function byName(a: { name?: string }, b: { name?: string }) {
  return (a.name ?? '').localeCompare(b.name ?? '');
}

describe('SQLite and PostgreSQL schemas', () => {
  test('declare the same tables', () => {
    expect(Object.keys(pg).sort()).toEqual(Object.keys(sqlite).sort());
  });

  test.each([
    ['studies', sqlite.studies, pg.studies],
    ['jobs', sqlite.jobs, pg.jobs],
    ['checkpoints', sqlite.checkpoints, pg.checkpoints],
    ['trials', sqlite.trials, pg.trials],
    ['trialValues', sqlite.trialValues, pg.trialValues],
  ] as const)('%s has the same columns, keys and indexes', (_name, sqliteTable, pgTable) => {
    const fromSqlite = shape(sqliteConfig(sqliteTable));
    expect(fromSqlite.columns.length).toBeGreaterThan(3);
    expect(shape(pgConfig(pgTable))).toEqual(fromSqlite);
  });
});
