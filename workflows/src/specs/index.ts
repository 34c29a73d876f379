export * from './job-spec.ts';
export * from './validate.ts';
