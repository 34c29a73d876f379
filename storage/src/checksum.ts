// sha256 is keel's end-to-end integrity check: computed while streaming (never holding a file in
// memory), stored with the object, verified on every get.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { InvalidChecksumError, type StorageErrorFields } from './errors.ts';

/** Large reads: fewer syscalls and fewer chunks for the SDKs to stitch into parts. */
export const readChunkBytes = 1024 * 1024;

/** The lowercase form of a caller's sha256, or InvalidChecksumError naming the value. */
export function normalizeSha256(value: unknown, where: StorageErrorFields): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) throw new InvalidChecksumError(where, value);
  return value.toLowerCase();
}

/** A stored sha256 metadata value, or undefined when it is absent or not a digest. */
export function storedSha256(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9a-fA-F]{64}$/.test(value) ? value.toLowerCase() : undefined;
}

export async function sha256File(filePath: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath, { highWaterMark: readChunkBytes, signal })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** A pipeline stage that passes bytes through, feeding `hash` and reporting the running byte count. */
export function observeBytes(hash: Hash | undefined, onBytes: (total: number) => void) {
  return async function* (source: AsyncIterable<Buffer>) {
    let total = 0;
    for await (const chunk of source) {
      hash?.update(chunk);
      total += chunk.byteLength;
      onBytes(total);
      yield chunk;
    }
  };
}

/**
 * A pipeline stage that gathers the small chunks network streams deliver (16-64 KiB) into writes
 * of at least `minBytes`: one 4 MiB write costs far less than a hundred small ones through the
 * file system's thread pool (about a quarter of a download's time on the benchmark machine).
 */
export function coalesceChunks(minBytes: number) {
  return async function* (source: AsyncIterable<Buffer>) {
    let pending: Buffer[] = [];
    let size = 0;
    for await (const chunk of source) {
      pending.push(chunk);
      size += chunk.byteLength;
      if (size >= minBytes) {
        yield Buffer.concat(pending, size);
        pending = [];
        size = 0;
      }
    }
    if (size > 0) yield Buffer.concat(pending, size);
  };
}
