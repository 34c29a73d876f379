// file:///root: objects are files below the root folder, each with a `<name>.sha256` sidecar in
// sha256sum format (so `sha256sum -c` works by hand). The root must exist, as a bucket must: a
// typo in the path fails instead of quietly creating a new tree.
import { createReadStream, createWriteStream, type Dirent, type Stats } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { observeBytes, readChunkBytes, storedSha256 } from '../checksum.ts';
import { sidecarSuffix } from '../keys.ts';
import { fsyncDirectory, isPartialName, isPartialOf, partialPath } from '../partial-files.ts';
import type { Backend, BackendDownload, BackendObject, UploadRequest } from './backend.ts';

export function createFileBackend(root: string): Backend {
  return new FileBackend(root);
}

class FileBackend implements Backend {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  async head(name: string): Promise<BackendObject | undefined> {
    await this.#requireRoot();
    return this.#describe(name);
  }

  async upload(name: string, filePath: string, request: UploadRequest): Promise<{ modified: Date | undefined }> {
    await this.#requireRoot();
    const target = this.#path(name);
    const dir = path.dirname(target);
    await mkdir(dir, { recursive: true });
    const partial = partialPath(target);
    try {
      await pipeline(
        createReadStream(filePath, { highWaterMark: readChunkBytes }),
        observeBytes(undefined, request.onProgress),
        createWriteStream(partial, { flags: 'wx', flush: true }),
        { signal: request.signal },
      );
      // Sidecar out first: if we stop half-way the object reads as unverifiable (and the next put
      // uploads again) rather than as old bytes under a new checksum, or the reverse.
      await rm(target + sidecarSuffix, { force: true });
      await rename(partial, target);
      await writeAtomically(target + sidecarSuffix, `${request.sha256}  ${path.basename(target)}\n`);
      await fsyncDirectory(dir);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    await this.#removePartials(target); // those of writers killed mid-way: the object is whole now
    return { modified: (await stat(target)).mtime };
  }

  async download(name: string): Promise<BackendDownload | undefined> {
    await this.#requireRoot();
    const found = await this.#describe(name);
    if (found === undefined) return undefined;
    return { ...found, body: createReadStream(this.#path(name), { highWaterMark: readChunkBytes }) };
  }

  async *list(prefix: string): AsyncGenerator<BackendObject> {
    await this.#requireRoot();
    const slash = prefix.lastIndexOf('/');
    yield* this.#walk(prefix.slice(0, Math.max(slash, 0)), prefix.slice(slash + 1));
  }

  async delete(name: string): Promise<void> {
    await this.#requireRoot();
    await rm(this.#path(name), { force: true });
    await rm(this.#path(name) + sidecarSuffix, { force: true });
    await this.#removePartials(this.#path(name));
  }

  /** Partial files of `target` left by writers that were killed before their rename. */
  async #removePartials(target: string): Promise<void> {
    const names = await readdir(path.dirname(target)).catch(() => [] as string[]);
    for (const name of names) {
      if (isPartialOf(target, name)) await rm(path.join(path.dirname(target), name), { force: true });
    }
  }

  async close(): Promise<void> {}

  /**
   * Files below `dir` whose name starts with `namePrefix`, in byte order of their full names: a
   * folder sorts as its name plus "/", which is where its files fall among its siblings.
   */
  async *#walk(dir: string, namePrefix: string): AsyncGenerator<BackendObject> {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(this.#root, dir), { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    const candidates = entries
      .filter((e) => e.name.startsWith(namePrefix) && !e.name.endsWith(sidecarSuffix) && !isPartialName(e.name))
      .filter((e) => e.isFile() || e.isDirectory())
      .map((e) => ({ entry: e, order: Buffer.from(e.isDirectory() ? `${e.name}/` : e.name) }))
      .sort((a, b) => Buffer.compare(a.order, b.order));
    for (const { entry } of candidates) {
      const name = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        yield* this.#walk(name, '');
      } else {
        const found = await this.#describe(name);
        if (found) yield found;
      }
    }
  }

  async #describe(name: string): Promise<BackendObject | undefined> {
    const file = this.#path(name);
    let info: Stats;
    try {
      info = await stat(file);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (!info.isFile()) return undefined;
    return { name, bytes: info.size, sha256: await readSidecar(file + sidecarSuffix), modified: info.mtime };
  }

  #path(name: string): string {
    return path.join(this.#root, ...name.split('/'));
  }

  async #requireRoot(): Promise<void> {
    let info: Stats;
    try {
      info = await stat(this.#root);
    } catch (error) {
      if (!isMissing(error)) throw error;
      throw new Error(`the root folder ${this.#root} does not exist. Fix: create it (mkdir -p) or correct the URI`);
    }
    if (!info.isDirectory()) throw new Error(`the root ${this.#root} is not a folder`);
  }
}

async function readSidecar(file: string): Promise<string | undefined> {
  try {
    return storedSha256((await readFile(file, 'utf8')).slice(0, 64));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function writeAtomically(target: string, content: string): Promise<void> {
  const partial = partialPath(target);
  try {
    await writeFile(partial, content, { flag: 'wx', flush: true });
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
