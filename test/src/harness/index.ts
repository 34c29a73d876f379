export * from './databases.ts';
export * from './services.ts';
export * from './workers.ts';
