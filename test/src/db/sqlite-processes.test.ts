// Several processes on one machine share the default SQLite file: a worker, `keel dev`, the CLI.
// Two real processes migrate and write at the same moment; every row must land.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { appliedMigrations, listCheckpoints, openDatabase, pendingMigrations } from '@keel/db';
import { afterAll, expect, inject, test } from 'vitest';
import { freshDatabase } from '../harness/databases.ts';

const run = promisify(execFile);
const writer = fileURLToPath(new URL('./fixtures/concurrent-writer.ts', import.meta.url));
const fresh = await freshDatabase('sqlite', inject('services').postgres.url);
afterAll(() => fresh.drop());

test('two processes migrating and writing one SQLite file at once lose nothing', async () => {
  const perWriter = 300;
  const results = await Promise.allSettled(
    ['a', 'b'].map((name) => run(process.execPath, [writer, fresh.url, name, String(perWriter)])),
  );
  expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);

  const db = await openDatabase({ url: fresh.url });
  try {
    expect(await pendingMigrations(db)).toBe(0);
    expect(await appliedMigrations(db)).toBeGreaterThan(0);
    const rows = await listCheckpoints(db, 'shared-job', { status: ['committed'] });
    expect(rows).toHaveLength(2 * perWriter);
    expect(new Set(rows.map((r) => r.uri)).size).toBe(2 * perWriter);
  } finally {
    await db.close();
  }
});
