// Each real test server answers a real client: the harness started what the other tests rely on.

import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import postgres from 'postgres';
import { describe, expect, inject, test } from 'vitest';

const services = inject('services');

describe('test services answer', () => {
  test('MinIO: create a bucket and list it', async () => {
    const { endpoint, region, accessKeyId, secretAccessKey } = services.minio;
    const s3 = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: 'smoke-minio' }));
    const { Buckets } = await s3.send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).toContain('smoke-minio');
    s3.destroy();
  });

  test('fake-gcs-server: create a bucket and list it', async () => {
    const storage = new Storage({ apiEndpoint: services.gcs.endpoint, projectId: services.gcs.projectId });
    await storage.createBucket('smoke-gcs');
    const [buckets] = await storage.getBuckets();
    expect(buckets.map((b) => b.name)).toContain('smoke-gcs');
  });

  test('Azurite: create a container and list it', async () => {
    const blobs = BlobServiceClient.fromConnectionString(services.azurite.connectionString);
    await blobs.createContainer('smoke-azurite');
    const names: string[] = [];
    for await (const container of blobs.listContainers()) names.push(container.name);
    expect(names).toContain('smoke-azurite');
  });

  test('PostgreSQL: select 1', async () => {
    const sql = postgres(services.postgres.url, { max: 1 });
    try {
      const rows = await sql`select 1 as one`;
      expect(rows[0]?.one).toBe(1);
    } finally {
      await sql.end();
    }
  });
});
