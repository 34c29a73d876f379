// Vitest global setup for the integration project: starts every real server once per test run,
// hands their endpoints to the tests (inject('services')), and at the end stops them and fails
// the run if any of their processes is still alive.
import type { TestProject } from 'vitest/node';
import { leakedServices, type ServiceEndpoints, startServices } from './harness/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceEndpoints;
  }
}

export default async function setup(project: TestProject) {
  const started = Date.now();
  const services = await startServices();
  console.log(
    `test services ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${JSON.stringify(services.pids)}`,
  );
  project.provide('services', services.endpoints);
  return async () => {
    await services.stop();
    const leaked = leakedServices(services.pids);
    if (leaked.length > 0) throw new Error(`test services left processes running: ${leaked.join(', ')}`);
  };
}
