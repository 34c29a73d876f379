// @keel/storage: one put/get/head/list/delete interface, with sha256 end to end, over
// file:///absolute/folder, s3://bucket/prefix, gs://bucket/prefix and az://container/prefix.
export { sha256File } from './checksum.ts';
export { storageDefaults } from './config.ts';
export {
  ChecksumMismatchError,
  ChecksumMissingError,
  InvalidChecksumError,
  InvalidKeyError,
  InvalidStorageUriError,
  ObjectNotFoundError,
  StorageConfigError,
  StorageError,
  type StorageErrorFields,
  type StorageOperation,
  TransferAbortedError,
} from './errors.ts';
export { openStorage } from './storage.ts';
export type {
  AzureOptions,
  GcsOptions,
  PutOptions,
  PutResult,
  S3ChecksumSetting,
  S3Options,
  Storage,
  StorageOptions,
  StorageProvider,
  StoredObject,
  TransferOptions,
  TransferProgress,
} from './types.ts';
