// Named errors: their `name` survives the trip through a Temporal activity failure, so workflows
// and clients can tell them apart.

export class DatabaseConfigError extends Error {
  override name = 'DatabaseConfigError';
}

export class RecordNotFoundError extends Error {
  override name = 'RecordNotFoundError';
  readonly kind: string;
  readonly id: string;
  constructor(kind: string, id: string) {
    super(`${kind} ${id} not found`);
    this.kind = kind;
    this.id = id;
  }
}

export class InvalidTransitionError extends Error {
  override name = 'InvalidTransitionError';
}

export class RecordConflictError extends Error {
  override name = 'RecordConflictError';
}

/** Another process held the SQLite write lock past the busy timeout; nothing was written. */
export class DatabaseBusyError extends Error {
  override name = 'DatabaseBusyError';
}
