// gs://bucket/prefix through @google-cloud/storage. Credentials: Application Default Credentials;
// STORAGE_EMULATOR_HOST (read by the SDK) or options.gcs.apiEndpoint for an emulator.
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import {
  type Bucket,
  type FileMetadata,
  Storage as GcsClient,
  type GetFilesOptions,
  type GetFilesResponse,
  IdempotencyStrategy,
} from '@google-cloud/storage';
import { readChunkBytes, storedSha256 } from '../checksum.ts';
import { type GcsSettings, storageDefaults } from '../config.ts';
import type { Backend, BackendDownload, BackendObject, UploadRequest } from './backend.ts';

export async function createGcsBackend(bucket: string, settings: GcsSettings): Promise<Backend> {
  const client = new GcsClient({
    ...(settings.apiEndpoint === undefined ? {} : { apiEndpoint: settings.apiEndpoint }),
    ...(settings.projectId === undefined ? {} : { projectId: settings.projectId }),
    // Re-sending the same bytes to the same name is harmless, so uploads may be retried too
    // (by default the SDK retries them only under generation preconditions).
    retryOptions: { autoRetry: true, idempotencyStrategy: IdempotencyStrategy.RetryAlways },
    // Per request, reset by response bytes: an idle timeout for reads and metadata calls, so a
    // hung server fails them (and they are retried) instead of holding them (see storageDefaults).
    timeout: storageDefaults.gcsTimeoutMs,
  });
  return new GcsBackend(client.bucket(bucket), settings);
}

class GcsBackend implements Backend {
  readonly #bucket: Bucket;
  readonly #settings: GcsSettings;

  constructor(bucket: Bucket, settings: GcsSettings) {
    this.#bucket = bucket;
    this.#settings = settings;
  }

  async head(name: string): Promise<BackendObject | undefined> {
    const metadata = await this.#metadata(name);
    return metadata && describe(name, metadata);
  }

  /**
   * Files larger than one chunk go as a resumable upload in chunks (each retried on its own, one
   * chunk held in memory); smaller ones in a single request. Either way the SDK checks the
   * server's crc32c against its own, and an upload cut short (abort) is never finalised, so no
   * object appears; the abandoned resumable session expires on its own.
   */
  async upload(name: string, filePath: string, request: UploadRequest): Promise<{ modified: Date | undefined }> {
    const file = this.#bucket.file(name);
    const resumable = request.bytes > this.#settings.chunkSizeBytes;
    const destination = file.createWriteStream({
      resumable,
      // Single-request uploads get no timeout from the SDK otherwise (it sets 0): a hung server
      // held them forever. Resumable chunks cannot be given one here (see storageDefaults).
      ...(resumable
        ? { chunkSize: this.#settings.chunkSizeBytes }
        : { timeout: storageDefaults.gcsSingleUploadTimeoutMs }),
      validation: 'crc32c',
      metadata: { contentType: 'application/octet-stream', metadata: { sha256: request.sha256 } },
    });
    destination.on('progress', (progress: { bytesWritten?: number }) => {
      if (progress.bytesWritten !== undefined) request.onProgress(progress.bytesWritten);
    });
    await pipeline(createReadStream(filePath, { highWaterMark: readChunkBytes }), destination, {
      signal: request.signal,
    });
    return { modified: parseDate(file.metadata.updated) };
  }

  async download(name: string): Promise<BackendDownload | undefined> {
    const metadata = await this.#metadata(name);
    if (metadata === undefined) return undefined;
    // Read the generation the metadata describes: an overwrite in between cannot pair new bytes with the old sha256.
    const pinned = metadata.generation === undefined ? {} : { generation: metadata.generation };
    const body = this.#bucket.file(name, pinned).createReadStream({ validation: 'crc32c' });
    return { ...describe(name, metadata), body };
  }

  async *list(prefix: string, pageSize: number): AsyncGenerator<BackendObject> {
    let query: GetFilesOptions | undefined = { prefix, maxResults: pageSize, autoPaginate: false };
    while (query !== undefined) {
      const page: GetFilesResponse = await this.#bucket.getFiles(query);
      for (const file of page[0]) yield describe(file.name, file.metadata);
      // The last page's "next query" is null, whatever the SDK's type says.
      const pageToken: string | undefined = (page[1] as { pageToken?: string } | null)?.pageToken;
      query = pageToken ? { ...query, pageToken } : undefined;
    }
  }

  async delete(name: string): Promise<void> {
    await this.#bucket.file(name).delete({ ignoreNotFound: true });
  }

  async close(): Promise<void> {}

  async #metadata(name: string): Promise<FileMetadata | undefined> {
    try {
      const [metadata] = await this.#bucket.file(name).getMetadata();
      return metadata;
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return undefined;
      throw error;
    }
  }
}

function describe(name: string, metadata: FileMetadata): BackendObject {
  return {
    name,
    bytes: Number(metadata.size ?? 0),
    sha256: storedSha256(metadata.metadata?.sha256),
    modified: parseDate(metadata.updated),
  };
}

function parseDate(value: string | undefined): Date | undefined {
  return value === undefined ? undefined : new Date(value);
}
