// Storage URIs: file:///absolute/folder, s3://bucket/prefix, gs://bucket/prefix,
// az://container/prefix. Parsed by hand rather than with URL: bucket names are not host names,
// and s3/gs/az prefixes are taken literally (no percent-decoding), as the providers' CLIs do.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidStorageUriError } from './errors.ts';
import { controlCharacterIndex, keyProblem } from './keys.ts';
import type { StorageProvider } from './types.ts';

export interface StorageLocation {
  provider: StorageProvider;
  /** The S3/GCS bucket, the Azure container, or the file:// root folder (an absolute path). */
  bucket: string;
  /** Object-name prefix inside the bucket, no leading or trailing `/`; '' for none (always '' for file://). */
  prefix: string;
  /** The normalised URI. */
  uri: string;
}

const providers: Record<string, StorageProvider> = { file: 'file', s3: 's3', gs: 'gcs', az: 'azure' };

// Schemes people reach for first, with the form keel wants instead.
const hints: Record<string, string> = {
  gcs: 'Google Cloud Storage URIs start with gs://',
  azure: 'Azure Blob Storage URIs are az://container/prefix',
  wasb: 'Azure Blob Storage URIs are az://container/prefix (the account comes from the environment)',
  wasbs: 'Azure Blob Storage URIs are az://container/prefix (the account comes from the environment)',
  abfs: 'Azure Blob Storage URIs are az://container/prefix (the account comes from the environment)',
  abfss: 'Azure Blob Storage URIs are az://container/prefix (the account comes from the environment)',
  r2: 'R2 is S3-compatible: use s3://bucket/prefix with AWS_ENDPOINT_URL_S3 set to the R2 endpoint',
  minio: 'MinIO is S3-compatible: use s3://bucket/prefix with AWS_ENDPOINT_URL_S3 set to the MinIO endpoint',
  http: 'for an S3-compatible server use s3://bucket/prefix and set its endpoint in AWS_ENDPOINT_URL_S3',
  https: 'for an S3-compatible server use s3://bucket/prefix and set its endpoint in AWS_ENDPOINT_URL_S3',
};

export function parseStorageUri(uri: string): StorageLocation {
  if (typeof uri !== 'string' || uri.trim() === '') throw new InvalidStorageUriError(String(uri), 'it is empty');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new InvalidStorageUriError(uri, 'it has no scheme');
  const provider = providers[scheme];
  if (provider === undefined) {
    const hint = hints[scheme];
    throw new InvalidStorageUriError(uri, `unknown scheme "${scheme}:"${hint ? ` (${hint})` : ''}`);
  }
  const fail = (reason: string): never => {
    throw new InvalidStorageUriError(uri, reason, provider);
  };
  const rest = uri.slice(scheme.length + 1);
  if (!rest.startsWith('//')) fail(`expected "${scheme}://" at the start`);
  if (/[?#]/.test(rest)) fail('query strings and fragments are not part of a storage URI');
  if (controlCharacterIndex(rest) !== -1 || rest.includes('\\')) fail('it contains a control character or a backslash');
  return provider === 'file'
    ? parseFileUri(rest.slice(2), fail)
    : parseBucketUri(provider, scheme, rest.slice(2), fail);
}

/** The object name inside the bucket (for file://, the path below the root folder). */
export function objectName(location: StorageLocation, key: string): string {
  return location.prefix === '' ? key : `${location.prefix}/${key}`;
}

export function objectUri(location: StorageLocation, key: string): string {
  if (location.provider === 'file') return pathToFileURL(path.join(location.bucket, key)).href;
  return `${location.uri}/${key}`;
}

function parseFileUri(rest: string, fail: (reason: string) => never): StorageLocation {
  if (!rest.startsWith('/')) {
    fail('a file URI needs an absolute path and no host, e.g. file:///data/checkpoints (three slashes)');
  }
  // Checked before decoding: the URL parser would silently resolve "..", including "%2e%2e".
  const dots = rest.split('/').map((segment) => segment.replace(/%2e/gi, '.'));
  if (dots.includes('..') || dots.includes('.')) fail('its path has a "." or ".." segment');
  let decoded: string;
  try {
    decoded = fileURLToPath(`file://${rest}`);
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
  const root = path.normalize(decoded).replace(/(.)\/+$/, '$1');
  return { provider: 'file', bucket: root, prefix: '', uri: pathToFileURL(root).href };
}

function parseBucketUri(
  provider: StorageProvider,
  scheme: string,
  rest: string,
  fail: (reason: string) => never,
): StorageLocation {
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const word = provider === 'azure' ? 'container' : 'bucket';
  if (bucket.includes('@') || bucket.includes(':')) {
    fail(
      `credentials and ports do not belong in the URI (they come from the environment); expected ${scheme}://${word}/prefix`,
    );
  }
  if (bucket === '') fail(`the ${word} name is missing`);
  const bucketProblem = bucketNameProblem(provider, bucket);
  if (bucketProblem) fail(bucketProblem);
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  if (prefix !== '') {
    const problem = keyProblem(prefix, 'location');
    if (problem) fail(`its prefix ${JSON.stringify(prefix)} is not usable: ${problem.reason}`);
  }
  return { provider, bucket, prefix, uri: `${scheme}://${bucket}${prefix === '' ? '' : `/${prefix}`}` };
}

// Loose checks that catch typos and URL-shaped input; the provider has the final word.
function bucketNameProblem(provider: StorageProvider, name: string): string | undefined {
  const shown = JSON.stringify(name);
  if (provider === 'azure') {
    if (name.length < 3 || name.length > 63 || !/^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(name) || name.includes('--')) {
      return `${shown} is not a valid Azure container name: use 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit`;
    }
    return undefined;
  }
  const [label, max, chars] =
    provider === 's3' ? ['S3', 63, 'dots and hyphens'] : ['GCS', 222, 'dots, hyphens and underscores'];
  const pattern = provider === 's3' ? /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/ : /^[a-z0-9][a-z0-9._-]*[a-z0-9]$/;
  if (name.length < 3 || name.length > max || !pattern.test(name) || name.includes('..')) {
    return `${shown} is not a valid ${label} bucket name: use 3 to ${max} lowercase letters, digits, ${chars}, starting and ending with a letter or digit`;
  }
  return undefined;
}
