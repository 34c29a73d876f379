// `pnpm --filter @keel/db generate` writes a new migration after a change to the schema.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({ dialect: 'sqlite', schema: './src/schema/sqlite.ts', out: './migrations/sqlite' });
