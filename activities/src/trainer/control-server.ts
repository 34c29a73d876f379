// keel's end of the control socket: a Unix socket in the attempt's folder that the trainer
// connects to. Lines are split here (bounded, so a trainer cannot make keel buffer without
// limit), parsed, and handed to one handler in order; a handler's answer goes back on the same
// connection.
import fs from 'node:fs';
import net from 'node:net';
import { type KeelMessage, maxLineBytes, type ProblemCode, parseTrainerLine, type TrainerMessage } from './messages.ts';

/**
 * How far keel reads ahead of its handler, per connection. Past it keel stops reading until the
 * handler catches up, so a trainer that writes faster than keel handles (a flood of reports while
 * a checkpoint waits on Temporal) is held back by its own blocked writes instead of filling keel's
 * memory: before, every line read was queued, without limit.
 */
export const maxReadAheadBytes = 4 * maxLineBytes;
/** How much of keel's answers may wait unread by the trainer before keel stops reading from it. */
export const maxUnreadAnswerBytes = maxLineBytes;

export interface ControlServer {
  readonly socketPath: string;
  /** Sends to every connected trainer process (a trainer may fork workers that connect too). */
  broadcast(message: KeelMessage): void;
  close(): Promise<void>;
}

/** What to do with a message; what it returns (if anything) is sent back to that connection. */
export type MessageHandler = (
  message: TrainerMessage,
) => Promise<KeelMessage | KeelMessage[] | undefined> | KeelMessage | KeelMessage[] | undefined;

export interface ControlServerOptions {
  /** Told of every line refused here (it never reaches the handler), e.g. for the heartbeat. */
  onProblem?: (code: ProblemCode, error: string) => void;
}

export async function startControlServer(
  socketPath: string,
  handle: MessageHandler,
  options: ControlServerOptions = {},
): Promise<ControlServer> {
  fs.rmSync(socketPath, { force: true });
  /** Each connection, with how much it sent that keel has read but not handled yet. */
  const sockets = new Map<net.Socket, { readAhead: number }>();
  const send = (socket: net.Socket, message: KeelMessage) => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
  };
  const refuse = (socket: net.Socket, code: ProblemCode, error: string, step?: number) => {
    options.onProblem?.(code, error);
    send(socket, step === undefined ? { type: 'error', code, error } : { type: 'nack', step, code, error });
  };
  // One queue for all connections: messages are handled in the order they arrived.
  let queue: Promise<unknown> = Promise.resolve();

  const server = net.createServer((socket) => {
    const state = { readAhead: 0 }; // characters read but not yet handled
    sockets.set(socket, state);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a trainer that dies mid-write; its exit is handled elsewhere
    let buffered = '';
    let discarding = false;
    // Reads only while the handler keeps up and the trainer reads its answers (see the limits).
    const throttle = () => {
      const behind = state.readAhead > maxReadAheadBytes || socket.writableLength > maxUnreadAnswerBytes;
      if (behind && !socket.isPaused()) socket.pause();
      else if (!behind && socket.isPaused()) socket.resume();
    };
    socket.on('drain', throttle);
    const enqueue = (line: string) => {
      state.readAhead += line.length;
      queue = queue.then(async () => {
        try {
          const parsed = parseTrainerLine(line);
          if (!('message' in parsed)) return refuse(socket, parsed.code, parsed.error, parsed.step);
          try {
            const answer = await handle(parsed.message);
            for (const message of Array.isArray(answer) ? answer : answer ? [answer] : []) send(socket, message);
          } catch (err) {
            refuse(socket, 'keel_error', err instanceof Error ? err.message : String(err));
          }
        } finally {
          state.readAhead -= line.length;
          throttle();
        }
      });
      throttle();
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (discarding) {
        // The rest of a line already refused as too long: skipped, not buffered (before, it was
        // buffered again and refused once more per MiB).
        const end = chunk.indexOf('\n');
        if (end < 0) return;
        discarding = false;
        chunk = chunk.slice(end + 1);
      }
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (Buffer.byteLength(line) > maxLineBytes) tooLong(socket);
        else if (line !== '') enqueue(line);
        newline = buffered.indexOf('\n');
      }
      if (buffered.length > maxLineBytes || Buffer.byteLength(buffered) > maxLineBytes) {
        tooLong(socket);
        buffered = '';
        discarding = true;
      }
    });
  });

  const tooLong = (socket: net.Socket) =>
    refuse(socket, 'line_too_long', `line longer than ${maxLineBytes} bytes; dropped`);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    broadcast(message) {
      for (const socket of sockets.keys()) send(socket, message);
    },
    /** After the trainer exited: reads what it sent last (its `done`), then closes. */
    async close() {
      await Promise.all(
        [...sockets].map(
          ([socket, state]) =>
            new Promise<void>((resolve) => {
              if (socket.destroyed) return resolve();
              // A child of the trainer may hold the socket open: give up on it once it has sent
              // nothing for 2 s, but not while keel is still working through what it sent (with
              // keel reading at most maxReadAheadBytes ahead, the rest may still be unread).
              let read = socket.bytesRead;
              const timer = setInterval(() => {
                if (socket.bytesRead === read && state.readAhead === 0) socket.destroy();
                read = socket.bytesRead;
              }, 2000);
              socket.once('close', () => {
                clearInterval(timer);
                resolve();
              });
              socket.end();
            }),
        ),
      );
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue.catch(() => {});
      fs.rmSync(socketPath, { force: true });
    },
  };
}
