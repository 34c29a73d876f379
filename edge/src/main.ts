#!/usr/bin/env node
// Runs keel's HTTP API on Node (`node edge/src/main.ts`), Bun (`bun edge/src/main.ts`) or Deno
// (`deno run --allow-all edge/src/main.ts`). Settings: KEEL_API_HOST (127.0.0.1), KEEL_API_PORT
// (8787; 0 picks a free one), KEEL_API_TOKEN; Temporal and the database as for the CLI.
import process from 'node:process';
import { KeelClient } from '@keel/client';
import { createApp } from './app.ts';
import { loadApiConfig } from './config.ts';
import { serve } from './serve.ts';

let config: ReturnType<typeof loadApiConfig>;
try {
  config = loadApiConfig(process.env);
} catch (err) {
  console.error(`keel api: ${(err as Error).message}`);
  process.exit(2);
}
const keel = await KeelClient.connect();
const served = await serve(createApp({ keel, token: config.token }).fetch, config);
// One line a supervisor (or a test) can read: where we listen, on which runtime.
console.log(`keel api: listening on http://${config.hostname}:${served.port} (${served.runtime})`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    // Open event streams and keep-alive connections must not hold the process: say so and go.
    setTimeout(() => {
      console.error('keel api: connections did not close within 5 s; exiting anyway');
      process.exit(1);
    }, 5000).unref();
    await served.close();
    await keel.close();
    process.exit(0);
  });
}
