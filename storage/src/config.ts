// StorageOptions and keel's environment variables, checked when the storage is opened so a typo
// fails at once, by name. Only tuning and endpoints live here; credentials stay with the SDKs'
// default chains, and values that may hold one (URLs) are never echoed back in errors.
import { StorageConfigError } from './errors.ts';
import type { AzureOptions, GcsOptions, S3ChecksumSetting, S3Options, StorageProvider } from './types.ts';

const MiB = 1024 * 1024;

/**
 * Part/block/chunk sizes and concurrency, none of which depend on the file's size (except to stay
 * under the providers' part-count limits). lib-storage buffers each S3 part and copies it once
 * while cutting parts, so S3 holds about 2 x (concurrency + 1) x part size: 16 MiB x 4 measured
 * 228 MiB peak RSS for the whole process uploading 1 GiB to MinIO (64 MiB x 4: 617 MiB; s5cmd's
 * 50 MiB x 5: 556 MiB) at 80% of the larger parts' speed. GCS buffers one chunk and sends chunks
 * one after another, so its chunk is larger to amortise each request's round trip. Azure streams
 * blocks straight from the file, so its block size costs no memory.
 */
export const storageDefaults = {
  s3PartSizeBytes: 16 * MiB,
  s3Concurrency: 4,
  gcsChunkSizeBytes: 32 * MiB,
  azureBlockSizeBytes: 16 * MiB,
  azureConcurrency: 4,
  listPageSize: 1000,
  /**
   * S3: a TCP connection not made in this long fails (and is retried by the SDK). A server that
   * is down refuses at once; this catches black holes (dropped SYNs).
   */
  s3ConnectTimeoutMs: 10_000,
  /**
   * S3: a request whose socket carries no bytes either way for this long fails with TimeoutError
   * and is retried (the SDK's 3 attempts, then Temporal's). An idle timeout, not a deadline: a
   * slow 16 MiB part keeps its socket busy and takes as long as it needs; only silence counts.
   * 30 s, as long as the upload activity's heartbeat timeout and half boto's 60 s read timeout:
   * S3 answers a part within seconds of its last byte, and long CompleteMultipartUploads send
   * whitespace to keep the connection busy (AWS and MinIO both do).
   */
  s3IdleTimeoutMs: 30_000,
  /**
   * GCS (@google-cloud/storage's `timeout`, through teeny-request): per request, reset by every
   * byte of the response and by socket activity, so it works as an idle timeout for reads and
   * metadata calls. The SDK's own default is 60 s; 30 s matches S3.
   */
  gcsTimeoutMs: 30_000,
  /**
   * GCS single-request uploads (files up to one chunk, 32 MiB): the SDK sets no timeout on them
   * by default, so a hung server held them forever. This one runs from the request's start to
   * the response's first byte (the body's time counts), so it is generous: 32 MiB in 2 minutes
   * needs only 280 KB/s. Resumable chunks (gaxios) take no timeout through the SDK: a hung chunk
   * is ended by the upload activity's heartbeat timeout (see README).
   */
  gcsSingleUploadTimeoutMs: 120_000,
} as const;

export const s3Limits = { minPartBytes: 5 * MiB, maxPartBytes: 5 * 1024 * MiB, maxParts: 10_000 } as const;
export const azureLimits = { maxBlockBytes: 4000 * MiB, maxBlocks: 50_000 } as const;
const gcsChunkMultiple = 256 * 1024;
const maxConcurrency = 64;

type Env = Record<string, string | undefined>;

export interface S3Settings {
  /** Only an explicit option: the SDK reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / the profile itself. */
  endpoint: string | undefined;
  region: string | undefined;
  forcePathStyle: boolean | undefined;
  checksum: S3ChecksumSetting | undefined;
  partSizeBytes: number;
  concurrency: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface GcsSettings {
  apiEndpoint: string | undefined;
  projectId: string | undefined;
  chunkSizeBytes: number;
}

export type AzureAccount =
  | { kind: 'connection-string'; connectionString: string }
  /** Authenticated with DefaultAzureCredential. */
  | { kind: 'entra'; accountUrl: string; source: string }
  /** AZURE_STORAGE_ACCOUNT_URL carrying a SAS token. */
  | { kind: 'sas-url'; accountUrl: string };

export interface AzureSettings {
  account: AzureAccount;
  blockSizeBytes: number;
  concurrency: number;
}

export function resolveListPageSize(provider: StorageProvider, uri: string, value: number | undefined): number {
  if (value === undefined) return storageDefaults.listPageSize;
  return integerIn(provider, uri, 'listPageSize', value, 1, 1000);
}

export function resolveS3Settings(options: S3Options | undefined, env: Env, uri: string): S3Settings {
  const o = options ?? {};
  const fail = (problem: string): never => {
    throw new StorageConfigError('s3', uri, problem);
  };
  if (o.region !== undefined && (typeof o.region !== 'string' || o.region.trim() === '')) {
    fail('options.s3.region must be a non-empty string such as "us-east-1" (or leave it out: AWS_REGION is read)');
  }
  if (o.forcePathStyle !== undefined && typeof o.forcePathStyle !== 'boolean') {
    fail('options.s3.forcePathStyle must be true or false');
  }
  return {
    endpoint: o.endpoint === undefined ? undefined : httpUrl('s3', uri, 'options.s3.endpoint', o.endpoint),
    region: o.region,
    forcePathStyle: o.forcePathStyle ?? booleanEnv('s3', uri, env, 'KEEL_S3_FORCE_PATH_STYLE'),
    checksum:
      o.checksum === undefined
        ? checksumSetting(uri, 'KEEL_S3_CHECKSUM', env.KEEL_S3_CHECKSUM)
        : checksumSetting(uri, 'options.s3.checksum', o.checksum),
    partSizeBytes:
      o.partSizeBytes === undefined
        ? storageDefaults.s3PartSizeBytes
        : integerIn(
            's3',
            uri,
            'options.s3.partSizeBytes',
            o.partSizeBytes,
            s3Limits.minPartBytes,
            s3Limits.maxPartBytes,
          ),
    concurrency:
      o.concurrency === undefined
        ? storageDefaults.s3Concurrency
        : integerIn('s3', uri, 'options.s3.concurrency', o.concurrency, 1, maxConcurrency),
    connectTimeoutMs:
      o.connectTimeoutMs === undefined
        ? storageDefaults.s3ConnectTimeoutMs
        : integerIn('s3', uri, 'options.s3.connectTimeoutMs', o.connectTimeoutMs, 100, 600_000),
    idleTimeoutMs:
      o.idleTimeoutMs === undefined
        ? storageDefaults.s3IdleTimeoutMs
        : integerIn('s3', uri, 'options.s3.idleTimeoutMs', o.idleTimeoutMs, 100, 3_600_000),
  };
}

/**
 * S3 client settings once we know whether the endpoint is AWS's. S3-compatible servers (MinIO,
 * R2, ...) get path-style addressing, `us-east-1` when no region is configured, and checksums only
 * where required, since their support for the SDK's default CRC checksums varies.
 */
export function s3ClientSettings(
  settings: S3Settings,
  discovered: { customEndpoint: boolean; sdkRegion: string | undefined },
): { region: string | undefined; forcePathStyle: boolean; checksum: S3ChecksumSetting | undefined } {
  const custom = discovered.customEndpoint;
  return {
    region: settings.region ?? discovered.sdkRegion ?? (custom ? 'us-east-1' : undefined),
    forcePathStyle: settings.forcePathStyle ?? custom,
    // Undefined on AWS: the SDK's own default (when_supported), which also honours AWS_REQUEST_CHECKSUM_CALCULATION.
    checksum: settings.checksum ?? (custom ? 'when-required' : undefined),
  };
}

/** Grows the part size when a file would otherwise need more than S3's 10,000 parts. */
export function s3PartSize(configured: number, bytes: number): number {
  return Math.max(configured, Math.ceil(bytes / s3Limits.maxParts / MiB) * MiB);
}

export function azureBlockSize(configured: number, bytes: number): number {
  return Math.max(configured, Math.ceil(bytes / azureLimits.maxBlocks / MiB) * MiB);
}

/** KEEL_GCS_ENDPOINT sets the endpoint where options do not: workers take their storage settings
 *  from the environment, and STORAGE_EMULATOR_HOST does not fit fake-gcs-server (see README). */
export function resolveGcsSettings(options: GcsOptions | undefined, uri: string, env: Env = process.env): GcsSettings {
  const o = { ...options, apiEndpoint: options?.apiEndpoint ?? (env.KEEL_GCS_ENDPOINT || undefined) };
  if (o.projectId !== undefined && (typeof o.projectId !== 'string' || o.projectId === '')) {
    throw new StorageConfigError('gcs', uri, 'options.gcs.projectId must be a non-empty string');
  }
  let chunkSizeBytes: number = storageDefaults.gcsChunkSizeBytes;
  if (o.chunkSizeBytes !== undefined) {
    chunkSizeBytes = integerIn('gcs', uri, 'options.gcs.chunkSizeBytes', o.chunkSizeBytes, gcsChunkMultiple, 2 ** 40);
    if (chunkSizeBytes % gcsChunkMultiple !== 0) {
      throw new StorageConfigError(
        'gcs',
        uri,
        `options.gcs.chunkSizeBytes is ${chunkSizeBytes}; resumable upload chunks must be a multiple of 256 KiB (262144). Fix: use e.g. ${Math.ceil(chunkSizeBytes / gcsChunkMultiple) * gcsChunkMultiple}`,
      );
    }
  }
  return {
    apiEndpoint:
      o.apiEndpoint === undefined
        ? undefined
        : httpUrl('gcs', uri, options?.apiEndpoint ? 'options.gcs.apiEndpoint' : 'KEEL_GCS_ENDPOINT', o.apiEndpoint),
    projectId: o.projectId,
    chunkSizeBytes,
  };
}

/**
 * Which Azure account, and how to authenticate: options.azure.accountUrl (DefaultAzureCredential),
 * else AZURE_STORAGE_CONNECTION_STRING, else AZURE_STORAGE_ACCOUNT_URL (a SAS token in it is used
 * as is, otherwise DefaultAzureCredential), else AZURE_STORAGE_ACCOUNT (DefaultAzureCredential).
 */
export function resolveAzureSettings(options: AzureOptions | undefined, env: Env, uri: string): AzureSettings {
  const o = options ?? {};
  const fail = (problem: string): never => {
    throw new StorageConfigError('azure', uri, problem);
  };
  let account: AzureAccount;
  if (o.accountUrl !== undefined) {
    const accountUrl = httpUrl('azure', uri, 'options.azure.accountUrl', o.accountUrl);
    account = { kind: 'entra', accountUrl, source: 'options.azure.accountUrl' };
  } else if (env.AZURE_STORAGE_CONNECTION_STRING) {
    account = { kind: 'connection-string', connectionString: env.AZURE_STORAGE_CONNECTION_STRING };
  } else if (env.AZURE_STORAGE_ACCOUNT_URL) {
    const raw = env.AZURE_STORAGE_ACCOUNT_URL;
    if (raw.includes('?')) {
      const base = raw.slice(0, raw.indexOf('?'));
      httpUrl('azure', uri, 'AZURE_STORAGE_ACCOUNT_URL', base);
      account = { kind: 'sas-url', accountUrl: raw };
    } else {
      account = {
        kind: 'entra',
        accountUrl: httpUrl('azure', uri, 'AZURE_STORAGE_ACCOUNT_URL', raw),
        source: 'AZURE_STORAGE_ACCOUNT_URL',
      };
    }
  } else if (env.AZURE_STORAGE_ACCOUNT) {
    const name = env.AZURE_STORAGE_ACCOUNT;
    if (!/^[a-z0-9]{3,24}$/.test(name)) {
      fail(
        `AZURE_STORAGE_ACCOUNT=${JSON.stringify(name)} is not a storage account name (3 to 24 lowercase letters and digits)`,
      );
    }
    account = { kind: 'entra', accountUrl: `https://${name}.blob.core.windows.net`, source: 'AZURE_STORAGE_ACCOUNT' };
  } else {
    return fail(
      'no Azure storage account is configured. Fix: set AZURE_STORAGE_CONNECTION_STRING, or set ' +
        'AZURE_STORAGE_ACCOUNT_URL (https://<account>.blob.core.windows.net) or AZURE_STORAGE_ACCOUNT (<account>) ' +
        'and provide credentials that DefaultAzureCredential finds (AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, ' +
        'workload or managed identity, or az login)',
    );
  }
  return {
    account,
    blockSizeBytes:
      o.blockSizeBytes === undefined
        ? storageDefaults.azureBlockSizeBytes
        : integerIn('azure', uri, 'options.azure.blockSizeBytes', o.blockSizeBytes, 1, azureLimits.maxBlockBytes),
    concurrency:
      o.concurrency === undefined
        ? storageDefaults.azureConcurrency
        : integerIn('azure', uri, 'options.azure.concurrency', o.concurrency, 1, maxConcurrency),
  };
}

function integerIn(provider: StorageProvider, uri: string, name: string, value: unknown, min: number, max: number) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new StorageConfigError(
      provider,
      uri,
      `${name} is ${JSON.stringify(value)}; it must be a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/** An http(s) URL without credentials in it; the value itself is not echoed, in case it held some. */
function httpUrl(provider: StorageProvider, uri: string, name: string, value: unknown): string {
  const fail = (problem: string): never => {
    throw new StorageConfigError(provider, uri, `${name} ${problem}`);
  };
  if (typeof value !== 'string') return fail('must be a string URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('is not a URL; expected e.g. https://host:port');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    fail(`must be an http:// or https:// URL, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '') {
    fail('contains a user name or password; credentials come from the environment, not the URL');
  }
  if (url.search !== '') fail('must not have a query string (a SAS token is a credential: use the environment)');
  return value;
}

function booleanEnv(provider: StorageProvider, uri: string, env: Env, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new StorageConfigError(provider, uri, `${name}=${JSON.stringify(raw)} is not a boolean; use true or false`);
}

function checksumSetting(uri: string, name: string, raw: unknown): S3ChecksumSetting | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'when-supported' || raw === 'when-required') return raw;
  throw new StorageConfigError(
    's3',
    uri,
    `${name} is ${JSON.stringify(raw)}; use "when-supported" (checksum every request, AWS S3) or "when-required" (only where the API demands one, for S3-compatible servers)`,
  );
}
