export * from './job-spec.ts';
export * from './study-spec.ts';
export * from './validate.ts';
