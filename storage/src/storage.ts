// The behaviour every backend shares: key validation before any I/O, hashing, skip-if-present,
// verify-then-rename downloads, abort and progress semantics, and errors that name provider,
// bucket and key. A backend's SDK is loaded on first use, so a process that only touches file://
// (or only S3) does not pay for loading the other SDKs.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Backend, BackendDownload, BackendObject } from './backends/backend.ts';
import { coalesceChunks, normalizeSha256, observeBytes, sha256File } from './checksum.ts';
import { resolveAzureSettings, resolveGcsSettings, resolveListPageSize, resolveS3Settings } from './config.ts';
import {
  ChecksumMismatchError,
  ChecksumMissingError,
  ObjectNotFoundError,
  StorageError,
  type StorageErrorFields,
  type StorageOperation,
  TransferAbortedError,
} from './errors.ts';
import { assertValidKey } from './keys.ts';
import { partialPath } from './partial-files.ts';
import { progressReporter } from './progress.ts';
import type {
  PutOptions,
  PutResult,
  Storage,
  StorageOptions,
  StorageProvider,
  StoredObject,
  TransferOptions,
} from './types.ts';
import { objectName, objectUri, parseStorageUri, type StorageLocation } from './uri.ts';

/**
 * Opens storage at `uri` (file:///absolute/folder, s3://bucket/prefix, gs://bucket/prefix,
 * az://container/prefix). Checks the URI, options and keel's environment variables at once;
 * connects lazily. Credentials come from the environment and the providers' default chains.
 */
export function openStorage(uri: string, options: StorageOptions = {}): Storage {
  const location = parseStorageUri(uri);
  const pageSize = resolveListPageSize(location.provider, location.uri, options.listPageSize);
  return new KeelStorage(location, pageSize, backendConnector(location, options));
}

function backendConnector(location: StorageLocation, options: StorageOptions): () => Promise<Backend> {
  const { bucket, uri } = location;
  switch (location.provider) {
    case 'file':
      return async () => (await import('./backends/file.ts')).createFileBackend(bucket);
    case 's3': {
      const settings = resolveS3Settings(options.s3, process.env, uri);
      return async () => (await import('./backends/s3.ts')).createS3Backend(bucket, settings);
    }
    case 'gcs': {
      const settings = resolveGcsSettings(options.gcs, uri);
      return async () => (await import('./backends/gcs.ts')).createGcsBackend(bucket, settings);
    }
    case 'azure': {
      const settings = resolveAzureSettings(options.azure, process.env, uri);
      return async () => (await import('./backends/azure.ts')).createAzureBackend(bucket, settings);
    }
  }
}

class KeelStorage implements Storage {
  readonly uri: string;
  readonly provider: StorageProvider;
  readonly #location: StorageLocation;
  readonly #pageSize: number;
  readonly #connect: () => Promise<Backend>;
  #backend: Promise<Backend> | undefined;

  constructor(location: StorageLocation, pageSize: number, connect: () => Promise<Backend>) {
    this.uri = location.uri;
    this.provider = location.provider;
    this.#location = location;
    this.#pageSize = pageSize;
    this.#connect = connect;
  }

  async put(key: string, filePath: string, options: PutOptions = {}): Promise<PutResult> {
    const where = this.#where('put', key);
    const { signal, onProgress } = options;
    const known = options.sha256 === undefined ? undefined : normalizeSha256(options.sha256, where);
    if (signal?.aborted) throw new TransferAbortedError(where, signal.reason);
    try {
      const source = await stat(filePath);
      if (!source.isFile()) throw new Error(`the source ${filePath} is not a regular file`);
      const sha256 = known ?? (await sha256File(filePath, signal));
      const backend = await this.#open();
      const name = objectName(this.#location, key);
      const existing = await backend.head(name);
      if (existing?.sha256 === sha256 && existing.bytes === source.size) {
        return { ...this.#stored(key, existing), sha256, skipped: true };
      }
      signal?.throwIfAborted();
      const progress = progressReporter(source.size, onProgress);
      const request = { bytes: source.size, sha256, signal, onProgress: progress.update };
      const { modified } = await backend.upload(name, filePath, request);
      progress.finish();
      return { key, uri: objectUri(this.#location, key), bytes: source.size, sha256, modified, skipped: false };
    } catch (error) {
      throw this.#failure(where, error, signal);
    }
  }

  async get(key: string, filePath: string, options: TransferOptions = {}): Promise<StoredObject & { sha256: string }> {
    const where = this.#where('get', key);
    const { signal, onProgress } = options;
    if (signal?.aborted) throw new TransferAbortedError(where, signal.reason);
    const destination = path.resolve(filePath);
    const partial = partialPath(destination);
    let download: BackendDownload | undefined;
    try {
      const backend = await this.#open();
      download = await backend.download(objectName(this.#location, key), signal);
      if (download === undefined) throw new ObjectNotFoundError(where);
      const expected = download.sha256;
      if (expected === undefined) throw new ChecksumMissingError(where);
      await mkdir(path.dirname(destination), { recursive: true });
      const progress = progressReporter(download.bytes, onProgress);
      const hash = createHash('sha256');
      // No fsync: a download can always be made again (after a crash, resume fetches it anew), and
      // flushing gigabytes to disk would double the time the trainer waits to start.
      const file = createWriteStream(partial, { flags: 'wx' });
      await pipeline(download.body, observeBytes(hash, progress.update), coalesceChunks(4 * 2 ** 20), file, { signal });
      const actual = hash.digest('hex');
      if (actual !== expected) throw new ChecksumMismatchError(where, expected, actual);
      await rename(partial, destination);
      progress.finish();
      return { ...this.#stored(key, download), sha256: actual };
    } catch (error) {
      download?.body.destroy();
      await rm(partial, { force: true });
      throw this.#failure(where, error, signal);
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const where = this.#where('head', key);
    try {
      const found = await (await this.#open()).head(objectName(this.#location, key));
      return found && this.#stored(key, found);
    } catch (error) {
      throw this.#failure(where, error);
    }
  }

  list(prefix = ''): AsyncIterable<StoredObject> {
    return this.#list(prefix);
  }

  async *#list(prefix: string): AsyncGenerator<StoredObject> {
    const where = this.#fields('list', prefix, prefix === '' ? this.uri : objectUri(this.#location, prefix));
    assertValidKey(prefix, { ...where, uri: this.uri }, 'prefix');
    const base = this.#location.prefix === '' ? '' : `${this.#location.prefix}/`;
    try {
      const backend = await this.#open();
      for await (const object of backend.list(base + prefix, this.#pageSize)) {
        // Zero-byte "folder" markers that consoles create are not objects.
        if (object.name.endsWith('/') || !object.name.startsWith(base)) continue;
        yield this.#stored(object.name.slice(base.length), object);
      }
    } catch (error) {
      throw this.#failure(where, error);
    }
  }

  async delete(key: string): Promise<void> {
    const where = this.#where('delete', key);
    try {
      await (await this.#open()).delete(objectName(this.#location, key));
    } catch (error) {
      throw this.#failure(where, error);
    }
  }

  async close(): Promise<void> {
    const backend = this.#backend;
    this.#backend = undefined;
    const opened = await backend?.catch(() => undefined);
    await opened?.close();
  }

  #open(): Promise<Backend> {
    this.#backend ??= this.#connect().catch((error: unknown) => {
      this.#backend = undefined; // a failed start (e.g. a bad profile) is retried by the next call
      throw error;
    });
    return this.#backend;
  }

  /** Validates `key` (InvalidKeyError before any I/O) and says where the operation acts. */
  #where(operation: StorageOperation, key: string): StorageErrorFields {
    assertValidKey(key, this.#fields(operation, key, this.uri));
    return this.#fields(operation, key, objectUri(this.#location, key));
  }

  #fields(operation: StorageOperation, key: string, uri: string): StorageErrorFields {
    return { provider: this.provider, bucket: this.#location.bucket, key, operation, uri };
  }

  #stored(key: string, object: BackendObject): StoredObject {
    return {
      key,
      uri: objectUri(this.#location, key),
      bytes: object.bytes,
      sha256: object.sha256,
      modified: object.modified,
    };
  }

  #failure(where: StorageErrorFields, error: unknown, signal?: AbortSignal): StorageError {
    if (error instanceof StorageError) return error;
    if (signal?.aborted) return new TransferAbortedError(where, signal.reason);
    return new StorageError(where, describeCause(error), { cause: error });
  }
}

/**
 * One line with the SDK's error code and message (SDK messages can run on with request ids).
 * HEAD responses have no body, so there the code and HTTP status are all there is.
 */
function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const fields = error as {
    code?: unknown;
    details?: { errorCode?: unknown };
    statusCode?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const code = [fields.code, fields.details?.errorCode].find((c) => typeof c === 'string' && c !== '');
  const label = (code as string | undefined) ?? (error.name === 'Error' ? undefined : error.name);
  const line = error.message.split('\n')[0]?.trim() ?? '';
  const status = fields.statusCode ?? fields.$metadata?.httpStatusCode;
  const text = line === '' || line === label ? (status === undefined ? '' : `HTTP ${status}`) : line;
  if (label === undefined || text.includes(label)) return text || error.name;
  return text === '' ? label : `${label}: ${text}`;
}
