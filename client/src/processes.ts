// Long-running helper processes (Temporal dev server, test servers): spawned in their own process
// group with output in a log file, awaited until they answer, and stopped group-wide, so nothing
// they fork outlives them.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves when the process exits. */
  exited: Promise<unknown>;
}

export interface SpawnOptions {
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export function spawnManaged(name: string, bin: string, args: string[], options: SpawnOptions): ManagedProcess {
  const out = fs.openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    // detached: its own process group, so a terminal's Ctrl-C reaches only the parent, which then
    // stops children in order, and a group-wide signal also reaches whatever the child forks.
    child = spawn(bin, args, {
      detached: true,
      stdio: ['ignore', out, out],
      env: options.env ?? process.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
    });
  } finally {
    fs.closeSync(out);
  }
  if (child.pid === undefined) throw new Error(`${name}: could not start ${bin}`);
  const exited = once(child, 'exit');
  exited.catch(() => {}); // 'error' before 'exit' (e.g. ENOENT) is reported by waitUntilReady
  return { name, child, pid: child.pid, logFile: options.logFile, exited };
}

/** Polls `ready` until it answers true; fails fast, with the log's tail, if the process exits. */
export async function waitUntilReady(
  proc: ManagedProcess,
  ready: () => Promise<boolean>,
  timeoutMs = 90_000,
): Promise<void> {
  let ended: string | undefined;
  proc.exited.then(
    () => {
      ended = `exited (code ${proc.child.exitCode}, signal ${proc.child.signalCode})`;
    },
    (err: unknown) => {
      ended = `failed to start (${String(err)})`;
    },
  );
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (ended) throw new Error(`${proc.name} ${ended} during start-up. Its log ends:\n${tailFile(proc.logFile)}`);
    if (await ready()) return;
    await sleep(200);
  }
  throw new Error(`${proc.name} did not answer within ${timeoutMs / 1000}s. Its log ends:\n${tailFile(proc.logFile)}`);
}

/** SIGTERM (or `signal`) to the whole group, SIGKILL after `graceMs`, then waits for the exit. */
export async function stopManaged(proc: ManagedProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000) {
  const running = proc.child.exitCode === null && proc.child.signalCode === null;
  if (running) {
    signalGroup(proc.pid, signal);
    const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs);
    await proc.exited.catch(() => {});
    clearTimeout(timer);
  }
  // The leader may exit before processes it forked: make sure none of the group survives it.
  if (groupAlive(proc.pid)) {
    signalGroup(proc.pid, 'SIGKILL');
    for (let i = 0; i < 50 && groupAlive(proc.pid); i++) await sleep(100);
  }
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

/** True while any process of the group led by `pid` is alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1_000 });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** The last lines of a log; a Go panic's first line (its reason) is kept even when the stack
 *  trace after it is longer than the tail. */
export function tailFile(file: string, lines = 20): string {
  try {
    const all = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    const tail = all.slice(-lines);
    const panic = all.find((line) => line.startsWith('panic:'));
    return panic && !tail.includes(panic) ? [panic, '…', ...tail].join('\n') : tail.join('\n');
  } catch {
    return '(no log)';
  }
}
