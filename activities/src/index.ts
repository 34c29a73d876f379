// Every activity a keel worker registers. Workflows import only the types of this module.
export * from './describe-worker.ts';
