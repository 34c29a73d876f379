// Where the API listens and how it authenticates, from the environment. Without a token the API
// refuses to listen on anything but loopback: an open port that starts GPU jobs is not a default.
export interface ApiConfig {
  hostname: string;
  port: number;
  token: string | undefined;
}

export class ApiConfigError extends Error {
  override name = 'ApiConfigError';
}

const loopback = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function loadApiConfig(env: Record<string, string | undefined>): ApiConfig {
  const hostname = env.KEEL_API_HOST || '127.0.0.1';
  const port = Number(env.KEEL_API_PORT ?? 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ApiConfigError(`KEEL_API_PORT must be a port number (0-65535), got '${env.KEEL_API_PORT}'`);
  }
  const token = env.KEEL_API_TOKEN || undefined;
  if (token !== undefined && token.length < 16) {
    throw new ApiConfigError(
      'KEEL_API_TOKEN is too short: use at least 16 random characters (e.g. `openssl rand -hex 32`)',
    );
  }
  if (!token && !loopback.has(hostname)) {
    throw new ApiConfigError(
      `refusing to serve on ${hostname} without a token: set KEEL_API_TOKEN, or bind to 127.0.0.1 (KEEL_API_HOST)`,
    );
  }
  return { hostname, port, token };
}
