// SPDY/3.1 framing, as spoken by moby/spdystream (kubectl, kube-apiserver and
// kubelet's port-forward streams), over a byte transport: a TLS socket after
// `Upgrade: SPDY/3.1`, or the binary messages of a WebSocket that tunnels it
// (`SPDY/3.1+portforward.k8s.io`; a message is any slice of the byte stream).
//
//   control frame: 1 | version 15 bits (3) | type 16 bits | flags 8 | length 24 | payload
//   data frame:    0 | stream id 31 bits                  | flags 8 | length 24 | payload
//
// Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib-compressed with the
// SPDY/3 dictionary, one zlib stream per direction for the whole connection,
// each block ending at a sync flush. The peer's blocks go through node:zlib
// (asynchronous, so frames are handled in order through a queue); ours are
// written as deflate "stored" blocks, which any inflater reads and which need no
// compressor state (a header block here is a few bytes).
//
// Flow control: spdystream implements none. It never sends WINDOW_UPDATE, ignores
// the ones it gets, and writes without looking at a window; kubelet (spdystream
// too) does the same. Waiting for a window would stall after 64 KiB, so WINDOW_UPDATE
// and SETTINGS are checked for well-formedness and otherwise ignored; back-pressure
// comes from the transport (`backlog`, pausing its input).
//
// Strict: a malformed frame, an unknown version or type, a bad stream id or an
// undecodable header block ends the session (GOAWAY PROTOCOL_ERROR, transport
// closed, one logged error); nothing here throws into the caller.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import type { WebSocket } from 'ws';
import { describeError, NodeletError } from '../errors.js';
import type { Logger } from '../log.js';

export const SPDY_VERSION = 3;
export const FRAME_HEADER_BYTES = 8;
/** 24-bit lengths */
export const MAX_FRAME_PAYLOAD = 0xffffff;
/** Control frames carry small header blocks here; a bigger one is refused (it would only buffer and inflate). */
export const MAX_CONTROL_PAYLOAD = 16 << 10;
/** Decompressed size of one header block. */
export const MAX_HEADER_BLOCK = 64 << 10;
/** Data frames we write are at most this long. */
export const MAX_DATA_CHUNK = 64 << 10;

export const FrameType = { SYN_STREAM: 1, SYN_REPLY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, HEADERS: 8, WINDOW_UPDATE: 9 } as const;
export const RstStatus = {
  PROTOCOL_ERROR: 1, INVALID_STREAM: 2, REFUSED_STREAM: 3, UNSUPPORTED_VERSION: 4, CANCEL: 5, INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7, STREAM_IN_USE: 8, STREAM_ALREADY_CLOSED: 9, FRAME_TOO_LARGE: 11,
} as const;
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;
export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;

/** Lower-case names; a value list is the NUL-separated value on the wire. */
export type SpdyHeaders = Record<string, string[]>;

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'synStream'; streamId: number; associatedTo: number; priority: number; fin: boolean; unidirectional: boolean; headers: SpdyHeaders }
  | { type: 'synReply'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'rstStream'; streamId: number; status: number }
  | { type: 'settings'; clear: boolean; entries: { flags: number; id: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goAway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'windowUpdate'; streamId: number; delta: number };

/** A frame as cut from the byte stream, before its payload is decoded. */
export interface RawFrame {
  control: boolean;
  /** control frames: the version and type; data frames: 0 */
  version: number;
  type: number;
  /** data frames: the stream id (control frames keep theirs in the payload) */
  streamId: number;
  flags: number;
  payload: Buffer;
}

const protocolError = (message: string, details: Record<string, unknown> = {}) =>
  new NodeletError('InvalidArgument', 'ERR_SPDY_PROTOCOL', `SPDY: ${message}`, { details });

// ------------------------------------------------------------------ dictionary

/** The SPDY/3 header compression dictionary (draft 3, 2.6.10.1): length-prefixed words, then a literal tail. */
const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date',
  'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate',
  'proxy-authorization', 'range', 'referer', 'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'user-agent', 'vary', 'via', 'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1',
  'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden' +
  '404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,' +
  'publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.flatMap((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    return [len, Buffer.from(w, 'latin1')];
  }),
  Buffer.from(DICTIONARY_TAIL, 'latin1'),
]);

export function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (let i = 0; i < b.length; ) {
    const end = Math.min(i + 3800, b.length); // no overflow before the modulo
    for (; i < end; i++) {
      a += b[i]!;
      s += a;
    }
    a %= 65521;
    s %= 65521;
  }
  return ((s << 16) | a) >>> 0;
}

// --------------------------------------------------------------- header blocks

/** The uncompressed name/value block: u32 count, then (u32 length, name, u32 length, value) each. */
export function encodeHeaderBlock(h: SpdyHeaders | Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const entries = Object.entries(h).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join('\0') : v] as const);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const [name, value] of entries) {
    for (const s of [name, value]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/** Strict inverse of encodeHeaderBlock: exact length, non-empty lower-case unique names. */
export function decodeHeaderBlock(b: Buffer): SpdyHeaders {
  let off = 0;
  const u32 = (what: string) => {
    if (off + 4 > b.length) throw protocolError(`header block truncated (reading ${what} at byte ${off} of ${b.length})`);
    const v = b.readUInt32BE(off);
    off += 4;
    return v;
  };
  const str = (what: string) => {
    const len = u32(`the length of ${what}`);
    if (len > b.length - off) throw protocolError(`header block truncated (${what} of ${len} bytes at byte ${off} of ${b.length})`);
    const s = b.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  const n = u32('the header count');
  if (n > (b.length - 4) / 8) throw protocolError(`header block claims ${n} headers in ${b.length} bytes`);
  const out: SpdyHeaders = {};
  for (let i = 0; i < n; i++) {
    const name = str('a header name');
    if (!name) throw protocolError('empty header name');
    if (name !== name.toLowerCase()) throw protocolError(`header name "${name}" is not lower-case`);
    if (Object.hasOwn(out, name)) throw protocolError(`duplicate header "${name}"`);
    out[name] = str(`the value of "${name}"`).split('\0');
  }
  if (off !== b.length) throw protocolError(`header block has ${b.length - off} bytes after its ${n} headers`);
  return out;
}

/**
 * Our direction's zlib stream: the first block starts it (CMF/FLG with FDICT, the dictionary's adler32); each
 * block is its bytes as stored deflate blocks, then an empty stored block: the sync-flush marker (00 00 00 ff ff)
 * zlib's Z_SYNC_FLUSH ends a block with, which is what makes an inflater (Go's flate) hand out the bytes without
 * reading further.
 */
export class HeaderEncoder {
  private started = false;

  encode(raw: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      const h = Buffer.alloc(6);
      h[0] = 0x78; // deflate, 32 KiB window
      h[1] = 0xbb; // FDICT, level 2; (0x78bb % 31) == 0
      h.writeUInt32BE(adler32(SPDY_DICTIONARY), 2);
      parts.push(h);
      this.started = true;
    }
    for (let off = 0; off < raw.length; off += 0xffff) parts.push(...storedBlock(raw.subarray(off, off + 0xffff)));
    parts.push(...storedBlock(Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
}

/** BFINAL 0, BTYPE 00 (byte-aligned here), LEN and NLEN little-endian, the bytes. */
function storedBlock(piece: Buffer): Buffer[] {
  const h = Buffer.alloc(5);
  h.writeUInt16LE(piece.length, 1);
  h.writeUInt16LE(~piece.length & 0xffff, 3);
  return [h, piece];
}

/** The peer's direction: one inflater for the connection; each block must end at a flush point. */
export class HeaderDecoder {
  private readonly z = zlib.createInflate({ dictionary: SPDY_DICTIONARY });
  private error?: Error;
  private out: Buffer[] = [];
  private outLen = 0;

  constructor() {
    this.z.on('error', (e) => {
      this.error ??= e;
    });
    this.z.on('data', (c: Buffer) => {
      this.out.push(c);
      this.outLen += c.length;
      if (this.outLen > MAX_HEADER_BLOCK && !this.error) {
        this.error = protocolError(`a header block inflates to more than ${MAX_HEADER_BLOCK} bytes`);
        this.z.destroy(this.error);
      }
    });
  }

  /** The decompressed bytes of one block (the peer flushed after it). */
  inflate(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        this.z.off('error', done);
        this.z.off('close', done);
        while (!this.z.destroyed && this.z.readableLength > 0 && this.z.read() !== null) {} // buffered chunks → 'data'
        const b = Buffer.concat(this.out);
        this.out = [];
        this.outLen = 0;
        if (this.error || this.z.destroyed) return reject(headerError(this.error ?? new Error('the inflater is closed')));
        resolve(b);
      };
      if (this.error || this.z.destroyed) return done();
      this.z.once('error', done);
      this.z.once('close', done);
      this.z.write(block);
      this.z.flush(zlib.constants.Z_SYNC_FLUSH, done);
    });
  }

  async decode(block: Buffer): Promise<SpdyHeaders> {
    return decodeHeaderBlock(await this.inflate(block));
  }

  close(): void {
    this.z.destroy();
  }
}

function headerError(e: Error): NodeletError {
  if (e instanceof NodeletError) return e;
  return new NodeletError('InvalidArgument', 'ERR_SPDY_HEADER_BLOCK', `SPDY: cannot decompress a header block: ${e.message}`, { cause: e });
}

// ----------------------------------------------------------------- frame codec

/** Cuts frames out of a byte stream split anywhere. push() throws ERR_SPDY_PROTOCOL on bad framing. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): RawFrame[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const out: RawFrame[] = [];
    while (this.length >= FRAME_HEADER_BYTES) {
      const h = this.peek(FRAME_HEADER_BYTES);
      const w0 = h.readUInt32BE(0);
      const flags = h[4]!;
      const len = h.readUIntBE(5, 3);
      const control = (w0 & 0x80000000) !== 0;
      const version = control ? (w0 >>> 16) & 0x7fff : 0;
      const type = control ? w0 & 0xffff : 0;
      if (control) {
        if (version !== SPDY_VERSION) throw protocolError(`unsupported version ${version} in a control frame (type ${type}); this speaks SPDY/3.1`, { version, type });
        if (len > MAX_CONTROL_PAYLOAD) throw protocolError(`control frame of type ${type} is ${len} bytes (at most ${MAX_CONTROL_PAYLOAD})`, { type, length: len });
      }
      if (this.length < FRAME_HEADER_BYTES + len) break;
      const frame = this.take(FRAME_HEADER_BYTES + len);
      out.push({ control, version, type, streamId: control ? 0 : w0 & 0x7fffffff, flags, payload: frame.subarray(FRAME_HEADER_BYTES) });
    }
    return out;
  }

  /** bytes held for an incomplete frame */
  get buffered(): number {
    return this.length;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    let b: Buffer;
    if (this.chunks[0]!.length >= n) {
      b = this.chunks[0]!.subarray(0, n);
      this.chunks[0] = this.chunks[0]!.subarray(n);
      if (!this.chunks[0].length) this.chunks.shift();
    } else {
      const all = Buffer.concat(this.chunks);
      b = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.length -= n;
    return b;
  }
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));

/** Decode a raw frame; header blocks go through `headers` (the connection's decoder). Throws ERR_SPDY_* */
export function decodeFrame(raw: RawFrame, headers: HeaderDecoder): Frame | Promise<Frame> {
  const p = raw.payload;
  if (!raw.control) {
    if (raw.streamId === 0) throw protocolError('data frame on stream 0');
    if (raw.flags & ~FLAG_FIN) throw protocolError(`data frame with unknown flags 0x${raw.flags.toString(16)}`, { streamId: raw.streamId });
    return { type: 'data', streamId: raw.streamId, fin: (raw.flags & FLAG_FIN) !== 0, data: p };
  }
  const name = TYPE_NAMES[raw.type];
  if (!name) throw protocolError(`unknown control frame type ${raw.type}`, { type: raw.type });
  const need = (n: number, exact = true) => {
    if (exact ? p.length !== n : p.length < n) throw protocolError(`${name} frame of ${p.length} bytes (${exact ? '' : 'at least '}${n})`, { type: raw.type });
  };
  const flagsOnly = (allowed: number) => {
    if (raw.flags & ~allowed) throw protocolError(`${name} frame with unknown flags 0x${raw.flags.toString(16)}`, { type: raw.type });
  };
  const streamId = (off: number) => {
    const id = p.readUInt32BE(off) & 0x7fffffff;
    if (id === 0) throw protocolError(`${name} frame on stream 0`, { type: raw.type });
    return id;
  };
  const fin = (raw.flags & FLAG_FIN) !== 0;
  switch (raw.type) {
    case FrameType.SYN_STREAM: {
      need(10, false);
      flagsOnly(FLAG_FIN | FLAG_UNIDIRECTIONAL);
      const id = streamId(0);
      const associatedTo = p.readUInt32BE(4) & 0x7fffffff;
      const priority = p[8]! >> 5;
      return headers.decode(p.subarray(10)).then((h) => ({ type: 'synStream', streamId: id, associatedTo, priority, fin, unidirectional: (raw.flags & FLAG_UNIDIRECTIONAL) !== 0, headers: h }));
    }
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS: {
      need(4, false);
      flagsOnly(FLAG_FIN);
      const id = streamId(0);
      const type = raw.type === FrameType.SYN_REPLY ? 'synReply' : 'headers';
      return headers.decode(p.subarray(4)).then((h) => ({ type, streamId: id, fin, headers: h }));
    }
    case FrameType.RST_STREAM: {
      need(8);
      flagsOnly(0);
      const status = p.readUInt32BE(4);
      if (status === 0) throw protocolError('RST_STREAM with status 0');
      return { type: 'rstStream', streamId: streamId(0), status };
    }
    case FrameType.SETTINGS: {
      need(4, false);
      flagsOnly(FLAG_SETTINGS_CLEAR);
      const n = p.readUInt32BE(0);
      if (p.length !== 4 + 8 * n) throw protocolError(`SETTINGS frame of ${p.length} bytes for ${n} entries`);
      const entries = Array.from({ length: n }, (_, i) => ({ flags: p[4 + 8 * i]!, id: p.readUIntBE(5 + 8 * i, 3), value: p.readUInt32BE(8 + 8 * i) }));
      return { type: 'settings', clear: (raw.flags & FLAG_SETTINGS_CLEAR) !== 0, entries };
    }
    case FrameType.PING: {
      need(4);
      flagsOnly(0);
      const id = p.readUInt32BE(0);
      if (id === 0) throw protocolError('PING with id 0');
      return { type: 'ping', id };
    }
    case FrameType.GOAWAY: {
      need(8);
      flagsOnly(0);
      return { type: 'goAway', lastGoodStreamId: p.readUInt32BE(0) & 0x7fffffff, status: p.readUInt32BE(4) };
    }
    case FrameType.WINDOW_UPDATE: {
      need(8);
      flagsOnly(0);
      const delta = p.readUInt32BE(4);
      if (delta === 0 || delta > 0x7fffffff) throw protocolError(`WINDOW_UPDATE with delta ${delta} (1..2^31-1)`);
      return { type: 'windowUpdate', streamId: p.readUInt32BE(0) & 0x7fffffff, delta };
    }
  }
  throw protocolError(`unknown control frame type ${raw.type}`);
}

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw protocolError(`frame payload of ${payload.length} bytes`);
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32BE((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, 0);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

const u32s = (...v: number[]) => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
};

/** One frame's bytes; header blocks go through `headers` (our direction's encoder). */
export function encodeFrame(f: Frame, headers: HeaderEncoder): Buffer {
  const finFlag = 'fin' in f && f.fin ? FLAG_FIN : 0;
  switch (f.type) {
    case 'data': {
      if (f.data.length > MAX_FRAME_PAYLOAD) throw protocolError(`data frame of ${f.data.length} bytes`);
      const h = Buffer.alloc(FRAME_HEADER_BYTES);
      h.writeUInt32BE(f.streamId & 0x7fffffff, 0);
      h[4] = finFlag;
      h.writeUIntBE(f.data.length, 5, 3);
      return Buffer.concat([h, f.data]);
    }
    case 'synStream': {
      const head = Buffer.alloc(10);
      head.writeUInt32BE(f.streamId & 0x7fffffff, 0);
      head.writeUInt32BE(f.associatedTo & 0x7fffffff, 4);
      head[8] = (f.priority & 7) << 5;
      return control(FrameType.SYN_STREAM, finFlag | (f.unidirectional ? FLAG_UNIDIRECTIONAL : 0), Buffer.concat([head, headers.encode(encodeHeaderBlock(f.headers))]));
    }
    case 'synReply':
    case 'headers':
      return control(f.type === 'synReply' ? FrameType.SYN_REPLY : FrameType.HEADERS, finFlag, Buffer.concat([u32s(f.streamId & 0x7fffffff), headers.encode(encodeHeaderBlock(f.headers))]));
    case 'rstStream':
      return control(FrameType.RST_STREAM, 0, u32s(f.streamId & 0x7fffffff, f.status));
    case 'settings': {
      const b = Buffer.alloc(4 + 8 * f.entries.length);
      b.writeUInt32BE(f.entries.length, 0);
      f.entries.forEach((e, i) => {
        b[4 + 8 * i] = e.flags;
        b.writeUIntBE(e.id, 5 + 8 * i, 3);
        b.writeUInt32BE(e.value >>> 0, 8 + 8 * i);
      });
      return control(FrameType.SETTINGS, f.clear ? FLAG_SETTINGS_CLEAR : 0, b);
    }
    case 'ping':
      return control(FrameType.PING, 0, u32s(f.id));
    case 'goAway':
      return control(FrameType.GOAWAY, 0, u32s(f.lastGoodStreamId & 0x7fffffff, f.status));
    case 'windowUpdate':
      return control(FrameType.WINDOW_UPDATE, 0, u32s(f.streamId & 0x7fffffff, f.delta));
  }
}

// ------------------------------------------------------------------ transports

/** The byte pipe under a session. */
export interface SpdyTransport {
  /** Called once by the session: incoming bytes, the end (clean or not). */
  start(on: { data(b: Buffer): void; end(error?: Error): void }): void;
  /** cb once the bytes are handed to the kernel (or the transport failed) */
  write(b: Buffer, cb?: () => void): void;
  /** bytes queued for writing */
  readonly backlog: number;
  pause(): void;
  resume(): void;
  /** flush what is queued, then close */
  end(): void;
  destroy(): void;
}

/** The transport's end, told to the session once whichever of end/error/close comes first. */
function endOnce(end: (e?: Error) => void): (e?: Error) => void {
  let ended = false;
  return (e) => {
    if (ended) return;
    ended = true;
    end(e);
  };
}

/** A socket (the TLS socket after `Upgrade: SPDY/3.1`). */
export function duplexTransport(s: Duplex): SpdyTransport {
  return {
    start(on) {
      const end = endOnce(on.end);
      s.on('data', (b: Buffer) => on.data(b));
      s.on('end', () => {
        end();
        s.end(); // our half too: the session is over
      });
      s.on('error', (e) => end(e));
      s.on('close', () => end());
    },
    write: (b, cb) => void s.write(b, () => cb?.()),
    get backlog() {
      return s.writableLength;
    },
    pause: () => void s.pause(),
    resume: () => void s.resume(),
    end: () => void s.end(),
    destroy: () => s.destroy(),
  };
}

/** A WebSocket whose binary messages carry the byte stream (client-go's TunnelingConnection). */
export function webSocketTransport(ws: WebSocket): SpdyTransport {
  return {
    start(on) {
      const end = endOnce(on.end);
      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        if (!isBinary) {
          end(protocolError('a text message in a SPDY tunnel (binary messages only)'));
          ws.close(1003, 'binary messages only');
          return;
        }
        on.data(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
      });
      ws.on('close', () => end());
      ws.on('error', (e) => end(e));
    },
    write: (b, cb) => ws.send(b, { binary: true }, () => cb?.()),
    get backlog() {
      return ws.bufferedAmount;
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    end: () => ws.close(1000),
    destroy: () => ws.terminate(),
  };
}

// --------------------------------------------------------------------- session

export interface SpdySessionOptions {
  /** server: the peer opens odd-numbered streams; client: we open odd ones */
  server: boolean;
  /** a new stream opened by the peer; reply() or reset() it */
  onStream?: (s: SpdyStream) => void;
  log: Logger;
  /** concurrent streams the peer may open; more are refused (RST REFUSED_STREAM) */
  maxStreams?: number;
}

/**
 * One SPDY connection. Events: 'close' (error?: NodeletError) once, when the transport is gone or the session
 * failed; every stream still open gets 'reset' first.
 */
export class SpdySession extends EventEmitter {
  readonly server: boolean;
  private readonly reader = new FrameReader();
  private readonly decoder = new HeaderDecoder();
  private readonly encoder = new HeaderEncoder();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly queue: RawFrame[] = [];
  private pumping = false;
  private lastPeerStream = 0;
  private nextStream: number;
  private goneAway = false;
  closed = false;
  /** counters (tests, debug logs) */
  readonly stats = { framesIn: 0, framesOut: 0, ignored: 0 };

  constructor(private readonly t: SpdyTransport, private readonly o: SpdySessionOptions) {
    super();
    this.server = o.server;
    this.nextStream = o.server ? 2 : 1;
    t.start({ data: (b) => this.feed(b), end: (e) => this.transportEnded(e) });
  }

  /** bytes queued on the transport: above some mark, stop reading what feeds write() */
  get backlog(): number {
    return this.t.backlog;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Stop / restart reading the transport (a stream's consumer is backed up). */
  pauseInput(): void {
    if (!this.closed) this.t.pause();
  }

  resumeInput(): void {
    if (!this.closed) this.t.resume();
  }

  /** Open a stream (SYN_STREAM); 'reply' when the peer answers. */
  openStream(headers: SpdyHeaders | Record<string, string>, o: { fin?: boolean } = {}): SpdyStream {
    if (this.closed) throw new NodeletError('FailedPrecondition', 'ERR_SPDY_CLOSED', 'SPDY: the session is closed');
    const id = this.nextStream;
    this.nextStream += 2;
    const h = toHeaders(headers);
    const s = new SpdyStream(this, id, h, true);
    this.streams.set(id, s);
    this.send({ type: 'synStream', streamId: id, associatedTo: 0, priority: 0, fin: !!o.fin, unidirectional: false, headers: h });
    if (o.fin) s.localEnded = true;
    return s;
  }

  ping(id: number): void {
    this.send({ type: 'ping', id });
  }

  /** GOAWAY OK, then end the transport (destroyed after a second); open streams are reset. */
  close(): void {
    if (this.closed) return;
    this.send({ type: 'goAway', lastGoodStreamId: this.lastPeerStream, status: GoAwayStatus.OK });
    this.t.end();
    setTimeout(() => this.t.destroy(), 1000).unref();
    this.finish();
  }

  /** @internal */
  send(f: Frame, cb?: () => void): void {
    if (this.closed) return void cb?.();
    this.stats.framesOut++;
    this.t.write(encodeFrame(f, this.encoder), cb);
  }

  /** @internal */
  forget(s: SpdyStream): void {
    this.streams.delete(s.id);
  }

  private feed(chunk: Buffer): void {
    if (this.closed) return;
    let frames: RawFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      return this.fail(e);
    }
    if (!frames.length) return;
    this.queue.push(...frames);
    void this.pump();
  }

  // frames are handled one at a time, in order: a header block's inflate is asynchronous
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && !this.closed) {
        const raw = this.queue.shift()!;
        this.stats.framesIn++;
        const d = decodeFrame(raw, this.decoder);
        this.handle(d instanceof Promise ? await d : d);
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.pumping = false;
    }
  }

  private handle(f: Frame): void {
    if (this.closed) return;
    const s = 'streamId' in f ? this.streams.get(f.streamId) : undefined;
    switch (f.type) {
      case 'data':
        // frames for a stream already reset or closed cross our RST on the wire: dropped, as spdystream does
        if (!s || s.remoteEnded) return void this.stats.ignored++;
        if (s.local && !s.replied) throw protocolError(`data on stream ${f.streamId} before its SYN_REPLY`);
        if (f.data.length) s.emit('data', f.data);
        if (f.fin) s.remoteEnd();
        return;
      case 'synStream':
        return this.peerStream(f);
      case 'synReply':
        if (!s) return void this.stats.ignored++;
        if (!s.local) throw protocolError(`SYN_REPLY for stream ${f.streamId}, which the peer opened`);
        if (s.replied) return s.reset(RstStatus.STREAM_IN_USE);
        s.replied = true;
        s.emit('reply', f.headers);
        if (f.fin) s.remoteEnd();
        return;
      case 'headers':
        if (!s) return void this.stats.ignored++;
        if (f.fin) s.remoteEnd();
        return;
      case 'rstStream':
        if (!s) return void this.stats.ignored++;
        return s.peerReset(f.status);
      case 'ping':
        // the peer's pings have its parity (odd from a client): echoed; ours come back and end here
        if ((f.id & 1) === (this.server ? 1 : 0)) this.send(f);
        return;
      case 'goAway':
        this.goneAway = true;
        this.emit('goaway', f);
        return;
      case 'settings':
      case 'windowUpdate':
        return; // no flow control (see the top of this file)
    }
  }

  private peerStream(f: Extract<Frame, { type: 'synStream' }>): void {
    const peerParity = this.server ? 1 : 0;
    if ((f.streamId & 1) !== peerParity) throw protocolError(`the peer opened stream ${f.streamId}, which has our parity`);
    if (f.streamId <= this.lastPeerStream) throw protocolError(`stream ${f.streamId} opened after stream ${this.lastPeerStream} (ids must increase)`);
    this.lastPeerStream = f.streamId;
    if (this.goneAway || !this.o.onStream || this.streams.size >= (this.o.maxStreams ?? 1000)) {
      this.send({ type: 'rstStream', streamId: f.streamId, status: RstStatus.REFUSED_STREAM });
      return;
    }
    const s = new SpdyStream(this, f.streamId, f.headers, false);
    this.streams.set(f.streamId, s);
    if (f.fin) s.remoteEnded = true;
    if (f.unidirectional) s.localEnded = true;
    this.o.onStream(s);
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    const err = e instanceof NodeletError ? e : new NodeletError('Internal', 'ERR_SPDY_PROTOCOL', `SPDY: ${describeError(e)}`, { cause: e });
    this.o.log.error('SPDY connection closed: protocol error', { error: describeError(err), code: err.code, ...err.details });
    this.send({ type: 'goAway', lastGoodStreamId: this.lastPeerStream, status: GoAwayStatus.PROTOCOL_ERROR });
    this.t.end();
    setTimeout(() => this.t.destroy(), 1000).unref();
    this.finish(err);
  }

  private transportEnded(e?: Error): void {
    if (this.closed) return;
    if (e) this.o.log.debug('SPDY transport closed', { error: describeError(e) });
    this.finish();
  }

  private finish(err?: NodeletError): void {
    this.closed = true;
    this.queue.length = 0;
    this.decoder.close();
    for (const s of [...this.streams.values()]) s.gone();
    this.streams.clear();
    this.emit('close', err);
  }
}

function toHeaders(h: SpdyHeaders | Record<string, string>): SpdyHeaders {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]]));
}

/**
 * One stream. Events: 'data' (Buffer), 'end' (the peer's FIN), 'reply' (headers; streams we opened),
 * 'reset' (status, byPeer; byPeer false: we reset it or the session went away), then 'close' once it is over:
 * both sides ended, or reset.
 */
export class SpdyStream extends EventEmitter {
  /** a SYN_REPLY was sent (peer's streams) or received (ours) */
  replied = false;
  localEnded = false;
  remoteEnded = false;
  private closed = false;

  constructor(private readonly session: SpdySession, readonly id: number, readonly headers: SpdyHeaders, readonly local: boolean) {
    super();
  }

  /** The first value of a header (names are lower-case on the wire). */
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** SYN_REPLY (a stream the peer opened). */
  reply(headers: SpdyHeaders | Record<string, string> = {}): void {
    if (this.local || this.replied || this.closed) return;
    this.replied = true;
    this.session.send({ type: 'synReply', streamId: this.id, fin: false, headers: toHeaders(headers) });
  }

  /** DATA frames; cb once handed to the transport. Check session.backlog for back-pressure. */
  write(data: Buffer, cb?: () => void): void {
    if (this.closed || this.localEnded || (!this.local && !this.replied)) return void cb?.();
    if (!data.length) return void cb?.();
    for (let off = 0; off < data.length; off += MAX_DATA_CHUNK) {
      const last = off + MAX_DATA_CHUNK >= data.length;
      this.session.send({ type: 'data', streamId: this.id, fin: false, data: data.subarray(off, off + MAX_DATA_CHUNK) }, last ? cb : undefined);
    }
  }

  /** Our half-close: an empty DATA frame with FIN. */
  end(): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.session.send({ type: 'data', streamId: this.id, fin: true, data: Buffer.alloc(0) });
    if (this.remoteEnded) this.finish();
  }

  /** RST_STREAM (CANCEL by default): both directions are over. */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.closed) return;
    this.session.send({ type: 'rstStream', streamId: this.id, status });
    this.finish(status, false);
  }

  /** @internal the peer's FIN */
  remoteEnd(): void {
    if (this.remoteEnded || this.closed) return;
    this.remoteEnded = true;
    this.emit('end');
    if (this.localEnded) this.finish();
  }

  /** @internal the peer's RST_STREAM */
  peerReset(status: number): void {
    this.finish(status, true);
  }

  /** @internal the session is gone */
  gone(): void {
    this.finish(RstStatus.CANCEL, false);
  }

  /** Over: forgotten by the session; 'reset' first when it was reset. */
  private finish(resetStatus?: number, byPeer = false): void {
    if (this.closed) return;
    this.closed = true;
    this.localEnded = this.remoteEnded = true;
    this.session.forget(this);
    if (resetStatus !== undefined) this.emit('reset', resetStatus, byPeer);
    this.emit('close');
  }
}
