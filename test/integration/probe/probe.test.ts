// Probes against real servers on 127.0.0.1 (port 0). Run inside `unshare --net`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { runProbe, type ProbeContext } from '../../../src/probe/probers.js';
import type { ExecResult } from '../../../src/runtime/types.js';

// A runtime whose exec runs the command on the host: the probe's own logic (timeouts, exit codes) is what is tested.
const hostRuntime = {
  async execSync(_id: string, argv: string[], opts?: { timeoutMs?: number }): Promise<ExecResult> {
    const r = spawnSync(argv[0]!, argv.slice(1), { timeout: opts?.timeoutMs, killSignal: 'SIGKILL' });
    const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
    return { exitCode: r.status ?? 137, stdout: r.stdout ?? Buffer.alloc(0), stderr: r.stderr ?? Buffer.alloc(0), timedOut };
  },
};

let server: http.Server;
let port = 0;
let seenHeaders: http.IncomingHttpHeaders = {};
let grpcServer: http2.Http2Server;
let grpcPort = 0;
let health: Record<string, number> = { '': 1, bad: 2 };

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seenHeaders = req.headers;
    if (req.url === '/ok') return res.end('fine');
    if (req.url === '/500') return (res.statusCode = 500), res.end('broken');
    if (req.url === '/redirect') return res.writeHead(302, { location: '/ok' }).end();
    if (req.url === '/redirect-loop') return res.writeHead(302, { location: '/redirect-loop' }).end();
    if (req.url === '/offhost') return res.writeHead(302, { location: 'http://192.0.2.1/x' }).end('moved');
    if (req.url === '/redirect-500') return res.writeHead(302, { location: '/500' }).end();
    if (req.url === '/slow') return setTimeout(() => res.end('late'), 3000);
    if (req.url === '/big') return res.end('x'.repeat(50_000));
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;

  grpcServer = http2.createServer();
  grpcServer.on('stream', (stream, headers) => {
    if (headers[':path'] !== '/grpc.health.v1.Health/Check') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => {
      const b = Buffer.concat(chunks);
      const service = b.length > 5 ? b.subarray(7).toString() : '';
      const st = health[service];
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(st === undefined ? { 'grpc-status': '5', 'grpc-message': 'unknown service' } : { 'grpc-status': '0' }));
      if (st === undefined) return stream.end();
      const msg = Buffer.from([0x08, st]);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(msg.length, 1);
      stream.end(Buffer.concat([head, msg]));
    });
  });
  await new Promise<void>((r) => grpcServer.listen(0, '127.0.0.1', r));
  grpcPort = (grpcServer.address() as AddressInfo).port;
});

afterAll(async () => {
  server?.closeAllConnections?.();
  await new Promise((r) => server?.close(r));
  await new Promise((r) => grpcServer?.close(r));
});

const ctx = (): ProbeContext => ({ podIP: '127.0.0.1', containerId: 'c', runtime: hostRuntime, ports: [{ name: 'http', containerPort: port }] });

describe('httpGet probe: the HTTP/1.1 wire forms a server may answer with', () => {
  // A raw TCP server: each path names how it answers, so the client's parsing is what is tested.
  const answers: Record<string, (s: net.Socket, req: string) => void> = {
    split: (s) => { s.write('HTTP/1.1 200 OK\r\nCont'); setTimeout(() => s.write('ent-Length: 5\r\n\r\nhe'), 20); setTimeout(() => s.end('llo'), 40); },
    chunked: (s) => { s.write('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'); setTimeout(() => s.end('4;x=y\r\ndefg\r\n0\r\n\r\n'), 20); },
    keepalive: (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), // never closes: Content-Length ends it
    http10: (s) => s.end('HTTP/1.0 200 OK\r\n\r\nuntil close'),
    nocontent: (s) => s.end('HTTP/1.1 204 No Content\r\n\r\n'),
    continue: (s) => s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    notfound: (s) => s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found'),
    hangup: (s) => s.end(),
    garbage: (s) => s.end('garbage\r\n\r\n'),
    reset: (s) => s.resetAndDestroy(),
    echo: (s, req) => { const b = req.replace(/\r\n/g, '|'); s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`); },
  };
  let raw: net.Server;
  let rawPort = 0;
  beforeAll(async () => {
    raw = net.createServer((s) => {
      let buf = '';
      s.on('error', () => {});
      s.on('data', (d) => {
        buf += d;
        if (buf.includes('\r\n\r\n')) answers[buf.split(' ')[1]!.slice(1)]!(s, buf);
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    rawPort = (raw.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => raw.close(() => r())));
  const probe = (path: string, extra: object = {}) =>
    runProbe({ httpGet: { path, port: rawPort, ...extra }, timeoutSeconds: 1 }, ctx());

  it('reads split headers, chunked bodies, Content-Length on a kept-open connection, HTTP/1.0 until close, 204 and 1xx', async () => {
    expect(await probe('/split')).toEqual({ result: 'success', output: 'hello' });
    expect(await probe('/chunked')).toEqual({ result: 'success', output: 'abcdefg' });
    expect(await probe('/keepalive')).toEqual({ result: 'success', output: 'ok' });
    expect(await probe('/http10')).toEqual({ result: 'success', output: 'until close' });
    expect((await probe('/nocontent')).result).toBe('success');
    expect(await probe('/continue')).toEqual({ result: 'success', output: 'ok' });
    expect(await probe('/notfound')).toEqual({ result: 'failure', output: 'HTTP probe failed with statuscode: 404, body: not found' });
  });

  it('a hang-up, garbage or a reset is a failure naming the URL', async () => {
    for (const p of ['/hangup', '/garbage', '/reset']) {
      const r = await probe(p);
      expect(r.result, p).toBe('failure');
      expect(r.output, p).toContain(`http://127.0.0.1:${rawPort}${p}`);
    }
  });

  it('sends Host, kube-probe User-Agent, Accept and the probe\'s headers (which override ours) on one request', async () => {
    const r = await probe('/echo', { httpHeaders: [{ name: 'X-A', value: 'b' }, { name: 'user-agent', value: 'ua' }, { name: 'Host', value: 'h.example' }] });
    expect(r.result).toBe('success');
    const lines = r.output.split('|');
    expect(lines[0]).toBe('GET /echo HTTP/1.1');
    expect(lines).toEqual(expect.arrayContaining(['Host: h.example', 'user-agent: ua', 'Accept: */*', 'X-A: b']));
    expect(lines.filter((l) => /^user-agent:/i.test(l))).toHaveLength(1);
  });
});

describe('httpGet probe', () => {
  it('2xx succeeds, with kube-probe User-Agent and custom headers', async () => {
    const r = await runProbe({ httpGet: { path: '/ok', port: 'http', httpHeaders: [{ name: 'X-Check', value: '1' }] }, timeoutSeconds: 1 }, ctx());
    expect(r).toEqual({ result: 'success', output: 'fine' });
    expect(seenHeaders['user-agent']).toMatch(/^kube-probe\/1\.\d+$/);
    expect(seenHeaders['x-check']).toBe('1');
  });
  it('overrides User-Agent via httpHeaders', async () => {
    await runProbe({ httpGet: { path: '/ok', port }, timeoutSeconds: 1 }, { ...ctx(), ports: [] });
    await runProbe({ httpGet: { path: '/ok', port, httpHeaders: [{ name: 'user-agent', value: 'mine' }] } }, ctx());
    expect(seenHeaders['user-agent']).toBe('mine');
  });
  it('500 fails with the status code and body', async () => {
    const r = await runProbe({ httpGet: { path: '/500', port }, timeoutSeconds: 1 }, ctx());
    expect(r.result).toBe('failure');
    expect(r.output).toBe('HTTP probe failed with statuscode: 500, body: broken');
  });
  it('follows same-host redirects; stops at another host with a warning (kubelet probe.Warning: a success + ProbeWarning)', async () => {
    expect((await runProbe({ httpGet: { path: '/redirect', port } }, ctx())).result).toBe('success');
    expect((await runProbe({ httpGet: { path: '/redirect-500', port } }, ctx())).result).toBe('failure');
    const off = await runProbe({ httpGet: { path: '/offhost', port } }, ctx());
    expect(off).toEqual({ result: 'warning', output: 'Probe terminated redirects, Response body: moved' });
    const loop = await runProbe({ httpGet: { path: '/redirect-loop', port } }, ctx());
    expect(loop).toMatchObject({ result: 'failure', output: expect.stringMatching(/stopped after 10 redirects$/) });
  });
  it('times out after timeoutSeconds', async () => {
    const t = Date.now();
    const r = await runProbe({ httpGet: { path: '/slow', port }, timeoutSeconds: 1 }, ctx());
    expect(r.result).toBe('failure');
    expect(r.output).toMatch(/deadline exceeded/);
    expect(Date.now() - t).toBeLessThan(2000);
  });
  it('truncates the body to 10 KiB', async () => {
    const r = await runProbe({ httpGet: { path: '/big', port } }, ctx());
    expect(r.result).toBe('success');
    expect(r.output.length).toBe(10 * 1024);
  });
  it('connection refused and unknown named port fail', async () => {
    const closed = await freePort();
    expect((await runProbe({ httpGet: { path: '/', port: closed } }, ctx())).output).toMatch(/ECONNREFUSED/);
    expect((await runProbe({ httpGet: { path: '/', port: 'metrics' } }, ctx())).output).toMatch(/couldn't find port "metrics"/);
  });
});

describe('httpGet over HTTPS', () => {
  it('does not verify the certificate, like kubelet', async () => {
    const dir = mkdtempSync('/dev/shm/nodelet-test-');
    try {
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=probe', '-days', '1', '-keyout', `${dir}/k`, '-out', `${dir}/c`]);
      if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
      const srv = https.createServer({ key: readFileSync(`${dir}/k`), cert: readFileSync(`${dir}/c`) }, (req, res) => res.end(req.url));
      await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
      const p = (srv.address() as AddressInfo).port;
      try {
        expect(await runProbe({ httpGet: { path: '/tls', port: p, scheme: 'HTTPS' } }, ctx())).toEqual({ result: 'success', output: '/tls' });
        expect((await runProbe({ httpGet: { path: '/tls', port: p, scheme: 'HTTP' } }, ctx())).result).toBe('failure');
      } finally {
        await new Promise((ok) => srv.close(ok));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tcpSocket probe', () => {
  it('succeeds on an open port, fails on a closed one', async () => {
    expect((await runProbe({ tcpSocket: { port } }, ctx())).result).toBe('success');
    const r = await runProbe({ tcpSocket: { port: await freePort() } }, ctx());
    expect(r.result).toBe('failure');
    expect(r.output).toMatch(/^dial tcp 127.0.0.1:\d+: .*ECONNREFUSED/);
  });
});

describe('grpc probe', () => {
  it('SERVING succeeds; NOT_SERVING and unknown service fail', async () => {
    expect(await runProbe({ grpc: { port: grpcPort } }, ctx())).toEqual({ result: 'success', output: '' });
    const bad = await runProbe({ grpc: { port: grpcPort, service: 'bad' } }, ctx());
    expect(bad).toEqual({ result: 'failure', output: 'service unhealthy (responded with "NOT_SERVING")' });
    const unknown = await runProbe({ grpc: { port: grpcPort, service: 'nope' } }, ctx());
    expect(unknown.result).toBe('failure');
    expect(unknown.output).toMatch(/code = 5/);
    health = { '': 2 };
    expect((await runProbe({ grpc: { port: grpcPort } }, ctx())).result).toBe('failure');
  });
  it('fails against a non-gRPC port and a closed port', async () => {
    expect((await runProbe({ grpc: { port }, timeoutSeconds: 1 }, ctx())).result).toBe('failure');
    expect((await runProbe({ grpc: { port: await freePort() }, timeoutSeconds: 1 }, ctx())).result).toBe('failure');
  });
});

describe('exec probe', () => {
  it('exit 0 succeeds, non-zero fails with output, timeout fails', async () => {
    expect(await runProbe({ exec: { command: ['sh', '-c', 'echo up'] } }, ctx())).toEqual({ result: 'success', output: 'up\n' });
    expect(await runProbe({ exec: { command: ['sh', '-c', 'echo down >&2; exit 3'] } }, ctx())).toEqual({ result: 'failure', output: 'down\n' });
    const t = Date.now();
    const r = await runProbe({ exec: { command: ['sleep', '5'] }, timeoutSeconds: 1 }, ctx());
    expect(r.result).toBe('failure');
    expect(r.output).toMatch(/timed out after 1s/);
    expect(Date.now() - t).toBeLessThan(3000);
  });
  it('runtime errors are unknown', async () => {
    const r = await runProbe({ exec: { command: ['true'] } }, { ...ctx(), runtime: { execSync: async () => { throw new Error('container not running'); } } });
    expect(r).toEqual({ result: 'unknown', output: 'container not running' });
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}
