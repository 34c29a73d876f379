// Worker process entrypoint: `node workers/src/main.ts` (what `keel worker` runs).
import { loadWorkerConfig } from './config.ts';
import { runWorker } from './run.ts';

await runWorker(loadWorkerConfig());
