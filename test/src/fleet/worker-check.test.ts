// `keel worker --check` as a pod's bootstrap runs it: a real process against the real dev server,
// PostgreSQL and MinIO. All good: exit 0 and what it found. Each broken setting: exit 1 and a line
// that names the part and the variable to fix, while the other parts are still checked.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type FreshDatabase, freshDatabase } from '../harness/databases.ts';

const services = inject('services');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-check-'));
let postgres: FreshDatabase;
beforeAll(async () => {
  postgres = await freshDatabase('postgres', services.postgres.url);
});
afterAll(async () => {
  await postgres?.drop();
  fs.rmSync(home, { recursive: true, force: true });
});

function check(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = {
    TEMPORAL_ADDRESS: services.temporal.address,
    TEMPORAL_NAMESPACE: services.temporal.namespace,
    DATABASE_URL: postgres.url,
    KEEL_HOME: home,
    KEEL_STORAGE_URI: 's3://keel-check/ckpt',
    AWS_ENDPOINT_URL_S3: services.minio.endpoint,
    AWS_REGION: services.minio.region,
    AWS_ACCESS_KEY_ID: services.minio.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.minio.secretAccessKey,
    KEEL_GPUS: '0,1',
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.resolve('client/src/cli.ts'), 'worker', '--check'],
      { env: { ...process.env, ...base, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

const line = (stdout: string, name: string) => stdout.split('\n').find((l) => l.slice(6).startsWith(name)) ?? '';

describe('keel worker --check', () => {
  test('all good: every part found, nothing left behind in the bucket, the password not printed', async () => {
    const { S3Client, CreateBucketCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const s3 = new S3Client({
      endpoint: services.minio.endpoint,
      region: services.minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: services.minio.accessKeyId, secretAccessKey: services.minio.secretAccessKey },
    });
    await s3.send(new CreateBucketCommand({ Bucket: 'keel-check' })).catch(() => {});

    const { code, stdout } = await check({});
    expect(code, stdout).toBe(0);
    expect(line(stdout, 'temporal')).toMatch(/^ok {4}temporal .*namespace 'default'/);
    expect(line(stdout, 'database')).toMatch(
      /^ok {4}database .*\(postgres\); \d+ migration\(s\) to apply at worker start/,
    );
    expect(line(stdout, 'storage')).toContain('s3://keel-check/ckpt: write, read (sha256 checked) and delete work');
    expect(line(stdout, 'work dir')).toContain('writable');
    expect(line(stdout, 'gpus')).toContain('2: 0 (configured by KEEL_GPUS), 1');
    expect(line(stdout, 'slots')).toBe(
      'ok    slots     2 trainer(s) at once (one per GPU); more jobs wait in the queue for any host with a free slot',
    );
    const password = new URL(postgres.url).password;
    if (password) expect(stdout).not.toContain(password);
    const left = await s3.send(new ListObjectsV2Command({ Bucket: 'keel-check' }));
    expect(left.KeyCount ?? 0).toBe(0);
    s3.destroy();
  });

  test('each broken part is named with its variable; the others are still checked', async () => {
    const { code, stdout, stderr } = await check({
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      KEEL_STORAGE_URI: 's3://no-such-bucket-for-keel/x',
      KEEL_GPUS: 'none',
    });
    expect(code).toBe(1);
    expect(line(stdout, 'temporal')).toMatch(/^FAIL {2}temporal +cannot reach 127\.0\.0\.1:1: .*\(TEMPORAL_ADDRESS/);
    expect(line(stdout, 'storage')).toMatch(/^FAIL {2}storage .*no-such-bucket-for-keel/);
    expect(line(stdout, 'database')).toMatch(/^ok /);
    expect(line(stdout, 'gpus')).toContain('none: a CPU-only host (jobs asking for GPUs fail here');
    expect(line(stdout, 'slots')).toContain('no limit (a CPU-only host; KEEL_TRAINER_SLOTS=N sets one)');
    expect(stderr).toContain('keel: worker check failed: temporal, storage');
  });

  test('KEEL_TRAINER_SLOTS sets the slots; a bad value is refused, naming the variable', async () => {
    const set = await check({ KEEL_TRAINER_SLOTS: '3' });
    expect(line(set.stdout, 'slots')).toContain('3 trainer(s) at once (KEEL_TRAINER_SLOTS)');
    const bad = await check({ KEEL_TRAINER_SLOTS: 'two' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("KEEL_TRAINER_SLOTS: 'two' is not a whole number of trainers, 1 or more");
  });

  test('an unreachable database is named with DATABASE_URL', async () => {
    const { code, stdout } = await check({ DATABASE_URL: 'postgres://keel:secret-pw@127.0.0.1:1/keel' });
    expect(code).toBe(1);
    expect(line(stdout, 'database')).toMatch(/^FAIL {2}database .*127\.0\.0\.1:1.*\(DATABASE_URL\)/);
    expect(stdout).not.toContain('secret-pw');
  });
});
