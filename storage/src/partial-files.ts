// Local files are written under a temporary name in the destination folder, fsynced and renamed
// into place, so a reader never sees half a file and a crash leaves only a `.keel-partial-` file.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { partialMarker } from './keys.ts';

const partialPattern = new RegExp(`^\\..*${partialMarker.replaceAll('.', '\\.')}[0-9a-f]{16}$`);

/** `<dir>/.<name>.keel-partial-<random>`, beside `target` so the final rename stays on one filesystem. */
export function partialPath(target: string): string {
  // Long names are shortened so the temporary name stays under the usual 255-byte limit.
  const name = Array.from(path.basename(target)).slice(0, 80).join('');
  return path.join(path.dirname(target), `.${name}${partialMarker}${randomBytes(8).toString('hex')}`);
}

/** Whether `name` (a file name in target's folder) is a partial of `target`, left by any writer. */
export function isPartialOf(target: string, name: string): boolean {
  const prefix = `.${Array.from(path.basename(target)).slice(0, 80).join('')}${partialMarker}`;
  return name.startsWith(prefix) && isPartialName(name);
}

export function isPartialName(name: string): boolean {
  return partialPattern.test(name);
}

/** Makes a rename in `dir` durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
