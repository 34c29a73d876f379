// Which database keel uses, from options and the environment. No drivers here: the worker's
// config and clients on Bun and Deno import this without loading native code.
import path from 'node:path';
import { DatabaseConfigError } from './errors.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface UrlOptions {
  /** postgres://…, postgresql://… or file:path/to/keel.db. Default: DATABASE_URL, else
   *  file:<KEEL_HOME or .keel>/keel.db. */
  url?: string;
  env?: Record<string, string | undefined>;
}

const expectedForms = 'postgres://user@host:5432/db, postgresql://… or file:path/to/keel.db';

/** The database URL keel will use, from options and the environment. */
export function resolveDatabaseUrl(options: UrlOptions = {}): string {
  const env = options.env ?? process.env;
  const url = options.url ?? (env.DATABASE_URL?.trim() || undefined);
  if (url !== undefined) return url;
  return `file:${path.join(env.KEEL_HOME || '.keel', 'keel.db')}`;
}

export function dialectOf(url: string): Dialect {
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  if (url.startsWith('file:') && url.length > 'file:'.length) return 'sqlite';
  throw new DatabaseConfigError(
    `DATABASE_URL ${JSON.stringify(redact(url))} is not a database keel can open: expected ${expectedForms}`,
  );
}

/** The URL without its password. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}
