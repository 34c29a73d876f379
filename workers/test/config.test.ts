import { describe, expect, test } from 'vitest';
import { loadTemporalConfig, loadWorkerConfig } from '../src/config.ts';

// No config file: only the variables given here count.
const base = { TEMPORAL_CONFIG_FILE: '/nonexistent/keel-test.toml' };

describe('worker configuration from the environment', () => {
  test('defaults to a local dev server, the default namespace and the keel task queue', () => {
    const config = loadWorkerConfig(base);
    expect(config.temporal.connectionOptions.address).toBe('localhost:7233');
    expect(config.temporal.namespace).toBe('default');
    expect(config.taskQueue).toBe('keel');
  });

  test("reads Temporal's standard variables and KEEL_TASK_QUEUE", () => {
    const config = loadWorkerConfig({
      ...base,
      TEMPORAL_ADDRESS: 'temporal.example.internal:7233',
      TEMPORAL_NAMESPACE: 'research',
      TEMPORAL_API_KEY: 'not-a-real-key',
      KEEL_TASK_QUEUE: 'keel-a100',
    });
    expect(config.temporal.connectionOptions.address).toBe('temporal.example.internal:7233');
    expect(config.temporal.namespace).toBe('research');
    expect(config.temporal.connectionOptions.apiKey).toBe('not-a-real-key');
    expect(config.taskQueue).toBe('keel-a100');
  });

  test('TLS with a client certificate and key is passed on', () => {
    const config = loadTemporalConfig({
      ...base,
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CLIENT_CERT_DATA: 'CERT',
      TEMPORAL_TLS_CLIENT_KEY_DATA: 'KEY',
    });
    const tls = config.connectionOptions.tls;
    if (typeof tls !== 'object' || !tls?.clientCertPair) throw new Error(`expected a TLS config, got ${String(tls)}`);
    expect(Buffer.from(tls.clientCertPair.crt).toString()).toBe('CERT');
    expect(Buffer.from(tls.clientCertPair.key).toString()).toBe('KEY');
  });
});
