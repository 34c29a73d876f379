import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { DatabaseConfigError, dialectOf, openDatabase, redact, resolveDatabaseUrl } from '../src/index.ts';

describe('database URL', () => {
  test('defaults to a SQLite file under KEEL_HOME, else .keel', () => {
    expect(resolveDatabaseUrl({ env: {} })).toBe(`file:${path.join('.keel', 'keel.db')}`);
    expect(resolveDatabaseUrl({ env: { KEEL_HOME: '/srv/keel' } })).toBe('file:/srv/keel/keel.db');
  });

  test('DATABASE_URL wins over the default; an explicit url wins over both', () => {
    const env = { DATABASE_URL: 'postgres://keel@db:5432/keel', KEEL_HOME: '/srv/keel' };
    expect(resolveDatabaseUrl({ env })).toBe('postgres://keel@db:5432/keel');
    expect(resolveDatabaseUrl({ env, url: 'file:/tmp/x.db' })).toBe('file:/tmp/x.db');
  });

  test('picks the dialect from the scheme', () => {
    expect(dialectOf('postgres://h/db')).toBe('postgres');
    expect(dialectOf('postgresql://h/db')).toBe('postgres');
    expect(dialectOf('file:/tmp/keel.db')).toBe('sqlite');
    expect(dialectOf('file:keel.db')).toBe('sqlite');
  });

  test('an unknown scheme names the forms keel accepts, without the password', () => {
    let error: unknown;
    try {
      dialectOf('mysql://root:hunter2@db/keel');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DatabaseConfigError);
    expect((error as Error).message).toContain('postgres://');
    expect((error as Error).message).toContain('file:path/to/keel.db');
    expect((error as Error).message).not.toContain('hunter2');
  });

  test('a bare path is refused with the file: form to use', () => {
    expect(() => dialectOf('./keel.db')).toThrow(/file:path\/to\/keel\.db/);
  });

  test('redact hides passwords only', () => {
    expect(redact('postgres://keel:s3cret@db:5432/keel')).toBe('postgres://keel:***@db:5432/keel');
    expect(redact('postgres://keel@db/keel')).toBe('postgres://keel@db/keel');
  });

  test('an unreachable PostgreSQL is a DatabaseConfigError that does not print the password', async () => {
    const open = openDatabase({ url: 'postgres://keel:s3cret@127.0.0.1:1/keel' });
    await expect(open).rejects.toThrow(DatabaseConfigError);
    await expect(open).rejects.toThrow(/cannot reach PostgreSQL at postgres:\/\/keel:\*\*\*@127\.0\.0\.1:1\/keel/);
  });
});
