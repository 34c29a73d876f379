// s3://bucket/prefix on AWS S3 and S3-compatible servers (MinIO, R2), through the AWS SDK v3 and
// lib-storage's multipart Upload. Credentials: the SDK's default chain (env, profiles, SSO, IMDS).

import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { readChunkBytes, storedSha256 } from '../checksum.ts';
import { type S3Settings, s3ClientSettings, s3PartSize } from '../config.ts';
import type { Backend, BackendDownload, BackendObject, UploadRequest } from './backend.ts';

export async function createS3Backend(bucket: string, settings: S3Settings): Promise<Backend> {
  return new S3Backend(await createS3Client(settings), bucket, settings);
}

/**
 * Our defaults depend on whether the endpoint is AWS's, which only the SDK knows: it reads
 * AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the profile's endpoint_url, and the region chain,
 * itself. So a throw-away client (no request is ever sent) is asked, and the real one is built
 * with the answer, leaving endpoint and region resolution to the SDK.
 */
async function createS3Client(settings: S3Settings): Promise<S3Client> {
  const probe = new S3Client(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint });
  let endpoint: string | undefined;
  let sdkRegion: string | undefined;
  try {
    endpoint = settings.endpoint ?? (await probe.config.serviceConfiguredEndpoint?.());
    sdkRegion = await probe.config.region().catch(() => undefined);
  } finally {
    probe.destroy();
  }
  const customEndpoint = endpoint !== undefined;
  const resolved = s3ClientSettings(settings, { customEndpoint, sdkRegion });
  const config: S3ClientConfig = {
    forcePathStyle: resolved.forcePathStyle,
    // On AWS, follow a bucket that lives in another region than the configured one.
    followRegionRedirects: !customEndpoint,
    // The SDK sets no timeouts by default: against a hung server (a stopped process, a network
    // black hole) a request waited forever, holding the upload until the activity's heartbeat
    // timed out and leaving the attempt hanging beside its retry. socketTimeout is an idle
    // timeout (no bytes either way), so a slow part still goes through; requestTimeout, a
    // whole-request deadline in this SDK version (4.x, with throwOnRequestTimeout), is left
    // unset for that reason. A timeout is a TimeoutError, which the SDK retries. (The client
    // builds its NodeHttpHandler from these options.)
    requestHandler: { connectionTimeout: settings.connectTimeoutMs, socketTimeout: settings.idleTimeoutMs },
  };
  if (settings.endpoint !== undefined) config.endpoint = settings.endpoint;
  if (resolved.region !== undefined) config.region = resolved.region;
  if (resolved.checksum !== undefined) {
    const when = resolved.checksum === 'when-supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
    config.requestChecksumCalculation = when;
    config.responseChecksumValidation = when;
  }
  return new S3Client(config);
}

class S3Backend implements Backend {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #settings: S3Settings;

  constructor(client: S3Client, bucket: string, settings: S3Settings) {
    this.#client = client;
    this.#bucket = bucket;
    this.#settings = settings;
  }

  async head(name: string): Promise<BackendObject | undefined> {
    try {
      const found = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: name }));
      return {
        name,
        bytes: found.ContentLength ?? 0,
        sha256: storedSha256(found.Metadata?.sha256),
        modified: found.LastModified,
      };
    } catch (error) {
      // A HEAD response has no body, so a missing bucket also reads as NotFound here.
      if (errorName(error) === 'NotFound' || errorName(error) === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  /**
   * Abort destroys the file stream rather than calling Upload.abort(): abort() makes done() reject
   * at once while parts are still in flight and before lib-storage sends AbortMultipartUpload. A
   * failing source instead lets lib-storage finish its in-flight parts, abort the multipart upload,
   * and only then reject, so when this returns no upload is left pending.
   */
  async upload(name: string, filePath: string, request: UploadRequest): Promise<{ modified: Date | undefined }> {
    const body = createReadStream(filePath, { highWaterMark: readChunkBytes });
    body.on('error', () => {}); // the error reaches lib-storage through its reader; this only keeps it from being "unhandled"
    const partSize = s3PartSize(this.#settings.partSizeBytes, request.bytes);
    const upload = new Upload({
      client: this.#client,
      queueSize: this.#settings.concurrency,
      partSize,
      leavePartsOnError: false,
      params: {
        Bucket: this.#bucket,
        Key: name,
        Body: body,
        ContentLength: request.bytes,
        ContentType: 'application/octet-stream',
        Metadata: { sha256: request.sha256 },
      },
    });
    upload.on('httpUploadProgress', (progress) => {
      if (progress.loaded !== undefined) request.onProgress(progress.loaded);
    });
    const stop = () => body.destroy(request.signal?.reason ?? new Error('aborted'));
    request.signal?.addEventListener('abort', stop, { once: true });
    try {
      await upload.done();
    } finally {
      request.signal?.removeEventListener('abort', stop);
      body.destroy();
    }
    // A writer killed mid-way leaves a pending multipart upload, and only files over one part go
    // multipart: the object is whole now, so theirs can go (no extra request for small files).
    if (request.bytes > partSize) await this.#abortPendingUploads(name);
    return { modified: undefined };
  }

  /**
   * One GET, streamed. (Parallel ranged GETs, as s5cmd does, were measured on the benchmark machine:
   * no faster once every byte is hashed for verification, and half again the memory.)
   */
  async download(name: string, signal: AbortSignal | undefined): Promise<BackendDownload | undefined> {
    try {
      const found = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: name }), {
        abortSignal: signal,
      });
      if (!(found.Body instanceof Readable)) throw new Error('the S3 SDK returned a body that is not a Node stream');
      return {
        name,
        bytes: found.ContentLength ?? 0,
        sha256: storedSha256(found.Metadata?.sha256),
        modified: found.LastModified,
        body: found.Body,
      };
    } catch (error) {
      if (errorName(error) === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async *list(prefix: string, pageSize: number): AsyncGenerator<BackendObject> {
    const pages = paginateListObjectsV2({ client: this.#client, pageSize }, { Bucket: this.#bucket, Prefix: prefix });
    for await (const page of pages) {
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        // ListObjectsV2 carries no user metadata: sha256 needs a head per object, left to the caller.
        yield { name: object.Key, bytes: object.Size ?? 0, sha256: undefined, modified: object.LastModified };
      }
    }
  }

  async delete(name: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: name }));
    await this.#abortPendingUploads(name);
  }

  /**
   * Multipart uploads of `name` that were never completed or aborted (their writer was killed):
   * their parts take space in the bucket and no listing of objects shows them. (A bucket
   * lifecycle rule, AbortIncompleteMultipartUpload, is the backstop for keys never written again.)
   */
  async #abortPendingUploads(name: string): Promise<void> {
    try {
      const found = await this.#client.send(new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: name }));
      for (const pending of found.Uploads ?? []) {
        if (pending.Key !== name || !pending.UploadId) continue;
        await this.#client.send(
          new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: name, UploadId: pending.UploadId }),
        );
      }
    } catch {
      // Cleanup only: a store without these calls, or a key still being written, loses nothing.
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}
