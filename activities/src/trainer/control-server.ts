// keel's end of the control socket: a Unix socket in the attempt's folder that the trainer
// connects to. Lines are split here (bounded, so a trainer cannot make keel buffer without
// limit), parsed, and handed to one handler in order; a handler's answer goes back on the same
// connection.
import fs from 'node:fs';
import net from 'node:net';
import { type KeelMessage, maxLineBytes, parseTrainerLine, type TrainerMessage } from './messages.ts';

export interface ControlServer {
  readonly socketPath: string;
  /** Sends to every connected trainer process (a trainer may fork workers that connect too). */
  broadcast(message: KeelMessage): void;
  close(): Promise<void>;
}

/** What to do with a message; what it returns (if anything) is sent back to that connection. */
export type MessageHandler = (message: TrainerMessage) => Promise<KeelMessage | undefined> | KeelMessage | undefined;

export async function startControlServer(socketPath: string, handle: MessageHandler): Promise<ControlServer> {
  fs.rmSync(socketPath, { force: true });
  const sockets = new Set<net.Socket>();
  const send = (socket: net.Socket, message: KeelMessage) => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
  };
  // One queue for all connections: messages are handled in the order they arrived.
  let queue: Promise<unknown> = Promise.resolve();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a trainer that dies mid-write; its exit is handled elsewhere
    let buffered = '';
    let discarding = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (discarding) discarding = false;
        else if (Buffer.byteLength(line) > maxLineBytes) tooLong(socket);
        else if (line !== '') enqueue(socket, line);
        newline = buffered.indexOf('\n');
      }
      if (Buffer.byteLength(buffered) > maxLineBytes) {
        tooLong(socket);
        buffered = '';
        discarding = true;
      }
    });
  });

  const tooLong = (socket: net.Socket) =>
    send(socket, { type: 'error', error: `line longer than ${maxLineBytes} bytes; dropped` });
  const enqueue = (socket: net.Socket, line: string) => {
    queue = queue.then(async () => {
      const parsed = parseTrainerLine(line);
      if ('error' in parsed) return send(socket, { type: 'error', error: parsed.error });
      try {
        const answer = await handle(parsed.message);
        if (answer) send(socket, answer);
      } catch (err) {
        send(socket, { type: 'error', error: err instanceof Error ? err.message : String(err) });
      }
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    broadcast(message) {
      for (const socket of sockets) send(socket, message);
    },
    /** After the trainer exited: reads what it sent last (its `done`), then closes. */
    async close() {
      await Promise.all(
        [...sockets].map(
          (socket) =>
            new Promise<void>((resolve) => {
              if (socket.destroyed) return resolve();
              const timer = setTimeout(() => socket.destroy(), 2000); // a child of the trainer may hold it open
              socket.once('close', () => {
                clearTimeout(timer);
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
