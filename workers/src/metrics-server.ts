// A worker's HTTP endpoint (KEEL_METRICS_PORT): GET /metrics, keel's registry followed by the
// Temporal SDK's own metrics, and GET /healthz. Temporal's Core SDK exports Prometheus only from an
// HTTP server of its own (it has no way to hand its metrics to prom-client but an experimental
// buffer of raw updates), so the worker has Core serve on a loopback port nobody else is told
// about and appends what it answers: one endpoint to scrape, and the two sets of names never
// overlap (`keel_*` and Node's `process_*`/`nodejs_*` here, `temporal_*` there).
import http from 'node:http';
import net from 'node:net';
import type { Registry } from 'prom-client';

export interface Health {
  ok: boolean;
  /** Why not ok. */
  reason?: string;
  [detail: string]: unknown;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Core's Prometheus endpoint (`http://127.0.0.1:<port>/metrics`), if the runtime exports one. */
  temporalMetricsUrl?: string | undefined;
  health(): Promise<Health>;
}

export interface MetricsServer {
  /** `http://host:port/metrics`, with the port the system picked when asked for 0. */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://worker');
    const answer = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'text/plain', 'GET only\n');
    if (pathname === '/metrics') {
      metricsText(options).then(
        (text) => answer(200, options.registry.contentType, text),
        (err: Error) => answer(500, 'text/plain', `${err.message}\n`),
      );
    } else if (pathname === '/healthz') {
      options.health().then(
        (health) => answer(health.ok ? 200 : 503, 'application/json', `${JSON.stringify(health)}\n`),
        (err: Error) => answer(503, 'application/json', `${JSON.stringify({ ok: false, reason: err.message })}\n`),
      );
    } else {
      answer(404, 'text/plain', 'not found: try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;
  const host = net.isIPv6(options.host) ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // scrapers keep connections alive
      }),
  };
}

async function metricsText(options: MetricsServerOptions): Promise<string> {
  const [own, temporal] = await Promise.all([options.registry.metrics(), temporalMetrics(options.temporalMetricsUrl)]);
  return `${own}${own.endsWith('\n') ? '' : '\n'}${temporal}`;
}

async function temporalMetrics(url: string | undefined): Promise<string> {
  if (!url) return '# Temporal SDK metrics: not exported by this process (see configureRuntime)\n';
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    const text = await response.text();
    return text.endsWith('\n') || text === '' ? text : `${text}\n`;
  } catch (err) {
    return `# Temporal SDK metrics unavailable: ${(err as Error).message.replace(/\s+/g, ' ')}\n`;
  }
}

/** A loopback address with a port free right now, for Core's Prometheus server (it can not report
 *  the port it bound when given 0). */
export async function freeLoopbackAddress(): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `127.0.0.1:${port}`;
}
