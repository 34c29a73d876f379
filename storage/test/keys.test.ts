import { describe, expect, test } from 'vitest';
import { InvalidKeyError } from '../src/errors.ts';
import { assertValidKey, keyProblem } from '../src/keys.ts';

const where = { provider: 's3', bucket: 'b', key: undefined, operation: 'put', uri: 's3://b/runs' } as const;

describe('keys', () => {
  test.each(['step-10.pt', 'job1/step-10.pt', 'a/b/c/d.bin', '.hidden', '..x/y..', 'x.sha256sum', 'ü/空 白.pt'])(
    '%j is a valid key',
    (key) => {
      expect(keyProblem(key)).toBeUndefined();
    },
  );

  test('a key of exactly 1024 UTF-8 bytes is valid, one byte more is not', () => {
    expect(keyProblem('a'.repeat(1024))).toBeUndefined();
    expect(keyProblem('é'.repeat(512))).toBeUndefined();
    expect(keyProblem(`${'é'.repeat(512)}a`)?.reason).toBe('it is 1025 UTF-8 bytes long; the limit is 1024');
  });

  test.each([
    ['', /it is empty/, /name the object/],
    ['/abs/x', /it is absolute \(starts with "\/"\)/, /drop the leading "\/"/],
    ['a\\b', /it contains "\\"/, /replace "\\" with "\/"/],
    ['a//b', /empty segment \("\/\/"\)/, /single "\/"/],
    ['a/', /ends with "\/"/, /drop the trailing "\/"/],
    ['..', /"\.\." segment/, /without "\.\."/],
    ['../x', /"\.\." segment/, /without "\.\."/],
    ['a/../b', /"\.\." segment/, /without "\.\."/],
    ['./a', /"\." segment/, /remove the "\." segment/],
    ['a\u0001b', /control character U\+0001 at index 1/, /remove control characters/],
    ['a\u0000', /control character U\+0000/, /remove control characters/],
    ['a\nb', /control character U\+000A/, /remove control characters/],
    ['a\u007fb', /control character U\+007F/, /remove control characters/],
    ['x.sha256', /ends in "\.sha256", reserved/, /"x\.sha256sum"/],
    ['dir/.x.keel-partial-0123456789abcdef', /reserved for keel's temporary files/, /another name/],
    ['a\ud800b', /unpaired UTF-16 surrogate/, /valid Unicode/],
  ])('%j is rejected', (key, reason, fix) => {
    const problem = keyProblem(key);
    expect(problem?.reason).toMatch(reason);
    expect(problem?.fix).toMatch(fix);
  });

  test('InvalidKeyError names the key, the rule, the fix and where', () => {
    let error: unknown;
    try {
      assertValidKey('runs/../x', where);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidKeyError);
    const invalid = error as InvalidKeyError;
    expect(invalid.name).toBe('InvalidKeyError');
    expect(invalid.key).toBe('runs/../x');
    expect(invalid.provider).toBe('s3');
    expect(invalid.bucket).toBe('b');
    expect(invalid.message).toBe(
      's3 put s3://b/runs failed: invalid key "runs/../x": it has a ".." segment, which would step outside the ' +
        'storage prefix. Fix: name the object by its path below the storage URI, without "..".',
    );
  });

  test('control characters are shown escaped in messages', () => {
    expect(() => assertValidKey('a\u0001b', where)).toThrow('invalid key "a\\u0001b"');
  });

  test('list prefixes may be empty or end with "/", and follow the key rules otherwise', () => {
    for (const prefix of ['', 'job1/', 'job1/step-', 'a/b/']) expect(keyProblem(prefix, 'prefix')).toBeUndefined();
    expect(keyProblem('a//', 'prefix')?.reason).toMatch(/empty segment/);
    expect(keyProblem('/', 'prefix')?.reason).toMatch(/absolute/);
    expect(keyProblem('../', 'prefix')?.reason).toMatch(/"\.\." segment/);
    expect(() => assertValidKey('../', { ...where, operation: 'list' }, 'prefix')).toThrow(
      /invalid list prefix "\.\.\/"/,
    );
  });
});
