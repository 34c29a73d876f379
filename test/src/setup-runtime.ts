// Per test file: Temporal's runtime logs warnings only, so failures stay readable.
import { configureRuntime } from '@keel/workers';

configureRuntime({ logLevel: 'WARN' });
