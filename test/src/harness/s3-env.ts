// Points this process at a MinIO the way a worker is configured, by the environment only (the
// worker in the test's process and @keel/storage read S3 settings from there), and makes a bucket.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { vi } from 'vitest';
import type { ServiceEndpoints } from './services.ts';

export async function useS3Environment(minio: ServiceEndpoints['minio'], bucket: string): Promise<void> {
  vi.stubEnv('AWS_ACCESS_KEY_ID', minio.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', minio.secretAccessKey);
  vi.stubEnv('AWS_REGION', minio.region);
  vi.stubEnv('AWS_ENDPOINT_URL_S3', minio.endpoint);
  const s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
}
