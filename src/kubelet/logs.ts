// /containerLogs: what the kubelet server adds around streamContainerLog (src/api/server.ts).
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
import type http from 'node:http';

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
