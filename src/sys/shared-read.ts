// One receive buffer for sockets whose data is consumed synchronously (exec frames, HTTP probe
// responses): net's `onread` option reads into it without a Readable stream per connection. The
// chunk handed to `onData` is a view valid only during the call: what is kept must be copied.

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** The `onread` option of net.connect / net.createConnection for such a socket. */
export function sharedOnread(onData: (chunk: Buffer) => void): { buffer: Buffer; callback: (n: number, buf: Uint8Array) => boolean } {
  return { buffer: READ_BUFFER, callback: (n, buf) => (onData(Buffer.from(buf.buffer, buf.byteOffset, n)), true) };
}

/** Is this chunk (or a view of it) still in the shared buffer? */
export function inSharedReadBuffer(b: Buffer): boolean {
  return b.buffer === READ_BUFFER.buffer;
}
