// @keel/db: where keel records jobs, checkpoints, studies and trials. Knows nothing of Temporal.
export * from './errors.ts';
export { appliedMigrations, migrateDatabase, migrationsFolder, pendingMigrations } from './migrate.ts';
export { type DatabaseOptions, defaultBusyTimeoutMs, type KeelDatabase, openDatabase } from './open.ts';
export * from './repository/checkpoints.ts';
export { inTransaction } from './repository/executor.ts';
export * from './repository/jobs.ts';
export * from './repository/studies.ts';
export * from './states.ts';
export * from './url.ts';
