import { describe, expect, test } from 'vitest';
import {
  azureBlockSize,
  resolveAzureSettings,
  resolveGcsSettings,
  resolveS3Settings,
  s3ClientSettings,
  s3PartSize,
  storageDefaults,
} from '../src/config.ts';
import { StorageConfigError } from '../src/errors.ts';
import { openStorage } from '../src/index.ts';

const MiB = 1024 * 1024;
const uri = 's3://bkt/runs';

describe('S3 settings', () => {
  test('defaults: 16 MiB parts, 4 at once, 10 s connect and 30 s idle timeouts, nothing else forced', () => {
    expect(resolveS3Settings(undefined, {}, uri)).toEqual({
      endpoint: undefined,
      region: undefined,
      forcePathStyle: undefined,
      checksum: undefined,
      partSizeBytes: 16 * MiB,
      concurrency: 4,
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 30_000,
    });
  });

  test('timeouts are whole milliseconds in range', () => {
    expect(resolveS3Settings({ idleTimeoutMs: 1000 }, {}, uri).idleTimeoutMs).toBe(1000);
    expect(() => resolveS3Settings({ idleTimeoutMs: 0 }, {}, uri)).toThrow(/options.s3.idleTimeoutMs is 0/);
    expect(() => resolveS3Settings({ connectTimeoutMs: 1.5 }, {}, uri)).toThrow(/options.s3.connectTimeoutMs/);
  });

  test('custom endpoints get path-style, us-east-1 and when-required checksums; AWS keeps the SDK defaults', () => {
    const settings = resolveS3Settings(undefined, {}, uri);
    expect(s3ClientSettings(settings, { customEndpoint: true, sdkRegion: undefined })).toEqual({
      region: 'us-east-1',
      forcePathStyle: true,
      checksum: 'when-required',
    });
    expect(s3ClientSettings(settings, { customEndpoint: true, sdkRegion: 'auto' }).region).toBe('auto');
    expect(s3ClientSettings(settings, { customEndpoint: false, sdkRegion: 'eu-west-1' })).toEqual({
      region: 'eu-west-1',
      forcePathStyle: false,
      checksum: undefined,
    });
  });

  test('KEEL_S3_FORCE_PATH_STYLE and KEEL_S3_CHECKSUM apply, and options win over them', () => {
    const env = { KEEL_S3_FORCE_PATH_STYLE: 'false', KEEL_S3_CHECKSUM: 'when-supported' };
    const fromEnv = resolveS3Settings(undefined, env, uri);
    expect(s3ClientSettings(fromEnv, { customEndpoint: true, sdkRegion: undefined })).toMatchObject({
      forcePathStyle: false,
      checksum: 'when-supported',
    });
    const fromOptions = resolveS3Settings({ forcePathStyle: true, checksum: 'when-required' }, env, uri);
    expect(fromOptions).toMatchObject({ forcePathStyle: true, checksum: 'when-required' });
  });

  test.each([
    [{ KEEL_S3_FORCE_PATH_STYLE: 'yes please' }, {}, /KEEL_S3_FORCE_PATH_STYLE="yes please" is not a boolean/],
    [{ KEEL_S3_CHECKSUM: 'always' }, {}, /KEEL_S3_CHECKSUM is "always"; use "when-supported"/],
    [{}, { partSizeBytes: MiB }, /options.s3.partSizeBytes is 1048576; it must be a whole number from 5242880/],
    [{}, { concurrency: 0 }, /options.s3.concurrency is 0/],
    [{}, { endpoint: 'minio:9000' }, /options.s3.endpoint must be an http:\/\/ or https:\/\/ URL/],
  ])('bad configuration %j %j is a StorageConfigError naming it', (env, options, message) => {
    expect(() => resolveS3Settings(options, env, uri)).toThrow(StorageConfigError);
    expect(() => resolveS3Settings(options, env, uri)).toThrow(message);
  });

  test('an endpoint with credentials in it is refused without echoing them', () => {
    const attempt = () => resolveS3Settings({ endpoint: 'http://AKIAX:s3cr3t@localhost:9000' }, {}, uri);
    expect(attempt).toThrow(/contains a user name or password; credentials come from the environment/);
    expect(attempt).not.toThrow(/s3cr3t/);
  });

  test('openStorage checks the configuration at once', () => {
    expect(() => openStorage(uri, { s3: { concurrency: 1.5 } })).toThrow(StorageConfigError);
    expect(() => openStorage(uri, { listPageSize: 5000 })).toThrow(/listPageSize is 5000/);
  });

  test('part and block sizes grow only when a file would exceed the part-count limits', () => {
    expect(s3PartSize(16 * MiB, 100 * 1024 * MiB)).toBe(16 * MiB);
    expect(s3PartSize(16 * MiB, 1024 * 1024 * MiB)).toBe(105 * MiB); // 1 TiB / 10,000 parts, rounded up to MiB
    expect(azureBlockSize(16 * MiB, 1024 * 1024 * MiB)).toBe(21 * MiB);
  });
});

describe('GCS settings', () => {
  test('chunks default to 32 MiB and must be multiples of 256 KiB', () => {
    expect(resolveGcsSettings(undefined, 'gs://bkt').chunkSizeBytes).toBe(storageDefaults.gcsChunkSizeBytes);
    // The endpoint: the option, else KEEL_GCS_ENDPOINT, else Google's.
    const env = { KEEL_GCS_ENDPOINT: 'http://127.0.0.1:4443' };
    expect(resolveGcsSettings(undefined, 'gs://bkt', env).apiEndpoint).toBe('http://127.0.0.1:4443');
    expect(resolveGcsSettings({ apiEndpoint: 'http://gcs.local' }, 'gs://bkt', env).apiEndpoint).toBe(
      'http://gcs.local',
    );
    expect(resolveGcsSettings(undefined, 'gs://bkt', {}).apiEndpoint).toBeUndefined();
    expect(() => resolveGcsSettings(undefined, 'gs://bkt', { KEEL_GCS_ENDPOINT: 'nope' })).toThrow(/KEEL_GCS_ENDPOINT/);
    expect(resolveGcsSettings({ chunkSizeBytes: 8 * MiB }, 'gs://bkt').chunkSizeBytes).toBe(8 * MiB);
    expect(() => resolveGcsSettings({ chunkSizeBytes: 1_000_000 }, 'gs://bkt')).toThrow(
      /multiple of 256 KiB \(262144\). Fix: use e.g. 1048576/,
    );
  });
});

describe('Azure account', () => {
  const az = 'az://container/runs';

  test('connection string, then account URL, then account name', () => {
    const all = {
      AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true',
      AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net',
      AZURE_STORAGE_ACCOUNT: 'other',
    };
    expect(resolveAzureSettings(undefined, all, az).account.kind).toBe('connection-string');
    const { AZURE_STORAGE_CONNECTION_STRING: _, ...urlAndName } = all;
    expect(resolveAzureSettings(undefined, urlAndName, az).account).toEqual({
      kind: 'entra',
      accountUrl: 'https://acct.blob.core.windows.net',
      source: 'AZURE_STORAGE_ACCOUNT_URL',
    });
    expect(resolveAzureSettings(undefined, { AZURE_STORAGE_ACCOUNT: 'other' }, az).account).toEqual({
      kind: 'entra',
      accountUrl: 'https://other.blob.core.windows.net',
      source: 'AZURE_STORAGE_ACCOUNT',
    });
    const sas = { AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net?sv=2024&sig=abc' };
    expect(resolveAzureSettings(undefined, sas, az).account.kind).toBe('sas-url');
    expect(resolveAzureSettings({ accountUrl: 'https://opt.blob.core.windows.net' }, all, az).account).toMatchObject({
      kind: 'entra',
      source: 'options.azure.accountUrl',
    });
  });

  test('no account configured is a StorageConfigError naming the variables to set', () => {
    const attempt = () => resolveAzureSettings(undefined, {}, az);
    expect(attempt).toThrow(StorageConfigError);
    expect(attempt).toThrow(
      /set AZURE_STORAGE_CONNECTION_STRING, or set AZURE_STORAGE_ACCOUNT_URL .* or AZURE_STORAGE_ACCOUNT/,
    );
  });

  test('a SAS token in options is refused: it is a credential', () => {
    expect(() => resolveAzureSettings({ accountUrl: 'https://a.blob.core.windows.net?sig=abc' }, {}, az)).toThrow(
      /must not have a query string \(a SAS token is a credential: use the environment\)/,
    );
  });
});
