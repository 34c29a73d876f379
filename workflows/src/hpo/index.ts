// HPO building blocks for the study workflow: the search space, what samplers and pruners see of
// trials, the seeded PRNG, samplers and pruners. All pure and deterministic (workflow-safe).
export * from './pruners/index.ts';
export * from './rng.ts';
export * from './samplers/index.ts';
export * from './search-space.ts';
export * from './trials.ts';
