// Network namespaces for fleet tests: each "host" is a namespace of its own (ip netns), wired by a
// veth pair to a bridge in the root namespace, on a private /24 that no other interface of this
// machine uses. The root side (the bridge's address) is where the hosts find the test's servers:
// the harness's servers listen on 127.0.0.1 only, so forwardTcp exposes each one on the bridge
// address. cut() takes a host's veth down: from then on its packets go nowhere (no reset, no
// error, as when a pod loses its network), until heal().
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** Why namespaces cannot be made here (not root, no `ip`, a kernel or sandbox that refuses
 *  them), or undefined when they can: tried once, with a namespace created and deleted. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (ip netns add, veth pairs, a bridge)';
  const probe = `keel-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (added.error) return `'ip' (iproute2) cannot be run: ${added.error.message}`;
  if (added.status !== 0) return `'ip netns add' fails here: ${added.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

export interface NetnsHost {
  /** 1-based, in creation order. */
  index: number;
  /** The namespace's name (ip netns). */
  netns: string;
  /** The host's address on the bridge's subnet. */
  address: string;
  /** The root side of its veth pair: the link cut() takes down. */
  veth: string;
  /** Whether cut() took its link down (and heal() has not brought it back). */
  readonly isCut: boolean;
  /** Takes the host's link down: every packet to or from it is dropped from now on. */
  cut(): void;
  /** Brings the link back up. */
  heal(): void;
  /** Starts `command` inside the namespace (`ip netns exec` execs it: the pid is the command's). */
  spawn(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): ChildProcess;
  /** Every process in the namespace (ip netns pids): what the host still runs. */
  pids(): number[];
}

export interface NetnsNetwork {
  /** The bridge's address: the root namespace as the hosts see it. */
  gateway: string;
  bridge: string;
  hosts: NetnsHost[];
  /** SIGKILLs whatever still runs in the namespaces (all started by the test), then deletes the
   *  namespaces, the veth pairs and the bridge. Safe to call twice. */
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe', encoding: 'utf8' });

/** A /24 under 10.77.0.0/16 that no interface of this machine has an address in. */
function freeSubnet(): string {
  const used = ip('-4', '-o', 'addr', 'show');
  for (let tries = 0; tries < 256; tries++) {
    const third = (randomBytes(1)[0] as number) % 256;
    if (!used.includes(` 10.77.${third}.`)) return `10.77.${third}`;
  }
  throw new Error('every 10.77.x.0/24 is in use on this machine; delete stale test bridges (ip link show type bridge)');
}

/**
 * Creates `count` namespaces, each with one veth pair to a new bridge, addresses on a free /24
 * (.1 the bridge, .2, .3, … the hosts) and loopback up. Names carry a random tag, so runs never
 * share one. If any step fails, what was made so far is removed before the error is thrown.
 */
export function createNetwork(count: number, label = 'keel'): NetnsNetwork {
  const tag = randomBytes(3).toString('hex');
  const subnet = freeSubnet();
  const gateway = `${subnet}.1`;
  const bridge = `kbr${tag}`; // interface names: 15 characters at most
  const hosts: NetnsHost[] = [];
  const made = { bridge: false, netns: [] as string[] };
  const destroy = () => {
    for (const netns of made.netns) {
      for (const pid of namespacePids(netns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {} // gone meanwhile
      }
      spawnSync('ip', ['netns', 'del', netns]); // its end of the veth goes, and the pair with it
    }
    made.netns = [];
    if (made.bridge) spawnSync('ip', ['link', 'del', bridge]);
    made.bridge = false;
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    made.bridge = true;
    ip('addr', 'add', `${gateway}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (let index = 1; index <= count; index++) {
      const netns = `${label}-${tag}-${index}`;
      const veth = `kv${tag}h${index}`;
      const address = `${subnet}.${index + 1}`;
      ip('netns', 'add', netns);
      made.netns.push(netns);
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      ip('link', 'set', veth, 'master', bridge);
      ip('link', 'set', veth, 'up');
      ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      let isCut = false;
      hosts.push({
        index,
        netns,
        address,
        veth,
        get isCut() {
          return isCut;
        },
        cut() {
          ip('link', 'set', veth, 'down');
          isCut = true;
        },
        heal() {
          ip('link', 'set', veth, 'up');
          isCut = false;
        },
        spawn(command, args, options) {
          return spawn('ip', ['netns', 'exec', netns, command, ...args], {
            env: options.env,
            cwd: options.cwd,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
        },
        pids: () => namespacePids(netns),
      });
    }
  } catch (err) {
    destroy();
    const stderr = (err as { stderr?: string }).stderr;
    throw new Error(`could not create the test network: ${stderr?.trim() || (err as Error).message}`);
  }
  // A test process that exits without running its afterAll (an uncaught error) still removes them.
  process.once('exit', destroy);
  return {
    gateway,
    bridge,
    hosts,
    destroy() {
      process.removeListener('exit', destroy);
      destroy();
    },
  };
}

function namespacePids(netns: string): number[] {
  const listed = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' });
  return (listed.stdout ?? '')
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((pid) => pid > 0);
}

export interface TcpForward {
  /** host:port the hosts connect to. */
  address: string;
  host: string;
  port: number;
  /**
   * Stops relaying for connections from `source` (a host's address): those open are frozen, new
   * ones are accepted and never answered. The host sees a server that went silent, as when a big
   * upload is in flight the moment its network degrades. resume() ends the silence.
   */
  stall(source: string): void;
  /** Drops the frozen connections (their clients see a reset and reconnect) and relays again. */
  resume(source: string): void;
  close(): Promise<void>;
}

/**
 * Listens on `host` (e.g. the bridge's address) on a free port and relays each connection to
 * `target` (host:port), both ways, byte for byte: clients in the namespaces reach a server that
 * listens on loopback only, and the server sees an ordinary client.
 */
export async function forwardTcp(host: string, target: string): Promise<TcpForward> {
  const [targetHost, targetPort] = splitAddress(target);
  const stalled = new Set<string>();
  const open = new Set<{ source: string; client: net.Socket; upstream?: net.Socket; frozen: boolean }>();
  const freeze = (c: { client: net.Socket; upstream?: net.Socket; frozen: boolean }) => {
    c.frozen = true;
    if (c.upstream) {
      c.client.unpipe(c.upstream);
      c.upstream.unpipe(c.client);
      c.upstream.pause();
    }
    c.client.pause();
  };
  const server = net.createServer((client) => {
    const source = client.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    const conn: { source: string; client: net.Socket; upstream?: net.Socket; frozen: boolean } = {
      source,
      client,
      frozen: false,
    };
    open.add(conn);
    const drop = () => {
      open.delete(conn);
      client.destroy();
      conn.upstream?.destroy();
    };
    client.on('error', drop).on('close', drop);
    if (stalled.has(source)) {
      freeze(conn);
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    conn.upstream = upstream;
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `${host}:${port}`,
    host,
    port,
    stall(source) {
      stalled.add(source);
      for (const c of open) if (c.source === source) freeze(c);
    },
    resume(source) {
      stalled.delete(source);
      for (const c of [...open]) {
        if (c.source !== source || !c.frozen) continue;
        open.delete(c);
        c.client.destroy();
        c.upstream?.destroy();
      }
    },
    async close() {
      for (const c of open) {
        c.client.destroy();
        c.upstream?.destroy();
      }
      open.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port)) throw new Error(`'${address}' is not host:port`);
  return [address.slice(0, at), port];
}

/** host:port of an http(s):// or postgres:// URL, e.g. a harness endpoint. */
export function addressOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port}`;
}
