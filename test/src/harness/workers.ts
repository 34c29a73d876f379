// Worker settings for tests: every queue named for the test so tests sharing one Temporal server
// never take each other's tasks, and every file under the test's own home.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkerConfig } from '@keel/workers/config';
import type { ServiceEndpoints } from './services.ts';

export function testWorkerConfig(
  home: string,
  temporal: ServiceEndpoints['temporal'],
  name: string,
  overrides: Partial<WorkerConfig> = {},
): WorkerConfig {
  return {
    temporal: { connectionOptions: { address: temporal.address }, namespace: temporal.namespace },
    taskQueue: `${name}`,
    gpuTaskQueue: `${name}-gpu`,
    hostTaskQueue: `${name}-host`,
    databaseUrl: `file:${path.join(home, 'keel.db')}`,
    workDir: path.join(home, 'work'),
    storageUri: pathToFileURL(path.join(home, 'checkpoints')).href,
    ...overrides,
  };
}
