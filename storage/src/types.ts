// The public shape of @keel/storage. Options carry tuning and endpoints only: credentials come
// from the environment and the providers' default credential chains, never from here.

export type StorageProvider = 'file' | 's3' | 'gcs' | 'azure';

export interface StoredObject {
  /** Relative to the storage URI: `s3://b/runs` + key `job1/step-10.pt` is object `runs/job1/step-10.pt`. */
  key: string;
  /** The object's full URI. */
  uri: string;
  bytes: number;
  /** Lowercase hex. Undefined for objects not written by keel, and in S3 listings (see `list`). */
  sha256: string | undefined;
  modified: Date | undefined;
}

export interface TransferProgress {
  /** Cumulative bytes transferred so far. */
  bytes: number;
  total: number;
}

export interface TransferOptions {
  /** Cancels the transfer: it rejects with TransferAbortedError and leaves nothing partial behind. */
  signal?: AbortSignal;
  /** Called with cumulative bytes, ending with `bytes === total`. Must not throw. */
  onProgress?: (progress: TransferProgress) => void;
}

export interface PutOptions extends TransferOptions {
  /** A known sha256 of the file (e.g. from staging): put skips its own hashing pass. */
  sha256?: string;
}

export interface PutResult extends StoredObject {
  sha256: string;
  /** True when the key already held an object with this sha256 and size, so nothing was uploaded. */
  skipped: boolean;
}

export interface Storage {
  /** The normalised storage URI, e.g. `s3://bucket/prefix`. */
  readonly uri: string;
  readonly provider: StorageProvider;
  put(key: string, filePath: string, options?: PutOptions): Promise<PutResult>;
  get(key: string, filePath: string, options?: TransferOptions): Promise<StoredObject & { sha256: string }>;
  head(key: string): Promise<StoredObject | undefined>;
  /**
   * Objects whose key starts with `prefix`, in byte order of their keys, every page followed.
   * sha256 is undefined on S3 (its listings carry no user metadata; use head).
   */
  list(prefix?: string): AsyncIterable<StoredObject>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases the SDK's sockets. */
  close(): Promise<void>;
}

export type S3ChecksumSetting = 'when-supported' | 'when-required';

export interface S3Options {
  /** An S3-compatible endpoint (MinIO, R2, ...). Default: what the SDK finds (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, profile). */
  endpoint?: string;
  /** Default: the SDK's chain (AWS_REGION, profile); `us-east-1` when that is empty and a custom endpoint is set. */
  region?: string;
  /** Default: KEEL_S3_FORCE_PATH_STYLE, else path-style on custom endpoints and virtual-hosted on AWS. */
  forcePathStyle?: boolean;
  /** Multipart part size. Default 16 MiB (grown so a file never needs more than 10,000 parts). */
  partSizeBytes?: number;
  /** Parts uploaded at once. Default 4. Memory held is about (concurrency + 1) x part size. */
  concurrency?: number;
  /** Default: KEEL_S3_CHECKSUM, else `when-required` on custom endpoints and the SDK's `when-supported` on AWS. */
  checksum?: S3ChecksumSetting;
  /** A TCP connection not made within this fails (retried). Default 10,000 ms. */
  connectTimeoutMs?: number;
  /** A request whose socket is silent this long fails (retried). Idle time, not a deadline. Default 30,000 ms. */
  idleTimeoutMs?: number;
}

export interface GcsOptions {
  /** Default: STORAGE_EMULATOR_HOST (read by the SDK), else Google's endpoint. */
  apiEndpoint?: string;
  projectId?: string;
  /** Resumable upload chunk size, a multiple of 256 KiB. Default 32 MiB; files up to this size go in one request. */
  chunkSizeBytes?: number;
}

export interface AzureOptions {
  /** `https://<account>.blob.core.windows.net`. Default: see README (connection string, account URL, account name). */
  accountUrl?: string;
  /** Block size. Default 16 MiB (grown so a file never needs more than 50,000 blocks); smaller files go in one request. */
  blockSizeBytes?: number;
  /** Blocks uploaded at once. Default 4. */
  concurrency?: number;
}

export interface StorageOptions {
  s3?: S3Options;
  gcs?: GcsOptions;
  azure?: AzureOptions;
  /** Objects per listing request (1 to 1000). Default: the provider's maximum, 1000. */
  listPageSize?: number;
}
