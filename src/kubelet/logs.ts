// /containerLogs: what the kubelet server adds around streamContainerLog (src/api/server.ts).
//
// Over a WebSocket (an upgrade request from a direct client of the node), as
// wsstream.NewReader serves a stream: one reader channel, subprotocols "" and
// binary.k8s.io (binary messages of the log's bytes) or base64.binary.k8s.io
// (text messages, each chunk base64); an empty message first (the reader's
// "ping"), the client's messages ignored, the end of the log (or of a follow)
// closes the socket normally. LogSocketResponse stands in for the
// http.ServerResponse streamContainerLog writes: writeHead completes the
// upgrade, write sends a message, end closes; a failure before writeHead is
// answered as the HTTP error instead.
//
// endInItsOwnWrite: the API server serves `pods/log` over a WebSocket (the e2e
// spec 'Pods should support retrieving logs from the container over
// websockets', a browser) with wsstream.NewReader around its plain GET of our
// /containerLogs, and wsstream's messageCopy drops the bytes of a Read that
// also returns io.EOF. Go's chunked reader returns (n, io.EOF) when the last
// data chunk and the terminating chunk come in one TLS record: Node corks a
// write and the end of the same tick into one. kubelet flushes every write
// (flushwriter), so its terminating chunk comes on its own; here the end
// waits until every write is on the socket, then one turn of the event loop.
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';

type WriteCallback = (error?: Error | null) => void;

/** Patches `res` so that end() goes out after the writes before it, in a write of its own. */
export function endInItsOwnWrite(res: http.ServerResponse): void {
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const end = res.end.bind(res) as () => http.ServerResponse;
  let pending = 0;
  let ending = false;
  let ended = false;
  const maybeEnd = () => {
    if (!ending || ended || pending > 0) return;
    ended = true;
    setImmediate(() => end());
  };
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    const cb = typeof rest[rest.length - 1] === 'function' ? (rest.pop() as WriteCallback) : undefined;
    pending++;
    return write(chunk, ...rest, (e?: Error | null) => {
      pending--;
      cb?.(e);
      maybeEnd();
    });
  }) as typeof res.write;
  res.end = ((...args: unknown[]) => {
    if (ending) return res;
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
    if (cb) res.once('finish', cb);
    if (args[0] !== undefined && args[0] !== null) (res.write as (...a: unknown[]) => boolean)(...args);
    ending = true;
    maybeEnd();
    return res;
  }) as typeof res.end;
  res.once('close', () => {
    // the client is gone: nothing waits for the writes any more
    if (ending && !ended) {
      ended = true;
      end();
    }
  });
}

const log = getLogger('kubelet');

export const LOG_WS_BINARY = 'binary.k8s.io';
export const LOG_WS_BASE64 = 'base64.binary.k8s.io';
export const LOG_WS_PROTOCOLS = [LOG_WS_BINARY, LOG_WS_BASE64] as const;
export type LogWsProtocol = (typeof LOG_WS_PROTOCOLS)[number] | '';

/** The first of the client's list wsstream's reader speaks; '' when it offers none; undefined when none of them. */
export function negotiateLogProtocol(offered: Iterable<string>): LogWsProtocol | undefined {
  const list = [...offered];
  if (list.length === 0) return '';
  for (const p of list) if ((LOG_WS_PROTOCOLS as readonly string[]).includes(p)) return p as LogWsProtocol;
  return undefined;
}

/** One message of the log stream: the bytes (binary), or base64 text. */
export function encodeLogMessage(protocol: LogWsProtocol, data: Buffer): Buffer | string {
  return protocol === LOG_WS_BASE64 ? data.toString('base64') : data;
}

/** The subset of http.ServerResponse streamContainerLog uses, over a WebSocket opened at writeHead. */
export class LogSocketResponse extends EventEmitter {
  headersSent = false;
  private ws?: WebSocket;
  private readonly pending: Buffer[] = [];
  private ended = false;
  private gone = false;

  /** `open` completes the upgrade and calls back with the socket (never, when the connection is gone). */
  constructor(
    private readonly socket: Duplex,
    private readonly protocol: LogWsProtocol,
    private readonly open: (cb: (ws: WebSocket) => void) => void,
  ) {
    super();
    socket.once('close', () => this.goneNow());
  }

  writeHead(_code?: number, _headers?: unknown): this {
    if (this.headersSent) return this;
    this.headersSent = true;
    this.open((ws) => {
      this.ws = ws;
      ws.on('message', () => undefined); // a reader: the client's messages are ignored
      ws.on('error', (e) => log.debug('log socket error', { error: describeError(e) }));
      ws.once('close', () => this.goneNow());
      this.send(Buffer.alloc(0));
      for (const b of this.pending.splice(0)) this.send(b);
      if (this.ended) ws.close(1000);
    });
    return this;
  }

  write(chunk: Buffer | string): boolean {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.gone || b.length === 0) return true;
    if (this.ws) this.send(b);
    else this.pending.push(Buffer.from(b));
    return true;
  }

  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.write(chunk);
    if (this.ended) return this;
    this.ended = true;
    if (!this.headersSent) this.socket.destroy();
    else this.ws?.close(1000);
    return this;
  }

  private send(b: Buffer): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    ws.send(encodeLogMessage(this.protocol, b), { binary: this.protocol !== LOG_WS_BASE64 });
  }

  private goneNow(): void {
    if (this.gone) return;
    this.gone = true;
    this.emit('close');
  }
}
