// The CLI and the HTTP API read the database under Node, Bun and Deno (both runtimes come from the
// npm registry as devDependencies). The same read script runs under each, on both dialects.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createStudy, type Dialect, migrateDatabase, openDatabase, recordTrial, updateTrial } from '@keel/db';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';
import { runtimeNames, runtimes } from '../harness/runtimes.ts';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./fixtures/read-study.ts', import.meta.url));

describe.each<Dialect>(['sqlite', 'postgres'])('reading a %s database', (dialect) => {
  let fresh: FreshDatabase;

  beforeAll(async () => {
    fresh = await freshDatabase(dialect, inject('services').postgres.url);
    const db = await openDatabase({ url: fresh.url });
    await migrateDatabase(db);
    await createStudy(db, {
      id: 's1',
      name: 'lr-sweep',
      spec: {},
      objective: { metric: 'loss', direction: 'minimize' },
    });
    for (const [number, value] of [0.4, 0.2, 0.3].entries()) {
      await recordTrial(db, { studyId: 's1', number, params: { lr: value } });
      await updateTrial(db, 's1', number, { state: 'completed', value });
    }
    await db.close();
  });
  afterAll(() => fresh?.drop());

  test.each(runtimeNames)('under %s', async (runtime) => {
    const [command, ...args] = runtimes[runtime];
    const { stdout } = await run(command as string, [...args, script, fresh.url, 's1']);
    expect(JSON.parse(stdout)).toEqual({ dialect, study: 'lr-sweep', trials: 3, best: 1 });
  });
});
