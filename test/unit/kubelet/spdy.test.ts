// SPDY/3.1 (src/kubelet/spdy.ts): the codec byte for byte, header compression
// across blocks of one connection, strict rejection of malformed input, and
// two real sessions over a TCP socket on 127.0.0.1 (client and server roles of
// the same code), including data well past SPDY's 64 KiB initial window
// without a single WINDOW_UPDATE — what spdystream peers (kubectl, the API
// server, kubelet) do.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import { configureLogging, getLogger } from '../../../src/log.js';
import { isNodeletError } from '../../../src/errors.js';
import {
  adler32, decodeFrame, decodeHeaderBlock, duplexTransport, encodeFrame, encodeHeaderBlock, FrameReader, FrameType, GoAwayStatus,
  HeaderDecoder, HeaderEncoder, MAX_CONTROL_PAYLOAD, RstStatus, SPDY_DICTIONARY, SpdySession, type Frame, type RawFrame, type SpdyStream,
} from '../../../src/kubelet/spdy.js';

const log = getLogger('spdy-test');
const logged: string[] = [];
beforeEach(() => {
  logged.length = 0;
  configureLogging({ format: 'json', level: 'debug', sink: { write: (l) => void logged.push(l) } });
});
afterEach(() => configureLogging({ level: 'warn', sink: { write: (l) => process.stderr.write(l) } }));

async function decodeAll(raws: RawFrame[], dec: HeaderDecoder): Promise<Frame[]> {
  const out: Frame[] = [];
  for (const r of raws) out.push(await decodeFrame(r, dec));
  return out;
}

function ctl(type: number, flags: number, payload: Buffer, version = 3): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80000000 | (version << 16) | type) >>> 0, 0);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

async function rejects(bytes: Buffer, pattern: RegExp): Promise<void> {
  const dec = new HeaderDecoder();
  try {
    const raws = new FrameReader().push(bytes);
    await decodeAll(raws, dec);
  } catch (e) {
    expect(isNodeletError(e)).toBe(true);
    expect((e as Error).message).toMatch(pattern);
    return;
  } finally {
    dec.close();
  }
  throw new Error(`accepted: ${bytes.toString('hex')}`);
}

describe('the SPDY/3 header dictionary', () => {
  it('is the spec\'s 1423 bytes (spdystream\'s headerDictionary: same adler32 and sha256)', () => {
    expect(SPDY_DICTIONARY.length).toBe(1423);
    expect(adler32(SPDY_DICTIONARY)).toBe(0xe3c6a7c2);
    expect(createHash('sha256').update(SPDY_DICTIONARY).digest('hex')).toBe('51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02');
    // and the checksum is zlib's own
    expect(zlib.deflateSync(Buffer.from('x'), { dictionary: SPDY_DICTIONARY }).readUInt32BE(2)).toBe(adler32(SPDY_DICTIONARY));
  });
});

describe('frames', () => {
  const frames: Frame[] = [
    { type: 'synStream', streamId: 1, associatedTo: 0, priority: 0, fin: false, unidirectional: false, headers: { streamtype: ['error'], port: ['8080'], requestid: ['0'] } },
    { type: 'synReply', streamId: 1, fin: false, headers: {} },
    { type: 'synStream', streamId: 3, associatedTo: 0, priority: 5, fin: true, unidirectional: false, headers: { streamtype: ['data'], port: ['8080'], requestid: ['0'], multi: ['a', 'b'] } },
    { type: 'headers', streamId: 3, fin: true, headers: { 'x-extra': ['1'] } },
    { type: 'data', streamId: 3, fin: false, data: Buffer.from('GET / HTTP/1.0\r\n\r\n') },
    { type: 'data', streamId: 3, fin: true, data: Buffer.alloc(0) },
    { type: 'rstStream', streamId: 3, status: RstStatus.CANCEL },
    { type: 'settings', clear: true, entries: [{ flags: 1, id: 7, value: 65536 }, { flags: 0, id: 4, value: 100 }] },
    { type: 'ping', id: 1 },
    { type: 'windowUpdate', streamId: 0, delta: 65536 },
    { type: 'windowUpdate', streamId: 3, delta: 0x7fffffff },
    { type: 'synReply', streamId: 3, fin: true, headers: { status: ['200'] } },
    { type: 'goAway', lastGoodStreamId: 3, status: GoAwayStatus.OK },
  ];

  it('round-trip through encode → split anywhere → FrameReader → decode, one compression context per direction', async () => {
    const enc = new HeaderEncoder();
    const wire = Buffer.concat(frames.map((f) => encodeFrame(f, enc)));
    // whole, then byte by byte, then in odd slices: the same frames
    for (const step of [wire.length, 1, 7, 333]) {
      const reader = new FrameReader();
      const dec = new HeaderDecoder();
      const raws: RawFrame[] = [];
      for (let i = 0; i < wire.length; i += step) raws.push(...reader.push(wire.subarray(i, i + step)));
      expect(reader.buffered).toBe(0);
      expect(await decodeAll(raws, dec)).toEqual(frames);
      dec.close();
    }
  });

  it('the wire format: control bit, version 3, type, flags, 24-bit length; data frames carry the stream id', () => {
    const enc = new HeaderEncoder();
    expect(encodeFrame({ type: 'ping', id: 7 }, enc).toString('hex')).toBe('80030006' + '00000004' + '00000007');
    expect(encodeFrame({ type: 'rstStream', streamId: 5, status: RstStatus.REFUSED_STREAM }, enc).toString('hex')).toBe('80030003' + '00000008' + '00000005' + '00000003');
    expect(encodeFrame({ type: 'data', streamId: 5, fin: true, data: Buffer.from('hi') }, enc).toString('hex')).toBe('00000005' + '01000002' + '6869');
    expect(encodeFrame({ type: 'goAway', lastGoodStreamId: 9, status: GoAwayStatus.PROTOCOL_ERROR }, enc).toString('hex')).toBe('80030007' + '00000008' + '00000009' + '00000001');
  });

  it('header blocks: u32 count, u32-length names and NUL-joined values; names lower-cased', () => {
    const b = encodeHeaderBlock({ StreamType: 'data', v: ['a', 'b'] });
    expect(b.toString('hex')).toBe('00000002' + '0000000a' + Buffer.from('streamtype').toString('hex') + '00000004' + Buffer.from('data').toString('hex') + '00000001' + '76' + '00000003' + '610062');
    expect(decodeHeaderBlock(b)).toEqual({ streamtype: ['data'], v: ['a', 'b'] });
  });

  it('our header blocks are one zlib stream (dictionary) readable by zlib itself; each block ends at a sync-flush marker', () => {
    const enc = new HeaderEncoder();
    const blocks = [{ a: '1' }, { port: '8080', streamtype: 'data' }, {}, { big: 'x'.repeat(70_000) }].map((h) => encodeHeaderBlock(h));
    const z = blocks.map((b) => enc.encode(b));
    expect(z[0]!.subarray(0, 2).toString('hex')).toBe('78bb'); // deflate, FDICT
    expect(z[0]!.readUInt32BE(2)).toBe(adler32(SPDY_DICTIONARY));
    // Go's flate returns a stored block's bytes only when it reads the next block header: the empty stored block
    for (const b of z) expect(b.subarray(-5).toString('hex')).toBe('000000ffff');
    const plain = zlib.inflateSync(Buffer.concat(z), { dictionary: SPDY_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(plain.equals(Buffer.concat(blocks))).toBe(true);
  });

  it('decodes a peer\'s blocks compressed as Go does (one deflater with the dictionary, Z_SYNC_FLUSH per block)', async () => {
    const deflater = zlib.createDeflate({ dictionary: SPDY_DICTIONARY, level: 9 });
    const flushBlock = (b: Buffer) =>
      new Promise<Buffer>((resolve) => {
        deflater.write(b);
        deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve(deflater.read() ?? Buffer.alloc(0)));
      });
    const headers = [0, 1, 2, 3, 4].map((i) => ({ streamtype: [i % 2 ? 'data' : 'error'], port: ['8080'], requestid: [String(i >> 1)] }));
    const z: Buffer[] = [];
    for (const h of headers) z.push(await flushBlock(encodeHeaderBlock(h)));
    deflater.close();
    // later blocks refer back to earlier ones: they are shorter and only decodable in order, on one stream
    expect(z[2]!.length).toBeLessThan(z[0]!.length);
    const dec = new HeaderDecoder();
    for (let i = 0; i < z.length; i++) expect(await dec.decode(z[i]!)).toEqual(headers[i]);
    dec.close();
    const fresh = new HeaderDecoder();
    await expect(fresh.decode(z[2]!)).rejects.toMatchObject({ code: 'ERR_SPDY_HEADER_BLOCK' });
    fresh.close();
  });

  it('rejects malformed frames with a clear error', async () => {
    await rejects(ctl(FrameType.PING, 0, Buffer.from('00000001', 'hex'), 2), /unsupported version 2/);
    await rejects(ctl(5, 0, Buffer.alloc(4)), /unknown control frame type 5/);
    await rejects(ctl(10, 0, Buffer.alloc(4)), /unknown control frame type 10/);
    await rejects(ctl(FrameType.RST_STREAM, 0, Buffer.alloc(7)), /RST_STREAM frame of 7 bytes \(8\)/);
    await rejects(ctl(FrameType.RST_STREAM, 0, Buffer.from('0000000100000000', 'hex')), /RST_STREAM with status 0/);
    await rejects(ctl(FrameType.RST_STREAM, 0, Buffer.from('0000000000000005', 'hex')), /RST_STREAM frame on stream 0/);
    await rejects(ctl(FrameType.PING, 0, Buffer.alloc(4)), /PING with id 0/);
    await rejects(ctl(FrameType.PING, 1, Buffer.from('00000001', 'hex')), /PING frame with unknown flags 0x1/);
    await rejects(ctl(FrameType.WINDOW_UPDATE, 0, Buffer.from('0000000100000000', 'hex')), /WINDOW_UPDATE with delta 0/);
    await rejects(ctl(FrameType.WINDOW_UPDATE, 0, Buffer.from('0000000180000000', 'hex')), /WINDOW_UPDATE with delta 2147483648/);
    await rejects(ctl(FrameType.SETTINGS, 0, Buffer.from('00000002' + '0000000700010000', 'hex')), /SETTINGS frame of 12 bytes for 2 entries/);
    await rejects(ctl(FrameType.GOAWAY, 0, Buffer.alloc(4)), /GOAWAY frame of 4 bytes \(8\)/);
    await rejects(ctl(FrameType.SYN_STREAM, 0, Buffer.alloc(6)), /SYN_STREAM frame of 6 bytes \(at least 10\)/);
    await rejects(ctl(FrameType.SYN_STREAM, 4, Buffer.alloc(10)), /SYN_STREAM frame with unknown flags 0x4/);
    await rejects(ctl(FrameType.SYN_REPLY, 0, Buffer.from('00000001' + 'deadbeef', 'hex')), /cannot decompress a header block/);
    await rejects(ctl(FrameType.SYN_STREAM, 0, Buffer.alloc(MAX_CONTROL_PAYLOAD + 1)), /control frame of type 1 is 16385 bytes \(at most 16384\)/);
    await rejects(Buffer.from('00000000' + '00000000', 'hex'), /data frame on stream 0/);
    await rejects(Buffer.from('00000001' + '02000000', 'hex'), /data frame with unknown flags 0x2/);
  });

  it('rejects bad header blocks: truncated, upper-case, duplicate or empty names, trailing bytes, a zip bomb', async () => {
    const ok = encodeHeaderBlock({ port: '80' });
    expect(() => decodeHeaderBlock(ok.subarray(0, ok.length - 1))).toThrow(/header block truncated/);
    expect(() => decodeHeaderBlock(Buffer.concat([ok, Buffer.from([0])]))).toThrow(/1 bytes after its 1 headers/);
    const raw = (names: string[]) => Buffer.concat([Buffer.from([0, 0, 0, names.length]), ...names.flatMap((n) => [Buffer.from([0, 0, 0, n.length]), Buffer.from(n), Buffer.from([0, 0, 0, 1]), Buffer.from('v')])]);
    expect(() => decodeHeaderBlock(raw(['Port']))).toThrow(/header name "Port" is not lower-case/);
    expect(() => decodeHeaderBlock(raw(['port', 'port']))).toThrow(/duplicate header "port"/);
    expect(() => decodeHeaderBlock(raw(['']))).toThrow(/empty header name/);
    expect(() => decodeHeaderBlock(Buffer.from('ffffffff', 'hex'))).toThrow(/claims 4294967295 headers in 4 bytes/);
    // 16 KiB of compressed zeros inflate to far more than a header block may be
    const bomb = zlib.deflateSync(Buffer.alloc(20 << 20), { dictionary: SPDY_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, 16000);
    const dec = new HeaderDecoder();
    await expect(dec.decode(bomb)).rejects.toThrow(/inflates to more than 65536 bytes/);
    dec.close();
  });
});

// ----------------------------------------------------------------- sessions

interface Pair {
  client: SpdySession;
  server: SpdySession;
  serverStreams: SpdyStream[];
  clientSocket: net.Socket;
  /** frame types seen on the wire in each direction */
  wire: { toServer: string[]; toClient: string[] };
  close(): Promise<void>;
}

/** Frame names in a byte stream (an observer with its own reader and inflater). */
function observe(sock: net.Socket, into: string[]): void {
  const reader = new FrameReader();
  const dec = new HeaderDecoder();
  let chain = Promise.resolve();
  let broken = false;
  sock.on('data', (b: Buffer) => {
    if (broken) return;
    let raws: RawFrame[];
    try {
      raws = reader.push(b);
    } catch {
      broken = true; // a test's deliberately bad bytes
      return into.push('malformed');
    }
    for (const r of raws) chain = chain.then(async () => void into.push((await Promise.resolve(decodeFrame(r, dec)).catch(() => ({ type: 'malformed' }))).type));
  });
  sock.on('close', () => void chain.then(() => dec.close()));
}

async function sessionPair(onStream: (s: SpdyStream) => void): Promise<Pair> {
  const serverStreams: SpdyStream[] = [];
  const wire = { toServer: [] as string[], toClient: [] as string[] };
  let server!: SpdySession;
  const listening = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => listening.once('connection', resolve));
  await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()));
  const clientSocket = net.connect((listening.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => clientSocket.once('connect', () => r()));
  const serverSocket = await accepted;
  observe(serverSocket, wire.toServer);
  observe(clientSocket, wire.toClient);
  server = new SpdySession(duplexTransport(serverSocket), { server: true, log, onStream: (s) => { serverStreams.push(s); onStream(s); } });
  const client = new SpdySession(duplexTransport(clientSocket), { server: false, log });
  return {
    client, server, serverStreams, clientSocket, wire,
    async close() {
      client.close();
      server.close();
      clientSocket.destroy();
      serverSocket.destroy();
      await new Promise<void>((r) => listening.close(() => r()));
    },
  };
}

const echo = (s: SpdyStream) => {
  s.reply();
  s.on('data', (b: Buffer) => s.write(b));
  s.on('end', () => s.end());
};

function collect(s: SpdyStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (b: Buffer) => parts.push(b));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('reset', (status: number) => reject(new Error(`reset ${status}`)));
  });
}

const until = async (f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('sessions over a socket', () => {
  it('streams echo MiBs both ways past the 64 KiB initial window, with no WINDOW_UPDATE from either side (spdystream\'s flow control: none)', async () => {
    const p = await sessionPair(echo);
    try {
      const payloads = [0, 1, 2].map((i) => Buffer.alloc((1 << 20) + i, 97 + i));
      const results = payloads.map((data, i) => {
        const s = p.client.openStream({ streamtype: 'data', port: '80', requestid: String(i) });
        const got = collect(s);
        s.once('reply', () => {
          s.write(data);
          s.end();
        });
        return got;
      });
      const got = await Promise.all(results);
      got.forEach((g, i) => expect(g.equals(payloads[i]!)).toBe(true));
      expect(p.serverStreams.map((s) => [s.id, s.header('requestid')])).toEqual([[1, '0'], [3, '1'], [5, '2']]);
      await until(() => p.server.openStreams === 0 && p.client.openStreams === 0);
      expect(p.wire.toServer).not.toContain('windowUpdate');
      expect(p.wire.toClient).not.toContain('windowUpdate');
      expect(p.wire.toClient.filter((t) => t === 'synReply')).toHaveLength(3);
    } finally {
      await p.close();
    }
  });

  it('WINDOW_UPDATE and SETTINGS from the peer are checked and ignored; data keeps flowing; PINGs are echoed', async () => {
    const p = await sessionPair(echo);
    try {
      const s = p.client.openStream({ port: '1' });
      const got = collect(s);
      await new Promise((r) => s.once('reply', r));
      // the peer shrinks the window to 1 byte and never opens it: nothing waits for it
      p.clientSocket.write(encodeFrame({ type: 'settings', clear: false, entries: [{ flags: 0, id: 7, value: 1 }] }, new HeaderEncoder()));
      p.clientSocket.write(encodeFrame({ type: 'windowUpdate', streamId: s.id, delta: 1 }, new HeaderEncoder()));
      p.clientSocket.write(encodeFrame({ type: 'windowUpdate', streamId: 0, delta: 1 }, new HeaderEncoder()));
      s.write(Buffer.alloc(300_000, 1));
      s.end();
      expect((await got).length).toBe(300_000);
      p.client.ping(11);
      await until(() => p.wire.toClient.includes('ping'));
      expect(p.server.closed).toBe(false);
    } finally {
      await p.close();
    }
  });

  it('a RST_STREAM from the peer resets the stream (reset, byPeer); data crossing it is dropped', async () => {
    const resets: [number, boolean][] = [];
    const p = await sessionPair((s) => {
      s.reply();
      s.on('reset', (status: number, byPeer: boolean) => resets.push([status, byPeer]));
    });
    try {
      const s = p.client.openStream({ port: '1' });
      await new Promise((r) => s.once('reply', r));
      s.reset(RstStatus.CANCEL);
      await until(() => resets.length === 1);
      expect(resets).toEqual([[RstStatus.CANCEL, true]]);
      // a data frame for the reset stream (it crossed the RST on the wire) is not an error
      p.clientSocket.write(encodeFrame({ type: 'data', streamId: s.id, fin: false, data: Buffer.from('late') }, new HeaderEncoder()));
      await new Promise((r) => setTimeout(r, 50));
      expect(p.server.closed).toBe(false);
      expect(p.server.stats.ignored).toBe(1);
    } finally {
      await p.close();
    }
  });

  it('a malformed frame closes the connection: GOAWAY PROTOCOL_ERROR, socket closed, one logged error, nothing thrown', async () => {
    const p = await sessionPair(echo);
    try {
      const closed = new Promise<unknown>((r) => p.server.once('close', r));
      const streamReset = new Promise((r) => p.client.openStream({ port: '1' }).once('reset', r));
      await until(() => p.serverStreams.length === 1);
      p.clientSocket.write(ctl(FrameType.PING, 0, Buffer.alloc(4), 2)); // SPDY/2
      const err = await closed;
      expect(err).toMatchObject({ code: 'ERR_SPDY_PROTOCOL', message: expect.stringContaining('unsupported version 2') });
      await streamReset; // the client saw the connection go
      await until(() => p.wire.toClient.includes('goAway'));
      const errors = logged.map((l) => JSON.parse(l)).filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ msg: 'SPDY connection closed: protocol error', code: 'ERR_SPDY_PROTOCOL' });
      expect(p.serverStreams[0]!.isClosed).toBe(true);
    } finally {
      await p.close();
    }
  });

  it('stream ids must grow and have the client\'s parity', async () => {
    for (const [id, why] of [[2, /stream 2, which has our parity/], [1, /stream 1 opened after stream 3/]] as const) {
      const p = await sessionPair(echo);
      try {
        const closed = new Promise<unknown>((r) => p.server.once('close', r));
        const enc = new HeaderEncoder();
        p.clientSocket.write(encodeFrame({ type: 'synStream', streamId: 3, associatedTo: 0, priority: 0, fin: false, unidirectional: false, headers: {} }, enc));
        p.clientSocket.write(encodeFrame({ type: 'synStream', streamId: id, associatedTo: 0, priority: 0, fin: false, unidirectional: false, headers: {} }, enc));
        expect(await closed).toMatchObject({ message: expect.stringMatching(why) });
      } finally {
        await p.close();
      }
    }
  });

  it('more streams than allowed are refused (RST REFUSED_STREAM), the session goes on', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const sock = await accepted;
    const s = new SpdySession(duplexTransport(sock), { server: true, log, maxStreams: 1, onStream: echo });
    const client = new SpdySession(duplexTransport(c), { server: false, log });
    try {
      const a = client.openStream({ n: '1' });
      const replied = new Promise((r) => a.once('reply', r));
      const b = client.openStream({ n: '2' });
      const status = await new Promise((r) => b.once('reset', r));
      expect(status).toBe(RstStatus.REFUSED_STREAM);
      await replied;
      expect(s.closed).toBe(false);
    } finally {
      client.close();
      s.close();
      c.destroy();
      sock.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
