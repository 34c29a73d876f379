import { describe, expect, test } from 'vitest';
import { InvalidStorageUriError } from '../src/errors.ts';
import { objectName, objectUri, parseStorageUri } from '../src/uri.ts';

describe('storage URIs', () => {
  test.each([
    [
      'file:///data/checkpoints',
      { provider: 'file', bucket: '/data/checkpoints', prefix: '', uri: 'file:///data/checkpoints' },
    ],
    [
      'file:///data/checkpoints//',
      { provider: 'file', bucket: '/data/checkpoints', prefix: '', uri: 'file:///data/checkpoints' },
    ],
    [
      'file:///data/my%20runs',
      { provider: 'file', bucket: '/data/my runs', prefix: '', uri: 'file:///data/my%20runs' },
    ],
    ['s3://bucket', { provider: 's3', bucket: 'bucket', prefix: '', uri: 's3://bucket' }],
    ['s3://my.bucket-1/runs/', { provider: 's3', bucket: 'my.bucket-1', prefix: 'runs', uri: 's3://my.bucket-1/runs' }],
    ['S3://bucket/a/b///', { provider: 's3', bucket: 'bucket', prefix: 'a/b', uri: 's3://bucket/a/b' }],
    [
      'gs://my_bucket/runs/2024',
      { provider: 'gcs', bucket: 'my_bucket', prefix: 'runs/2024', uri: 'gs://my_bucket/runs/2024' },
    ],
    ['az://container/runs', { provider: 'azure', bucket: 'container', prefix: 'runs', uri: 'az://container/runs' }],
  ])('%s parses', (uri, expected) => {
    expect(parseStorageUri(uri)).toEqual(expected);
  });

  test('object names and URIs join the prefix and the key', () => {
    const s3 = parseStorageUri('s3://bkt/runs');
    expect(objectName(s3, 'job1/step-10.pt')).toBe('runs/job1/step-10.pt');
    expect(objectUri(s3, 'job1/step-10.pt')).toBe('s3://bkt/runs/job1/step-10.pt');
    expect(objectName(parseStorageUri('gs://bkt'), 'x')).toBe('x');
    expect(objectUri(parseStorageUri('file:///data/c'), 'a b/x.pt')).toBe('file:///data/c/a%20b/x.pt');
  });

  test.each([
    ['', /it is empty/],
    ['/data/checkpoints', /it has no scheme/],
    ['ftp://host/x', /unknown scheme "ftp:"/],
    ['gcs://bucket/x', /unknown scheme "gcs:" \(Google Cloud Storage URIs start with gs:\/\/\)/],
    ['https://bucket.s3.amazonaws.com/x', /unknown scheme "https:".*AWS_ENDPOINT_URL_S3/],
    ['file://relative/path', /absolute path and no host.*file:\/\/\/data\/checkpoints/],
    ['file:relative', /expected "file:\/\/" at the start/],
    ['file:///data/../etc', /"\." or "\.\." segment/],
    ['file:///data/%2E%2E/etc', /"\." or "\.\." segment/],
    ['s3://', /the bucket name is missing/],
    ['s3:///prefix', /the bucket name is missing/],
    ['s3://My_Bucket/x', /"My_Bucket" is not a valid S3 bucket name: use 3 to 63 lowercase letters/],
    ['s3://ab', /"ab" is not a valid S3 bucket name/],
    ['gs://-bucket', /"-bucket" is not a valid GCS bucket name/],
    ['az://my_container', /"my_container" is not a valid Azure container name/],
    ['az://a--b', /not a valid Azure container name/],
    ['s3://bucket/a//b', /its prefix "a\/\/b" is not usable: it has an empty segment/],
    ['s3://bucket/a/../b', /its prefix "a\/..\/b" is not usable: it has a "\.\." segment/],
    ['s3://bucket/a?versionId=1', /query strings and fragments/],
    ['s3://bucket/a\u0001b', /control character/],
    ['s3://host:9000/bucket', /credentials and ports do not belong in the URI/],
  ])('%j is rejected', (uri, reason) => {
    const error = catchError(() => parseStorageUri(uri));
    expect(error).toBeInstanceOf(InvalidStorageUriError);
    expect(error.name).toBe('InvalidStorageUriError');
    expect(error.message).toMatch(reason);
    expect(error.message).toContain(
      'Expected one of: file:///absolute/folder, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix',
    );
  });

  test('credentials in a URI are not echoed back', () => {
    const error = catchError(() => parseStorageUri('s3://AKIAEXAMPLE:s3cr3t@bucket/x'));
    expect(error.message).toMatch(/credentials and ports do not belong in the URI/);
    expect(error.message).not.toContain('s3cr3t');
    expect(error.message).not.toContain('AKIAEXAMPLE');
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}
