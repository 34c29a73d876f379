// Every failure of @keel/storage is a StorageError. Each subclass has its own `name`, because the
// name is what crosses a Temporal activity boundary as the failure type (retry policies and
// callers branch on it), so names are part of the API and never change.
import type { StorageProvider } from './types.ts';

export type StorageOperation = 'open' | 'put' | 'get' | 'head' | 'list' | 'delete';

/** Where a failure happened. `bucket` is the S3/GCS bucket, the Azure container or the file:// root folder. */
export interface StorageErrorFields {
  provider: StorageProvider | undefined;
  bucket: string | undefined;
  /** The key (or list prefix) the operation was given, relative to the storage URI. */
  key: string | undefined;
  operation: StorageOperation;
  /** The object's full URI, or the storage URI when there is no valid key. */
  uri: string | undefined;
}

export class StorageError extends Error {
  override readonly name: string = 'StorageError';
  readonly provider: StorageProvider | undefined;
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly operation: StorageOperation;
  readonly uri: string | undefined;

  /** `problem` finishes the sentence "<provider> <operation> <uri> failed: ...". */
  constructor(fields: StorageErrorFields, problem: string, options?: ErrorOptions) {
    super(failureMessage(fields, problem), options);
    this.provider = fields.provider;
    this.bucket = fields.bucket;
    this.key = fields.key;
    this.operation = fields.operation;
    this.uri = fields.uri;
  }
}

/** There is no object at the key (a missing bucket is a plain StorageError, not this). */
export class ObjectNotFoundError extends StorageError {
  override readonly name: string = 'ObjectNotFoundError';
  constructor(fields: StorageErrorFields) {
    super(fields, `no object with key ${quote(fields.key ?? '')}`);
  }
}

/** The downloaded bytes do not hash to the sha256 recorded when the object was put. */
export class ChecksumMismatchError extends StorageError {
  override readonly name: string = 'ChecksumMismatchError';
  readonly expected: string;
  readonly actual: string;
  constructor(fields: StorageErrorFields, expected: string, actual: string) {
    super(
      fields,
      `sha256 mismatch: the object's metadata says ${expected} but its bytes hash to ${actual}. ` +
        'The object is corrupt or was overwritten outside keel; the partial download was removed.',
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** The object carries no sha256, so it was not written by keel and cannot be verified. */
export class ChecksumMissingError extends StorageError {
  override readonly name: string = 'ChecksumMissingError';
  constructor(fields: StorageErrorFields) {
    super(
      fields,
      'the object has no sha256 metadata, so it was not written by keel and its bytes cannot be verified. ' +
        "Fix: upload it with keel's put, which records the sha256.",
    );
  }
}

/** The caller's AbortSignal fired before the transfer finished; nothing partial is left behind. */
export class TransferAbortedError extends StorageError {
  override readonly name: string = 'TransferAbortedError';
  constructor(fields: StorageErrorFields, reason: unknown) {
    super(fields, `aborted${reasonText(reason)}`, { cause: reason });
  }
}

export class InvalidKeyError extends StorageError {
  override readonly name: string = 'InvalidKeyError';
  readonly reason: string;
  readonly fix: string;
  constructor(fields: StorageErrorFields, key: string, reason: string, fix: string) {
    const what = fields.operation === 'list' ? 'list prefix' : 'key';
    super({ ...fields, key }, `invalid ${what} ${quote(key)}: ${reason}. Fix: ${fix}.`);
    this.reason = reason;
    this.fix = fix;
  }
}

export const expectedUriForms = [
  'file:///absolute/folder',
  's3://bucket/prefix',
  'gs://bucket/prefix',
  'az://container/prefix',
] as const;

export class InvalidStorageUriError extends StorageError {
  override readonly name: string = 'InvalidStorageUriError';
  readonly reason: string;
  constructor(uri: string, reason: string, provider?: StorageProvider) {
    super({ provider, bucket: undefined, key: undefined, operation: 'open', uri: undefined }, '');
    this.reason = reason;
    this.message = `invalid storage URI ${quote(redactUri(uri))}: ${reason}. Expected one of: ${expectedUriForms.join(', ')}`;
  }
}

/** A `sha256` option that is not 64 hexadecimal characters. */
export class InvalidChecksumError extends StorageError {
  override readonly name: string = 'InvalidChecksumError';
  constructor(fields: StorageErrorFields, value: unknown) {
    super(
      fields,
      `the sha256 option ${typeof value === 'string' ? quote(value) : String(value)} is not a sha256 digest: ` +
        'expected 64 hexadecimal characters (what sha256sum prints). Fix: pass the hex digest, or leave sha256 out ' +
        'and put hashes the file itself',
    );
  }
}

/** A StorageOptions value or a KEEL_* / provider environment variable that cannot be used. */
export class StorageConfigError extends StorageError {
  override readonly name: string = 'StorageConfigError';
  constructor(provider: StorageProvider, uri: string | undefined, problem: string) {
    super({ provider, bucket: undefined, key: undefined, operation: 'open', uri }, problem);
  }
}

function failureMessage(fields: StorageErrorFields, problem: string): string {
  return `${fields.provider ?? 'storage'} ${fields.operation} ${fields.uri ?? '(no URI)'} failed: ${redactSecrets(problem)}`;
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error && reason.name !== 'AbortError') return ` (${reason.message})`;
  if (typeof reason === 'string' && reason !== '') return ` (${reason})`;
  return '';
}

/** Keys can hold any printable character, so they are shown JSON-quoted (control characters escaped) and capped. */
export function quote(text: string): string {
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return JSON.stringify(shown);
}

// SDK messages sometimes echo request URLs; a pre-signed URL or SAS token in one is a credential.
const secretParameter =
  /\b(sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|accountkey|sharedaccesssignature|access_token|token|key)=([^&;\s"'<>]+)/gi;

export function redactSecrets(text: string): string {
  return redactUri(text.replace(secretParameter, '$1=<redacted>'));
}

function redactUri(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1<redacted>@')
    .replace(secretParameter, '$1=<redacted>');
}
