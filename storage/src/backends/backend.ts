// What each provider module implements. Names here are full object names inside the bucket (the
// storage prefix already applied) and are already validated; the shared layer in storage.ts does
// hashing, skip-if-present, verification, local partial files and error naming.
import type { Readable } from 'node:stream';

export interface BackendObject {
  name: string;
  bytes: number;
  sha256: string | undefined;
  modified: Date | undefined;
}

export interface BackendDownload extends BackendObject {
  /** The object's bytes, from the same generation the metadata above describes. */
  body: Readable;
}

export interface UploadRequest {
  bytes: number;
  sha256: string;
  signal: AbortSignal | undefined;
  /** Cumulative bytes sent so far. */
  onProgress: (bytes: number) => void;
}

export interface Backend {
  /** Undefined when there is no object with that name. */
  head(name: string): Promise<BackendObject | undefined>;
  /**
   * Uploads the file with `sha256` as object metadata. On abort or failure nothing becomes visible
   * at `name`; once the provider has committed the object, an abort no longer undoes it.
   */
  upload(name: string, filePath: string, request: UploadRequest): Promise<{ modified: Date | undefined }>;
  /** Undefined when there is no object with that name. */
  download(name: string, signal: AbortSignal | undefined): Promise<BackendDownload | undefined>;
  /** Objects whose name starts with `prefix`, in byte order, following every page. */
  list(prefix: string, pageSize: number): AsyncIterable<BackendObject>;
  /** A missing object is not an error. */
  delete(name: string): Promise<void>;
  close(): Promise<void>;
}
