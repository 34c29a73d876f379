import { describe, expect, test } from 'vitest';
import { normalizeSha256 } from '../src/checksum.ts';
import { InvalidChecksumError } from '../src/errors.ts';
import { openStorage } from '../src/index.ts';

const where = { provider: 'gcs', bucket: 'b', key: 'k', operation: 'put', uri: 'gs://b/k' } as const;
const digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('the sha256 option', () => {
  test('a 64-character hex digest is accepted and lowercased', () => {
    expect(normalizeSha256(digest, where)).toBe(digest);
    expect(normalizeSha256(digest.toUpperCase(), where)).toBe(digest);
  });

  test.each([
    ['too short', digest.slice(1)],
    ['too long', `${digest}0`],
    ['not hex', `${digest.slice(0, 63)}g`],
    ['base64', '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='],
    ['with a prefix', `sha256:${digest}`],
    ['empty', ''],
  ])('%s is rejected with InvalidChecksumError naming the value', (_, value) => {
    expect(() => normalizeSha256(value, where)).toThrow(InvalidChecksumError);
    expect(() => normalizeSha256(value, where)).toThrow(`the sha256 option ${JSON.stringify(value)} is not a sha256`);
  });

  test('put rejects a bad sha256 before touching the file or the bucket', async () => {
    const storage = openStorage('file:///nonexistent-root-for-keel-test');
    const put = storage.put('k', '/nonexistent-file', { sha256: 'abc' });
    await expect(put).rejects.toBeInstanceOf(InvalidChecksumError);
    await expect(put).rejects.toMatchObject({
      name: 'InvalidChecksumError',
      message: expect.stringContaining('expected 64 hexadecimal characters'),
    });
  });
});
