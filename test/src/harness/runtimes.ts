// The JavaScript runtimes keel's clients run on, as argv prefixes: Node (this process's), and Bun
// and Deno from the npm registry (root devDependencies, installed by the bootstrap).
import path from 'node:path';

// The runtimes' own binaries, not node_modules/.bin's launchers (deno's runs the binary as a
// child of a node process): a signal sent to the process the test started reaches the runtime.
export const runtimes: Record<'node' | 'bun' | 'deno', string[]> = {
  node: [process.execPath],
  bun: [path.resolve('node_modules/bun/bin/bun.exe')],
  deno: [path.resolve('node_modules/deno/deno'), 'run', '--allow-all'],
};

export type Runtime = keyof typeof runtimes;
export const runtimeNames = Object.keys(runtimes) as Runtime[];
