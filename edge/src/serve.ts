// Serving a fetch handler on whichever runtime runs us: Bun.serve, Deno.serve, or Node through
// @hono/node-server. Hono apps are plain `fetch(request) => response`, so this is all that
// differs between the three.
type Fetch = (request: Request) => Response | Promise<Response>;

export interface Served {
  runtime: 'node' | 'bun' | 'deno';
  port: number;
  close(): Promise<void>;
}

interface BunGlobal {
  serve(options: { fetch: Fetch; hostname: string; port: number; idleTimeout: number }): {
    port: number;
    stop(closeActive: boolean): Promise<void> | void;
  };
}
interface DenoGlobal {
  serve(
    options: { hostname: string; port: number; onListen: () => void },
    handler: Fetch,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

export async function serve(fetch: Fetch, address: { hostname: string; port: number }): Promise<Served> {
  const { Bun, Deno } = globalThis as { Bun?: BunGlobal; Deno?: DenoGlobal };
  if (Bun) {
    // idleTimeout 0: Bun would otherwise close an event stream that is quiet for 10 s.
    const server = Bun.serve({ fetch, ...address, idleTimeout: 0 });
    return { runtime: 'bun', port: server.port, close: async () => void (await server.stop(true)) };
  }
  if (Deno) {
    const server = Deno.serve({ ...address, onListen: () => {} }, fetch);
    return { runtime: 'deno', port: server.addr.port, close: () => server.shutdown() };
  }
  const { serve: serveNode } = await import('@hono/node-server');
  return new Promise((resolve) => {
    const server = serveNode({ fetch, ...address }, (info) => {
      resolve({
        runtime: 'node',
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
