// One keel transfer in its own process, so its peak memory is keel's alone: prints JSON with the
// transfer's seconds (timed around the call, after module loading) and the process's peak RSS.
// Usage: keel-transfer.ts put|get <storage uri> <key> <file> [sha256]
import { openStorage } from '@keel/storage';

const [operation, uri, key, file, sha256] = process.argv.slice(2);
if ((operation !== 'put' && operation !== 'get') || !uri || !key || !file) {
  throw new Error('usage: keel-transfer.ts put|get <storage uri> <key> <file> [sha256]');
}
const storage = openStorage(uri);
const started = performance.now();
const result =
  operation === 'put' ? await storage.put(key, file, sha256 ? { sha256 } : {}) : await storage.get(key, file);
const seconds = (performance.now() - started) / 1000;
await storage.close();
const maxRssBytes = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ seconds, maxRssBytes, bytes: result.bytes, sha256: result.sha256 }));
