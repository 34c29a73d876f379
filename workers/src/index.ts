export * from './config.ts';
export * from './host.ts';
export * from './preemption.ts';
export * from './run.ts';
export * from './worker.ts';
