// Every SQLite statement keel runs goes through here, for two reasons.
//
// 1. A libsql bug loses data. libsql (0.5.29) does not reset a statement that failed, e.g. with
//    SQLITE_BUSY because another process held the lock past the busy timeout. The failed statement
//    stays "in progress" on its connection, which keeps the connection inside an implicit
//    transaction: later autocommit writes on it report success (INSERT ... RETURNING even hands
//    back a row id) and never reach the file. test/src/db/sqlite-lock.test.ts shows it. So:
//    - every write runs in BEGIN IMMEDIATE ... COMMIT and counts as done only once COMMIT
//      succeeded (on a poisoned connection COMMIT fails loudly instead of losing the write);
//    - after any failure the client's connections are thrown away and new ones opened.
// 2. libsql runs SQLite synchronously: a write waiting out a 10 s busy timeout would freeze the
//    worker's event loop (heartbeats, polls, every other activity) for 10 s. Connections wait only
//    a moment; the wait for another process's lock happens here, between async sleeps, up to the
//    configured busy timeout. Writes from this process queue one at a time (SQLite allows one
//    writer anyway), so they never wait on each other's locks.
import { type Client, createClient, type InArgs, type InStatement, type Transaction } from '@libsql/client';
import { DatabaseBusyError } from './errors.ts';

/** How long one attempt at the lock blocks the event loop (SQLite's own busy wait, sync). */
const attemptWaitMs = 50;

interface SerializedClientOptions {
  url: string;
  /** The longest a write waits for another process's lock before it fails. */
  busyTimeoutMs: number;
}

/** A libsql client whose writes are serialized, transactional and wait without blocking. */
export function openSerializedSqliteClient(options: SerializedClientOptions): Client {
  const open = () => createClient({ url: options.url, timeout: attemptWaitMs, intMode: 'number' });
  let client = open();
  let queue: Promise<unknown> = Promise.resolve();
  const location = options.url.slice('file:'.length);

  /** Runs `work` after every write queued before it has finished. */
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => {});
    return run;
  };

  /** Replaces every connection: one that saw a failure may be poisoned (1.). Call it only while
   *  holding the queue, so that no transaction is using a connection being closed. */
  const renewConnections = () => {
    client.close();
    client = open();
  };
  const renewAfterFailure = (err: unknown): never => {
    renewConnections();
    throw err;
  };
  /** A read's failure: the renewal waits its turn behind any write in progress. */
  const renewAfterReadFailure = (err: unknown): never => {
    void exclusive(async () => renewConnections());
    throw err;
  };

  /** BEGIN IMMEDIATE, retried with short async sleeps until the busy timeout runs out. */
  const beginWrite = async (): Promise<Transaction> => {
    const deadline = Date.now() + options.busyTimeoutMs;
    for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
      try {
        return await client.transaction('write');
      } catch (err) {
        renewConnections();
        if (!isBusy(err)) throw err;
        if (Date.now() >= deadline) {
          throw new DatabaseBusyError(
            `the SQLite database ${location} stayed locked by another process for over ` +
              `${options.busyTimeoutMs} ms; nothing was written. Find what holds it (a long transaction, ` +
              'a backup tool); hosts sharing one database should use PostgreSQL (DATABASE_URL).',
            { cause: err },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  };

  const inWriteTransaction = <T>(work: (tx: Transaction) => Promise<T>): Promise<T> =>
    exclusive(async () => {
      const tx = await beginWrite();
      try {
        const result = await work(tx);
        await tx.commit();
        return result;
      } catch (err) {
        tx.close(); // rolls back unless committed
        return renewAfterFailure(err);
      }
    });

  const serialized: Partial<Client> = {
    async execute(stmtOrSql: InStatement | string, args?: InArgs) {
      const stmt: InStatement = typeof stmtOrSql === 'string' ? { sql: stmtOrSql, args: args ?? [] } : stmtOrSql;
      const sql = typeof stmt === 'string' ? stmt : stmt.sql;
      if (/^\s*select\b/i.test(sql)) return client.execute(stmt).catch(renewAfterReadFailure);
      // Pragmas such as journal_mode cannot run inside a transaction.
      if (/^\s*pragma\b/i.test(sql)) return exclusive(() => client.execute(stmt).catch(renewAfterFailure));
      return inWriteTransaction((tx) => tx.execute(stmt));
    },
    async batch(stmts, mode) {
      if (mode === 'read') return client.batch(stmts, mode).catch(renewAfterReadFailure);
      return inWriteTransaction((tx) =>
        tx.batch(stmts.map((s) => (Array.isArray(s) ? { sql: s[0], args: s[1] ?? [] } : s))),
      );
    },
    // Migrations switch foreign keys off around their own transaction (BEGIN ... COMMIT), so they
    // keep libsql's path, queued with the other writes; a failure is rolled back whole.
    async migrate(stmts) {
      return exclusive(() => client.migrate(stmts).catch(renewAfterFailure));
    },
    // Drizzle's transactions (inTransaction): the queue is held from BEGIN IMMEDIATE until the
    // caller commits, rolls back or closes.
    async transaction(mode?: 'write' | 'read' | 'deferred') {
      if (mode === 'read') return client.transaction(mode);
      let release = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      const tx = await new Promise<Transaction>((resolve, reject) => {
        exclusive(async () => {
          try {
            resolve(await beginWrite());
          } catch (err) {
            reject(err);
            return;
          }
          await held;
        });
      });
      // Anything but a successful commit may leave a failed statement on the connection.
      const abandon = () => {
        tx.close();
        renewConnections();
        release();
      };
      return {
        execute: (stmt: InStatement) => tx.execute(stmt),
        batch: (stmts: InStatement[]) => tx.batch(stmts),
        executeMultiple: (sql: string) => tx.executeMultiple(sql),
        commit: () =>
          tx.commit().then(release, (err) => {
            abandon();
            throw err;
          }),
        rollback: async () => abandon(),
        close: abandon,
        get closed() {
          return tx.closed;
        },
      };
    },
    close() {
      client.close();
    },
  };
  return new Proxy(serialized as Client, {
    get: (target, prop, receiver) =>
      prop in target ? Reflect.get(target, prop, receiver) : Reflect.get(client, prop, client),
  });
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown; rawCode?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
