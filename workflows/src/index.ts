// Every workflow a keel worker registers. Only deterministic code may be imported from here:
// this module is bundled into Temporal's workflow sandbox.

export * from './hpo-study.ts';
export * from './smoke.ts';
export * from './task-queues.ts';
export * from './training-job.ts';
