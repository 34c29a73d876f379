// The API's request body limit. Hono's bodyLimit cannot answer a chunked body (no Content-Length)
// that runs over: its onError runs while bodyLimit still holds the stream's reader, so the rest
// cannot be read and dropped, and Node then closes the socket under the client (500 or a reset
// instead of the 413). This one reads the body itself, so it can drain what it started reading.
import type { Context, MiddlewareHandler } from 'hono';

/** How much of an oversize body is read and dropped, in limits, before the connection is let go. */
const drainFactor = 16;

/**
 * Reads each request body (up to `maxBytes`) before the routes: within the limit, the routes get
 * it as before; over it (declared or not), the rest is read and dropped (bounded: Node closes a
 * socket whose request body is unread, and the client would see a reset instead of the answer)
 * and `tooLarge` answers.
 */
export function limitBody(maxBytes: number, tooLarge: (c: Context) => Response): MiddlewareHandler {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await drain(reader, size, drainFactor * maxBytes);
        return tooLarge(c);
      }
      chunks.push(value);
    }
    c.req.raw = new Request(c.req.raw, { body: concat(chunks, size) });
    return next();
  };
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, read: number, upTo: number): Promise<void> {
  try {
    while (read <= upTo) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // the client went away: nothing left to drain
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}
