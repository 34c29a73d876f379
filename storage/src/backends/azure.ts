// az://container/prefix through @azure/storage-blob. The account and its credentials come from
// the environment (see resolveAzureSettings): a connection string, a SAS URL, or an account URL
// with DefaultAzureCredential from @azure/identity.
import type { Readable } from 'node:stream';
import { AnonymousCredential, BlobServiceClient, type ContainerClient, isRestError } from '@azure/storage-blob';
import { storedSha256 } from '../checksum.ts';
import { type AzureAccount, type AzureSettings, azureBlockSize } from '../config.ts';
import type { Backend, BackendDownload, BackendObject, UploadRequest } from './backend.ts';

export async function createAzureBackend(container: string, settings: AzureSettings): Promise<Backend> {
  const service = await serviceClient(settings.account);
  return new AzureBackend(service.getContainerClient(container), settings);
}

async function serviceClient(account: AzureAccount): Promise<BlobServiceClient> {
  switch (account.kind) {
    case 'connection-string':
      return BlobServiceClient.fromConnectionString(account.connectionString);
    case 'sas-url':
      return new BlobServiceClient(account.accountUrl, new AnonymousCredential());
    case 'entra': {
      // Loaded only here: @azure/identity is large and connection-string users never need it.
      const { DefaultAzureCredential } = await import('@azure/identity');
      return new BlobServiceClient(account.accountUrl, new DefaultAzureCredential());
    }
  }
}

class AzureBackend implements Backend {
  readonly #container: ContainerClient;
  readonly #settings: AzureSettings;

  constructor(container: ContainerClient, settings: AzureSettings) {
    this.#container = container;
    this.#settings = settings;
  }

  async head(name: string): Promise<BackendObject | undefined> {
    try {
      return describe(name, await this.#container.getBlockBlobClient(name).getProperties());
    } catch (error) {
      if (isBlobNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * uploadFile streams each block from the file (nothing buffered) and commits the block list at
   * the end; staged blocks that are never committed stay invisible and are collected by Azure, so
   * an aborted upload leaves nothing behind. Anything over one block takes the block path.
   */
  async upload(name: string, filePath: string, request: UploadRequest): Promise<{ modified: Date | undefined }> {
    const blockSize = azureBlockSize(this.#settings.blockSizeBytes, request.bytes);
    const response = await this.#container.getBlockBlobClient(name).uploadFile(filePath, {
      blockSize,
      maxSingleShotSize: blockSize,
      concurrency: this.#settings.concurrency,
      metadata: { sha256: request.sha256 },
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
      abortSignal: request.signal,
      onProgress: (progress) => request.onProgress(progress.loadedBytes),
    });
    return { modified: response.lastModified };
  }

  async download(name: string, signal: AbortSignal | undefined): Promise<BackendDownload | undefined> {
    try {
      // In Node the body resumes from where it broke off (If-Match on the ETag) when the connection drops.
      const found = await this.#container.getBlockBlobClient(name).download(0, undefined, { abortSignal: signal });
      if (found.readableStreamBody === undefined) throw new Error('the Azure SDK returned no body stream');
      return {
        name,
        bytes: found.contentLength ?? 0,
        sha256: storedSha256(found.metadata?.sha256),
        modified: found.lastModified,
        body: found.readableStreamBody as Readable,
      };
    } catch (error) {
      if (isBlobNotFound(error)) return undefined;
      throw error;
    }
  }

  async *list(prefix: string, pageSize: number): AsyncGenerator<BackendObject> {
    const pages = this.#container.listBlobsFlat({ prefix, includeMetadata: true }).byPage({ maxPageSize: pageSize });
    for await (const page of pages) {
      for (const blob of page.segment.blobItems) {
        yield {
          name: blob.name,
          bytes: blob.properties.contentLength ?? 0,
          sha256: storedSha256(blob.metadata?.sha256),
          modified: blob.properties.lastModified,
        };
      }
    }
  }

  async delete(name: string): Promise<void> {
    // deleteIfExists swallows BlobNotFound only: a missing container still fails.
    await this.#container.getBlockBlobClient(name).deleteIfExists();
  }

  async close(): Promise<void> {}
}

interface AzureProperties {
  contentLength?: number;
  lastModified?: Date;
  metadata?: Record<string, string>;
}

function describe(name: string, properties: AzureProperties): BackendObject {
  return {
    name,
    bytes: properties.contentLength ?? 0,
    sha256: storedSha256(properties.metadata?.sha256),
    modified: properties.lastModified,
  };
}

/** A missing blob, as opposed to a missing container (which stays an error). */
function isBlobNotFound(error: unknown): boolean {
  if (!isRestError(error) || error.statusCode !== 404) return false;
  const code = error.code ?? (error.details as { errorCode?: string } | undefined)?.errorCode;
  return code !== 'ContainerNotFound';
}
