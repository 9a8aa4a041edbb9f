// kubelet's port-forward rules (src/kubelet/portforward.ts) and its route, and
// the server side of a connection driven by a client session that behaves as
// kubectl's, with stand-in dialers (shell scripts taking `dial <netns> <port>`);
// the real dialer and kubectl run in test/e2e/kubelet-portforward.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseKubeletRoute, requestAttributes } from '../../../src/kubelet/attributes.js';
import { checkStreamHeaders, forwardErrorMessage, negotiatePortForward, pairRequestId, startPortForwardSession, type PortForwardTarget } from '../../../src/kubelet/portforward.js';
import { duplexTransport, RstStatus, SpdySession, type SpdyStream } from '../../../src/kubelet/spdy.js';
import { getLogger } from '../../../src/log.js';

describe('port-forward', () => {
  it('routes /portForward/{ns}/{pod}[/{uid}], authorized as nodes/proxy', () => {
    expect(parseKubeletRoute('/portForward/default/web')).toEqual({ kind: 'portForward', namespace: 'default', pod: 'web' });
    expect(parseKubeletRoute('/portForward/default/web/1234-uid/')).toEqual({ kind: 'portForward', namespace: 'default', pod: 'web', uid: '1234-uid' });
    expect(parseKubeletRoute('/portForward/default')).toEqual({ kind: 'notFound' });
    expect(parseKubeletRoute('/portForward/default/web/uid/extra')).toEqual({ kind: 'notFound' });
    expect(requestAttributes('POST', '/portForward/default/web', 'n1').map((a) => [a.verb, a.subresource])).toEqual([['create', 'proxy']]);
  });

  it('takes a WebSocket tunnelling SPDY/3.1+portforward.k8s.io or Upgrade: SPDY/3.1 with portforward.k8s.io; refuses as kubelet does', () => {
    expect(negotiatePortForward({ upgrade: 'websocket', 'sec-websocket-protocol': 'SPDY/3.1+portforward.k8s.io' })).toEqual({ kind: 'websocket', protocol: 'SPDY/3.1+portforward.k8s.io' });
    expect(negotiatePortForward({ upgrade: 'WebSocket', 'sec-websocket-protocol': 'v4.channel.k8s.io, SPDY/3.1+portforward.k8s.io' })).toMatchObject({ kind: 'websocket' });
    expect(negotiatePortForward({ upgrade: 'websocket', 'sec-websocket-protocol': 'v4.channel.k8s.io' })).toEqual({ code: 400, message: 'unable to upgrade: no tunneling spdy protocols provided\n' });
    expect(negotiatePortForward({ upgrade: 'websocket', 'sec-websocket-protocol': 'SPDY/3.1+v4.channel.k8s.io' })).toMatchObject({ code: 403, message: expect.stringContaining('client supports [v4.channel.k8s.io], server accepts [portforward.k8s.io]') });
    expect(negotiatePortForward({ upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'portforward.k8s.io' })).toEqual({ kind: 'spdy', protocol: 'portforward.k8s.io' });
    expect(negotiatePortForward({ upgrade: 'SPDY/3.1' })).toMatchObject({ code: 400, message: expect.stringContaining('header X-Stream-Protocol-Version does not exist') });
    expect(negotiatePortForward({ upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'v4.channel.k8s.io' })).toMatchObject({ code: 403, headers: { 'X-Accepted-Stream-Protocol-Versions': 'portforward.k8s.io' } });
    expect(negotiatePortForward({ upgrade: 'h2c' })).toMatchObject({ code: 400 });
  });

  it('checks each stream\'s headers (httpStreamReceived) and pairs them by requestID, or by stream id for old clients', () => {
    expect(checkStreamHeaders({ port: '8080', streamtype: 'data' })).toEqual({ port: 8080, kind: 'data' });
    expect(checkStreamHeaders({ port: '1', streamtype: 'error' })).toEqual({ port: 1, kind: 'error' });
    expect(checkStreamHeaders({ streamtype: 'data' })).toEqual({ error: '"port" header is required' });
    expect(checkStreamHeaders({ port: 'http', streamtype: 'data' })).toEqual({ error: 'unable to parse "http" as a port' });
    expect(checkStreamHeaders({ port: '65536', streamtype: 'data' })).toEqual({ error: 'unable to parse "65536" as a port' });
    expect(checkStreamHeaders({ port: '0', streamtype: 'data' })).toEqual({ error: 'port "0" must be > 0' });
    expect(checkStreamHeaders({ port: '80' })).toEqual({ error: '"streamType" header is required' });
    expect(checkStreamHeaders({ port: '80', streamtype: 'stdin' })).toEqual({ error: 'invalid stream type "stdin"' });
    expect(pairRequestId('7', 'data', 9)).toBe('7');
    expect([pairRequestId(undefined, 'error', 5), pairRequestId(undefined, 'data', 7)]).toEqual(['5', '5']);
  });

  it('error texts are kubelet\'s around containerd\'s', () => {
    const id = 'f'.repeat(64);
    const refused = { code: 3, stderr: 'dial tcp4 127.0.0.1:9999: connect: connection refused\ndial tcp6 [::1]:9999: connect: connection refused\n' };
    expect(forwardErrorMessage(9999, id, refused)).toBe(
      `error forwarding port 9999 to pod ${id}, uid : failed to connect to localhost:9999 inside namespace "${id}", ` +
        'IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6 dial tcp6 [::1]:9999: connect: connection refused ',
    );
    expect(forwardErrorMessage(80, id, { code: 2, stderr: 'setns /run/x/net (network namespace): Invalid argument\n' })).toBe(`error forwarding port 80 to pod ${id}, uid : setns /run/x/net (network namespace): Invalid argument`);
    expect(forwardErrorMessage(80, id, { code: 1, stderr: '' })).toBe(`error forwarding port 80 to pod ${id}, uid : the dialer exited with code 1`);
  });
});

// ------------------------------------------------------- a connection's streams

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-pf-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const log = getLogger('pf-test');
const TARGET: PortForwardTarget = { namespace: 'default', pod: 'web', uid: 'u1', sandboxId: 'a'.repeat(64), netns: '/run/nodelet/sandboxes/x/ns/net' };

function dialer(name: string, body: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return f;
}

async function connection(shimBinary: string, target = TARGET): Promise<{ client: SpdySession; server: SpdySession; close(): Promise<void> }> {
  const listening = net.createServer();
  const accepted = new Promise<net.Socket>((r) => listening.once('connection', r));
  await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()));
  const c = net.connect((listening.address() as net.AddressInfo).port, '127.0.0.1');
  const sock = await accepted;
  const server = startPortForwardSession(duplexTransport(sock), target, { shimBinary, log });
  const client = new SpdySession(duplexTransport(c), { server: false, log });
  return {
    client, server,
    async close() {
      client.close();
      c.destroy();
      sock.destroy();
      await new Promise<void>((r) => listening.close(() => r()));
    },
  };
}

interface ClientPair { error: SpdyStream; data: SpdyStream; errorText: Promise<string>; dataText: Promise<string> }

const text = (s: SpdyStream) =>
  new Promise<string>((resolve) => {
    let b = '';
    s.on('data', (d: Buffer) => (b += d));
    s.once('close', () => resolve(b));
  });

/** kubectl's handleConnection: the error stream (closed for writing at once), then the data stream. */
async function openPair(client: SpdySession, port: number, requestId: string): Promise<ClientPair> {
  const error = client.openStream({ streamtype: 'error', port: String(port), requestid: requestId });
  const errorText = text(error);
  await new Promise((r) => error.once('reply', r));
  error.end();
  const data = client.openStream({ streamtype: 'data', port: String(port), requestid: requestId });
  const dataText = text(data);
  await new Promise((r) => data.once('reply', r));
  // kubectl resets the data stream once it has read the end of it
  data.once('end', () => data.reset());
  return { error, data, errorText, dataText };
}

describe('a port-forward connection (stand-in dialers)', () => {
  it('relays a pair through the dialer (dial <netns> <port>), half-closes both ways, several pairs at once', async () => {
    const args = path.join(tmp, 'args');
    const c = await connection(dialer('echo', `echo "$@" >> ${args}; exec tr a-z A-Z`));
    try {
      const pairs = await Promise.all([openPair(c.client, 8080, '0'), openPair(c.client, 8081, '1')]);
      pairs.forEach((p, i) => {
        p.data.write(Buffer.from(`hello ${i}`));
        p.data.end();
      });
      expect(await Promise.all(pairs.map((p) => p.dataText))).toEqual(['HELLO 0', 'HELLO 1']);
      expect(await Promise.all(pairs.map((p) => p.errorText))).toEqual(['', '']);
      expect(fs.readFileSync(args, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['dial /run/nodelet/sandboxes/x/ns/net 8080', 'dial /run/nodelet/sandboxes/x/ns/net 8081']);
    } finally {
      await c.close();
    }
  });

  it('back-pressure: a dialer that does not read yet holds the client\'s upload (the connection pauses), nothing is lost', async () => {
    const c = await connection(dialer('slow', 'sleep 0.5; exec cat'));
    try {
      const p = await openPair(c.client, 80, '0');
      const upload = Buffer.alloc(6 << 20);
      for (let i = 0; i < upload.length; i += 4) upload.writeUInt32BE(i, i);
      let got = 0;
      const parts: Buffer[] = [];
      p.data.on('data', (b: Buffer) => {
        got += b.length;
        parts.push(b);
      });
      p.data.write(upload);
      p.data.end();
      await p.dataText;
      expect(got).toBe(upload.length);
      expect(Buffer.concat(parts).equals(upload)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('hostNetwork: the dialer stays in the host\'s namespace ("-")', async () => {
    const args = path.join(tmp, 'args-host');
    const c = await connection(dialer('echo-host', `echo "$@" > ${args}; exec cat`), { ...TARGET, netns: undefined });
    try {
      const p = await openPair(c.client, 80, '0');
      p.data.end();
      await p.dataText;
      expect(fs.readFileSync(args, 'utf8')).toBe('dial - 80\n');
    } finally {
      await c.close();
    }
  });

  it('a refused dial: kubelet\'s text on the error stream, even when the client reset the data stream before the dialer\'s exit was seen', async () => {
    const c = await connection(dialer('refused', [
      'echo "dial tcp4 127.0.0.1:$3: connect: connection refused" >&2',
      'echo "dial tcp6 [::1]:$3: connect: connection refused" >&2',
      // stdout closes with the exit (FIN on the data stream, which kubectl answers with a reset) while stderr
      // stays open a little: 'close', and the exit code with it, comes after that reset
      'sleep 0.3 >/dev/null </dev/null &',
      'exit 3',
    ].join('\n')));
    try {
      const p = await openPair(c.client, 9999, '7');
      expect(await p.errorText).toBe(
        `error forwarding port 9999 to pod ${TARGET.sandboxId}, uid : failed to connect to localhost:9999 inside namespace "${TARGET.sandboxId}", ` +
          'IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6 dial tcp6 [::1]:9999: connect: connection refused ',
      );
      expect(c.server.closed).toBe(false);
      // the connection goes on: the next pair works
      const next = await openPair(c.client, 9999, '8');
      expect(await next.errorText).toContain('error forwarding port 9999');
    } finally {
      await c.close();
    }
  });

  it('bad streams are reset; a second stream of the same kind in a pair is reported on its error stream', async () => {
    const c = await connection(dialer('sleeper', 'exec sleep 30'));
    try {
      const bad = c.client.openStream({ streamtype: 'stdin', port: '80', requestid: '0' });
      expect(await new Promise((r) => bad.once('reset', r))).toBe(RstStatus.CANCEL);
      const error = c.client.openStream({ streamtype: 'error', port: '80', requestid: '1' });
      const errorText = text(error);
      await new Promise((r) => error.once('reply', r));
      const dup = c.client.openStream({ streamtype: 'error', port: '80', requestid: '1' });
      await new Promise((r) => dup.once('reset', r));
      error.reset();
      expect(await errorText).toBe('error processing stream for request 1: error stream already assigned');
    } finally {
      await c.close();
    }
  });

  it('the connection going away kills its dialers', async () => {
    const pidFile = path.join(tmp, 'pid');
    const c = await connection(dialer('hold', `echo $$ > ${pidFile}; exec sleep 30`));
    try {
      await openPair(c.client, 80, '0');
      const deadline = Date.now() + 5000;
      while (!fs.existsSync(pidFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      expect(() => process.kill(pid, 0)).not.toThrow();
      c.client.close(); // GOAWAY, socket closed
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      while (alive() && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20));
      expect(alive()).toBe(false);
      expect(c.server.closed).toBe(true);
    } finally {
      await c.close();
    }
  });
});
