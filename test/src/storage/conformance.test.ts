// One behaviour for every backend: the same cases run against a local folder, MinIO,
// fake-gcs-server and Azurite. Credentials reach keel only through the environment; the SDK
// clients made here (with the servers' test-only credentials) set up buckets and tamper with
// objects behind keel's back.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { type Bucket, Storage as GcsClient } from '@google-cloud/storage';
import {
  ChecksumMismatchError,
  ChecksumMissingError,
  InvalidKeyError,
  ObjectNotFoundError,
  openStorage,
  type Storage,
  StorageError,
  type StorageOptions,
  type StorageProvider,
  type StoredObject,
  TransferAbortedError,
  type TransferProgress,
} from '@keel/storage';
import { afterAll, beforeAll, describe, expect, inject, test, vi } from 'vitest';

const services = inject('services');
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const bucketName = `keel-conformance-${run}`;
const MiB = 1024 * 1024;
const largeBytes = 200 * MiB;
const defaultPartBytes = 16 * MiB;

let work: string; // temp folder for local files
let large: { file: string; sha256: string };

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-storage-conformance-'));
  large = writeRandomFile(path.join(work, 'large.bin'), largeBytes);
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** What the suite needs from each backend besides keel itself. */
interface Backend {
  provider: StorageProvider;
  /** Stubs the environment, creates the bucket; returns the storage URI (with a non-empty prefix where there is one). */
  setup(): Promise<string>;
  options: StorageOptions;
  missingBucketUri: string;
  /** Writes bytes (and sha256 metadata, if given) straight to an object name, bypassing keel. */
  writeRaw(name: string, bytes: Buffer, sha256: string | undefined): Promise<void>;
  /** Changes whenever the object is rewritten. */
  writeStamp(name: string): Promise<string>;
  /** Whether listings carry sha256 (S3's ListObjectsV2 has no user metadata). */
  listsSha256: boolean;
  /** What proves a large upload took the provider's large-object path. */
  largePath: string;
  assertLargePath(name: string, bytes: number): Promise<void>;
  /** Objects keel must not list: outside the prefix but sharing its leading characters, or keel's own temp files. */
  foreignNames: string[];
  /** Leftovers of an aborted upload that the provider can show (pending multipart uploads, temp files). */
  abortLeftovers?: { what: string; find(name: string): Promise<string[]> };
  teardown(): Promise<void>;
}

const prefix = `conformance/${run}`;

function fileBackend(): Backend {
  let root = '';
  return {
    provider: 'file',
    async setup() {
      root = path.join(work, 'root');
      fs.mkdirSync(root);
      return `file://${root}`;
    },
    options: {},
    get missingBucketUri() {
      return `file://${path.join(work, 'no-such-root')}`;
    },
    async writeRaw(name, bytes, sha256) {
      const file = path.join(root, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, bytes);
      if (sha256 === undefined) fs.rmSync(`${file}.sha256`, { force: true });
      else fs.writeFileSync(`${file}.sha256`, `${sha256}  ${path.basename(file)}\n`);
    },
    async writeStamp(name) {
      const info = fs.statSync(path.join(root, name), { bigint: true });
      return `${info.ino}:${info.mtimeNs}`;
    },
    listsSha256: true,
    largePath: 'one streamed copy: a local disk has no multipart path',
    async assertLargePath() {},
    foreignNames: ['list/.b.keel-partial-0123456789abcdef', 'list/stray.sha256'],
    abortLeftovers: {
      what: 'no temporary file left',
      async find(name) {
        const dir = path.dirname(path.join(root, name));
        return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.includes('.keel-partial-')) : [];
      },
    },
    async teardown() {},
  };
}

function s3Backend(): Backend {
  const { endpoint, region, accessKeyId, secretAccessKey } = services.minio;
  const s3 = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  return {
    provider: 's3',
    async setup() {
      vi.stubEnv('AWS_ACCESS_KEY_ID', accessKeyId);
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', secretAccessKey);
      vi.stubEnv('AWS_SESSION_TOKEN', undefined);
      vi.stubEnv('AWS_ENDPOINT_URL_S3', endpoint);
      vi.stubEnv('AWS_REGION', region);
      await s3.send(new CreateBucketCommand({ Bucket: bucketName }));
      return `s3://${bucketName}/${prefix}`;
    },
    options: {},
    missingBucketUri: `s3://no-such-bucket-${run}/x`,
    async writeRaw(name, bytes, sha256) {
      const metadata = sha256 === undefined ? {} : { Metadata: { sha256 } };
      await s3.send(new PutObjectCommand({ Bucket: bucketName, Key: name, Body: bytes, ...metadata }));
    },
    async writeStamp(name) {
      // ListObjectsV2 gives LastModified to the millisecond on MinIO (HeadObject only to the second).
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucketName, Prefix: name }));
      const object = listed.Contents?.find((o) => o.Key === name);
      return `${object?.ETag}:${object?.LastModified?.toISOString()}`;
    },
    listsSha256: false,
    largePath: 'multipart: the ETag ends in -<parts>',
    async assertLargePath(name, bytes) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucketName, Key: name }));
      expect(head.ETag).toMatch(new RegExp(`-${Math.ceil(bytes / defaultPartBytes)}"?$`));
    },
    foreignNames: [`${prefix}-other/list/a.bin`],
    abortLeftovers: {
      what: 'no multipart upload left pending',
      async find(name) {
        const pending = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucketName, Prefix: name }));
        return (pending.Uploads ?? []).map((u) => `${u.Key} (${u.UploadId})`);
      },
    },
    async teardown() {
      s3.destroy();
    },
  };
}

function gcsBackend(): Backend {
  const client = new GcsClient({ apiEndpoint: services.gcs.endpoint, projectId: services.gcs.projectId });
  let bucket: Bucket;
  return {
    provider: 'gcs',
    async setup() {
      // fake-gcs-server needs no credentials. Its endpoint comes as a worker's would, from
      // KEEL_GCS_ENDPOINT. STORAGE_EMULATOR_HOST is cleared rather than used: the Node SDK takes it
      // as the JSON API's base URL, which fake-gcs-server serves under /storage/v1.
      vi.stubEnv('STORAGE_EMULATOR_HOST', undefined);
      vi.stubEnv('KEEL_GCS_ENDPOINT', services.gcs.endpoint);
      [bucket] = await client.createBucket(bucketName);
      return `gs://${bucketName}/${prefix}`;
    },
    options: {},
    missingBucketUri: `gs://no-such-bucket-${run}/x`,
    async writeRaw(name, bytes, sha256) {
      const metadata = sha256 === undefined ? {} : { sha256 };
      await bucket.file(name).save(bytes, { resumable: false, metadata: { metadata } });
    },
    async writeStamp(name) {
      const [metadata] = await bucket.file(name).getMetadata();
      return String(metadata.generation);
    },
    listsSha256: true,
    largePath: 'resumable chunks: not observable on fake-gcs-server; crc32c checked by the SDK, sha256 here',
    async assertLargePath() {},
    foreignNames: [`${prefix}-other/list/a.bin`],
    async teardown() {},
  };
}

function azureBackend(): Backend {
  const { connectionString } = services.azurite;
  let container: ContainerClient;
  return {
    provider: 'azure',
    async setup() {
      vi.stubEnv('AZURE_STORAGE_CONNECTION_STRING', connectionString);
      container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(bucketName);
      await container.create();
      return `az://${bucketName}/${prefix}`;
    },
    options: {},
    missingBucketUri: `az://no-such-container-${run}/x`,
    async writeRaw(name, bytes, sha256) {
      await container.getBlockBlobClient(name).uploadData(bytes, sha256 === undefined ? {} : { metadata: { sha256 } });
    },
    async writeStamp(name) {
      return String((await container.getBlockBlobClient(name).getProperties()).etag);
    },
    listsSha256: true,
    largePath: 'staged blocks: one committed block per 16 MiB',
    async assertLargePath(name, bytes) {
      const blocks = await container.getBlockBlobClient(name).getBlockList('committed');
      expect(blocks.committedBlocks).toHaveLength(Math.ceil(bytes / defaultPartBytes));
    },
    foreignNames: [`${prefix}-other/list/a.bin`],
    async teardown() {},
  };
}

describe.each([fileBackend(), s3Backend(), gcsBackend(), azureBackend()])(
  'storage conformance: $provider',
  (backend) => {
    let storage: Storage;
    let uri: string;
    /** The object name inside the bucket (or below the root) for a key. */
    const nameOf = (key: string) => (backend.provider === 'file' ? key : `${prefix}/${key}`);

    beforeAll(async () => {
      storage = openStorage(await backend.setup(), backend.options);
      uri = storage.uri;
    });

    afterAll(async () => {
      await storage?.close();
      await backend.teardown();
      vi.unstubAllEnvs();
    });

    test('small files round trip: bytes, sha256 and head agree', async () => {
      for (const [key, bytes] of [
        ['small/random.bin', 100 * 1024],
        ['small/empty.bin', 0],
      ] as const) {
        const local = writeRandomFile(path.join(work, `${backend.provider}-${path.basename(key)}`), bytes);
        const put = await storage.put(key, local.file);
        expect(put).toMatchObject({ key, bytes, sha256: local.sha256, skipped: false });
        expect(put.uri).toBe(`${uri}/${key}`);

        expect(await storage.head(key)).toMatchObject({ key, bytes, sha256: local.sha256, uri: put.uri });

        const copy = path.join(work, 'downloads', backend.provider, 'nested', path.basename(key));
        const got = await storage.get(key, copy);
        expect(got).toMatchObject({ key, bytes, sha256: local.sha256 });
        expect(fs.readFileSync(copy).equals(fs.readFileSync(local.file))).toBe(true);
        expect(fs.readdirSync(path.dirname(copy)).filter((f) => f.includes('.keel-partial-'))).toEqual([]);
      }
    });

    test(`>= 200 MB round trip (${backend.largePath}); progress reaches the total`, async () => {
      const key = 'large/model.pt';
      const uploaded: TransferProgress[] = [];
      const put = await storage.put(key, large.file, { onProgress: (p) => uploaded.push(p) });
      expect(put).toMatchObject({ bytes: largeBytes, sha256: large.sha256, skipped: false });
      expectProgress(uploaded, largeBytes);
      await backend.assertLargePath(nameOf(key), largeBytes);

      const downloaded: TransferProgress[] = [];
      const copy = path.join(work, 'downloads', backend.provider, 'large.bin');
      const got = await storage.get(key, copy, { onProgress: (p) => downloaded.push(p) });
      expect(got.sha256).toBe(large.sha256);
      expect(sha256File(copy)).toBe(large.sha256);
      expectProgress(downloaded, largeBytes);

      fs.rmSync(copy);
      await storage.delete(key);
    });

    test('putting the same bytes again uploads nothing; different bytes replace the object', async () => {
      const key = 'idempotent/state.bin';
      const first = writeRandomFile(path.join(work, `${backend.provider}-first.bin`), 64 * 1024);
      const second = writeRandomFile(path.join(work, `${backend.provider}-second.bin`), 64 * 1024);
      await storage.put(key, first.file);
      const stamp = await backend.writeStamp(nameOf(key));
      const before = await storage.head(key);

      const events: TransferProgress[] = [];
      const again = await storage.put(key, first.file, { onProgress: (p) => events.push(p) });
      expect(again).toMatchObject({ key, sha256: first.sha256, bytes: 64 * 1024, skipped: true });
      expect(events).toEqual([]);
      expect(await backend.writeStamp(nameOf(key))).toBe(stamp);
      expect((await storage.head(key))?.modified).toEqual(before?.modified);
      // A sha256 known from staging takes the same decision without hashing the file.
      expect((await storage.put(key, first.file, { sha256: first.sha256.toUpperCase() })).skipped).toBe(true);

      const replaced = await storage.put(key, second.file);
      expect(replaced).toMatchObject({ sha256: second.sha256, skipped: false });
      expect(await backend.writeStamp(nameOf(key))).not.toBe(stamp);
      const copy = path.join(work, 'downloads', backend.provider, 'replaced.bin');
      await storage.get(key, copy);
      expect(fs.readFileSync(copy).equals(fs.readFileSync(second.file))).toBe(true);
    });

    test('list returns exactly the keys under a prefix, in order, across pages; delete removes them', async () => {
      const keys = ['list/a.bin', 'list/b/c.bin', 'list/b/d.bin', 'list/e.bin'];
      const local = writeRandomFile(path.join(work, `${backend.provider}-list.bin`), 1000);
      for (const key of [...keys, 'listing.bin']) await storage.put(key, local.file);
      for (const name of backend.foreignNames) await backend.writeRaw(name, Buffer.from('not keel'), undefined);
      // Two objects a page, so every listing below spans several pages.
      const paged = openStorage(uri, { ...backend.options, listPageSize: 2 });
      try {
        const listed = await collect(paged.list('list/'));
        expect(listed.map((o) => o.key)).toEqual(keys);
        for (const object of listed) {
          expect(object).toMatchObject({
            bytes: 1000,
            sha256: backend.listsSha256 ? local.sha256 : undefined,
            uri: `${uri}/${object.key}`,
          });
          expect(object.modified).toBeInstanceOf(Date);
        }
        expect((await collect(paged.list('list/b/'))).map((o) => o.key)).toEqual(['list/b/c.bin', 'list/b/d.bin']);
        // A prefix is a string prefix, as on the providers, not a folder.
        expect((await collect(paged.list('list'))).map((o) => o.key)).toEqual([...keys, 'listing.bin']);

        for (const key of keys) await storage.delete(key);
        await storage.delete('list/a.bin'); // already gone: not an error
        expect(await storage.head('list/a.bin')).toBeUndefined();
        await expect(storage.get('list/a.bin', path.join(work, 'gone.bin'))).rejects.toBeInstanceOf(
          ObjectNotFoundError,
        );
        expect(await collect(paged.list('list/'))).toEqual([]);
        expect((await collect(paged.list('list'))).map((o) => o.key)).toEqual(['listing.bin']);
      } finally {
        await paged.close();
      }
    });

    test(`abort mid-upload: TransferAbortedError, no object visible${backend.abortLeftovers ? `, ${backend.abortLeftovers.what}` : ''}`, async () => {
      const key = 'aborted/upload.pt';
      const controller = new AbortController();
      let events = 0;
      const put = storage.put(key, large.file, {
        signal: controller.signal,
        onProgress: () => {
          events += 1;
          controller.abort();
        },
      });
      await expect(put).rejects.toBeInstanceOf(TransferAbortedError);
      await expect(put).rejects.toMatchObject({ name: 'TransferAbortedError', operation: 'put', key });
      expect(events).toBeGreaterThan(0);
      expect(await storage.head(key)).toBeUndefined();
      expect(await collect(storage.list('aborted/'))).toEqual([]);
      if (backend.abortLeftovers) expect(await backend.abortLeftovers.find(nameOf(key))).toEqual([]);

      // An already-aborted signal rejects at once and uploads nothing.
      await expect(storage.put(key, large.file, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
        TransferAbortedError,
      );
      expect(await storage.head(key)).toBeUndefined();
    });

    test('abort mid-download: TransferAbortedError, no partial file left', async () => {
      const key = 'aborted/download.bin';
      const local = writeRandomFile(path.join(work, `${backend.provider}-download.bin`), 4 * MiB);
      await storage.put(key, local.file);
      const destination = path.join(work, 'downloads', backend.provider, 'aborted', 'download.bin');
      const controller = new AbortController();
      const get = storage.get(key, destination, { signal: controller.signal, onProgress: () => controller.abort() });
      await expect(get).rejects.toBeInstanceOf(TransferAbortedError);
      await expect(get).rejects.toMatchObject({ operation: 'get', key });
      expect(fs.readdirSync(path.dirname(destination))).toEqual([]);

      await expect(storage.get(key, destination, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
        TransferAbortedError,
      );
      expect(fs.readdirSync(path.dirname(destination))).toEqual([]);
    });

    test('a corrupted object fails get with ChecksumMismatchError; one without sha256 with ChecksumMissingError', async () => {
      const key = 'corrupt/state.bin';
      const original = writeRandomFile(path.join(work, `${backend.provider}-original.bin`), 256 * 1024);
      await storage.put(key, original.file);
      // Same length, other bytes, the original's sha256 kept as metadata.
      const other = randomBytes(256 * 1024);
      await backend.writeRaw(nameOf(key), other, original.sha256);

      const destination = path.join(work, 'downloads', backend.provider, 'corrupt', 'state.bin');
      const get = storage.get(key, destination);
      await expect(get).rejects.toBeInstanceOf(ChecksumMismatchError);
      await expect(get).rejects.toMatchObject({
        name: 'ChecksumMismatchError',
        expected: original.sha256,
        actual: createHash('sha256').update(other).digest('hex'),
        uri: `${uri}/${key}`,
        key,
      });
      expect(fs.existsSync(destination)).toBe(false);
      expect(fs.readdirSync(path.dirname(destination))).toEqual([]);

      await backend.writeRaw(nameOf('corrupt/foreign.bin'), other, undefined);
      const foreign = storage.get('corrupt/foreign.bin', destination);
      await expect(foreign).rejects.toBeInstanceOf(ChecksumMissingError);
      await expect(foreign).rejects.toThrow(/has no sha256 metadata/);
      expect(fs.readdirSync(path.dirname(destination))).toEqual([]);
    });

    test('a missing key and a missing bucket are named errors', async () => {
      const missing = storage.get('no/such/key.bin', path.join(work, 'missing', 'key.bin'));
      await expect(missing).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(missing).rejects.toThrow('no/such/key.bin');
      await expect(missing).rejects.toMatchObject({
        provider: backend.provider,
        operation: 'get',
        key: 'no/such/key.bin',
      });
      expect(await storage.head('no/such/key.bin')).toBeUndefined();
      expect(fs.existsSync(path.join(work, 'missing'))).toBe(false);

      const elsewhere = openStorage(backend.missingBucketUri, backend.options);
      try {
        const local = writeRandomFile(path.join(work, `${backend.provider}-nowhere.bin`), 1000);
        const error = await elsewhere.put('a/key.bin', local.file).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(StorageError);
        expect(error).not.toBeInstanceOf(ObjectNotFoundError);
        const failure = error as StorageError;
        expect(failure).toMatchObject({
          name: 'StorageError',
          provider: backend.provider,
          operation: 'put',
          key: 'a/key.bin',
        });
        expect(failure.bucket).toBeTruthy();
        expect(failure.message).toContain(`${backend.provider} put `);
        expect(failure.message).toContain(failure.bucket);
        expect(failure.message).toContain('a/key.bin');
        expect(failure.cause).toBeDefined();
      } finally {
        await elsewhere.close();
      }
    });

    test('bad keys are rejected by every operation before any I/O', async () => {
      // Aimed at a missing bucket and a missing source file: any I/O would fail with another error.
      const elsewhere = openStorage(backend.missingBucketUri, backend.options);
      const nowhere = path.join(work, 'no-such-source.bin');
      for (const key of ['../x', '/abs', 'a//b', 'a\u0001b', 'x.sha256']) {
        const attempts = [
          elsewhere.put(key, nowhere),
          elsewhere.get(key, path.join(work, 'bad-key.bin')),
          elsewhere.head(key),
          elsewhere.delete(key),
          collect(elsewhere.list(key)),
        ];
        for (const attempt of attempts) {
          await expect(attempt).rejects.toBeInstanceOf(InvalidKeyError);
          await expect(attempt).rejects.toMatchObject({ name: 'InvalidKeyError', key, provider: backend.provider });
        }
      }
      expect(fs.existsSync(path.join(work, 'bad-key.bin'))).toBe(false);
      await elsewhere.close();
    });
  },
);

describe('S3 configuration from the environment', () => {
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  test('a custom endpoint with no region configured signs for us-east-1', async () => {
    const { endpoint, accessKeyId, secretAccessKey } = services.minio;
    vi.stubEnv('AWS_ACCESS_KEY_ID', accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', secretAccessKey);
    vi.stubEnv('AWS_ENDPOINT_URL', endpoint); // the generic variable, also read by the SDK
    vi.stubEnv('AWS_ENDPOINT_URL_S3', undefined);
    vi.stubEnv('AWS_REGION', undefined);
    vi.stubEnv('AWS_CONFIG_FILE', path.join(work, 'no-aws-config'));
    const storage = openStorage(`s3://${bucketName}/${prefix}`);
    try {
      const local = writeRandomFile(path.join(work, 'region.bin'), 1000);
      expect(await storage.put('region/x.bin', local.file)).toMatchObject({ sha256: local.sha256 });
      expect(await storage.head('region/x.bin')).toMatchObject({ bytes: 1000, sha256: local.sha256 });
    } finally {
      await storage.close();
    }
  });
});

function writeRandomFile(file: string, bytes: number): { file: string; sha256: string } {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; ) {
      const chunk = randomBytes(Math.min(4 * MiB, bytes - written));
      hash.update(chunk);
      fs.writeSync(fd, chunk);
      written += chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file, sha256: hash.digest('hex') };
}

function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.alloc(4 * MiB);
  try {
    for (let read = fs.readSync(fd, buffer); read > 0; read = fs.readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Cumulative, strictly increasing, more than one step, ending exactly at the total. */
function expectProgress(events: TransferProgress[], total: number): void {
  expect(events.length).toBeGreaterThan(1);
  expect(events.every((e) => e.total === total)).toBe(true);
  expect(events.every((e, i) => i === 0 || e.bytes > (events[i - 1]?.bytes ?? 0))).toBe(true);
  expect(events.at(-1)).toEqual({ bytes: total, total });
}

async function collect(objects: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const all: StoredObject[] = [];
  for await (const object of objects) all.push(object);
  return all;
}
