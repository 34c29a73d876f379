// Keys are checked before anything touches a disk or a network, with the same rules on every
// backend, so a key that works on file:// works on S3/GCS/Azure and cannot escape the storage
// prefix (or the root folder) whatever the backend does with it.
import { InvalidKeyError, type StorageErrorFields } from './errors.ts';

export const maxKeyBytes = 1024;

/** The file backend keeps `<key>.sha256` beside each object (sha256sum format). */
export const sidecarSuffix = '.sha256';

/** Downloads and file-backend uploads go to `.<name>.keel-partial-<random>` before the rename. */
export const partialMarker = '.keel-partial-';

export interface KeyProblem {
  reason: string;
  fix: string;
}

/**
 * The first rule `key` breaks, or undefined. A list `prefix` may also be empty or end with `/`; a
 * URI's `location` prefix follows the path rules only (the reserved names concern objects).
 */
export function keyProblem(key: unknown, kind: 'key' | 'prefix' | 'location' = 'key'): KeyProblem | undefined {
  if (typeof key !== 'string') {
    return { reason: `it is ${key === null ? 'null' : typeof key}, not a string`, fix: 'pass a string' };
  }
  if (key === '') {
    if (kind === 'prefix') return undefined;
    return { reason: 'it is empty', fix: 'name the object, e.g. "job1/step-10.pt"' };
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > maxKeyBytes) {
    return { reason: `it is ${bytes} UTF-8 bytes long; the limit is ${maxKeyBytes}`, fix: 'use a shorter key' };
  }
  const control = controlCharacterIndex(key);
  if (control !== -1) {
    const code = `U+${key.charCodeAt(control).toString(16).toUpperCase().padStart(4, '0')}`;
    return {
      reason: `it contains the control character ${code} at index ${control}`,
      fix: 'remove control characters (U+0000 to U+001F and U+007F) from the key',
    };
  }
  if (/\p{Cs}/u.test(key)) {
    return { reason: 'it contains an unpaired UTF-16 surrogate, which has no UTF-8 form', fix: 'pass valid Unicode' };
  }
  if (key.includes('\\')) {
    return { reason: 'it contains "\\"; keys separate segments with "/"', fix: 'replace "\\" with "/"' };
  }
  if (key.startsWith('/')) {
    return {
      reason: 'it is absolute (starts with "/"); keys are relative to the storage URI',
      fix: 'drop the leading "/"',
    };
  }
  const segments = key.split('/');
  const last = segments.length - 1;
  for (const [i, segment] of segments.entries()) {
    if (segment === '' && i === last) {
      if (kind === 'prefix') continue;
      return {
        reason: 'it ends with "/"; a key names an object, not a folder',
        fix: 'drop the trailing "/" (to list a folder, pass it to list as a prefix)',
      };
    }
    if (segment === '') {
      return { reason: 'it has an empty segment ("//")', fix: 'use a single "/" between segments' };
    }
    if (segment === '..') {
      return {
        reason: 'it has a ".." segment, which would step outside the storage prefix',
        fix: 'name the object by its path below the storage URI, without ".."',
      };
    }
    if (segment === '.') return { reason: 'it has a "." segment', fix: 'remove the "." segment' };
    if (kind !== 'location' && segment.includes(partialMarker)) {
      return {
        reason: `its segment ${JSON.stringify(segment)} contains "${partialMarker}", reserved for keel's temporary files`,
        fix: 'choose another name',
      };
    }
  }
  if (kind !== 'location' && key.endsWith(sidecarSuffix)) {
    return {
      reason: `it ends in "${sidecarSuffix}", reserved for the checksum files the file backend keeps beside objects`,
      fix: `choose another suffix (e.g. "${key.slice(0, -sidecarSuffix.length)}.sha256sum")`,
    };
  }
  return undefined;
}

/** Throws InvalidKeyError (naming the key, the rule and the fix) unless `key` is valid. */
export function assertValidKey(key: unknown, where: StorageErrorFields, kind: 'key' | 'prefix' = 'key'): string {
  const problem = keyProblem(key, kind);
  if (problem) throw new InvalidKeyError(where, String(key), problem.reason, problem.fix);
  return key as string;
}

export function controlCharacterIndex(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 0x1f || code === 0x7f) return i;
  }
  return -1;
}
