// Which processes are alive, read from /proc. Dead children re-parented to PID 1 are never reaped
// in some sandboxes: those zombies are not leaks, so states are read rather than asking
// kill(pid, 0), which counts them as alive.
import fs from 'node:fs';

export function procStat(pid: number): { state: string; pgid: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, , pgid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state as string, pgid: Number(pgid) };
  } catch {
    return undefined; // gone (or gone while reading)
  }
}

export function liveProcess(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && !'ZX'.includes(stat.state);
}

/** Live (not zombie) processes of a process group. */
export function liveInGroup(pgid: number): number[] {
  const live: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat && stat.pgid === pgid && !'ZX'.includes(stat.state)) live.push(Number(entry));
  }
  return live;
}
