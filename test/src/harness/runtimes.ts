// The JavaScript runtimes keel's clients run on, as argv prefixes: Node (this process's), and Bun
// and Deno from the npm registry (root devDependencies, installed by the bootstrap).
import path from 'node:path';

const bin = (name: string) => path.resolve('node_modules/.bin', name);

export const runtimes: Record<'node' | 'bun' | 'deno', string[]> = {
  node: [process.execPath],
  bun: [bin('bun')],
  deno: [bin('deno'), 'run', '--allow-all'],
};

export type Runtime = keyof typeof runtimes;
export const runtimeNames = Object.keys(runtimes) as Runtime[];
