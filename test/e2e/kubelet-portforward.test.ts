// `kubectl port-forward` (the real v1.36 kubectl) to a pod of a real
// `nodelet daemon --kubeconfig` through the real kube-apiserver: kubectl's
// WebSocket (SPDY/3.1+portforward.k8s.io) is passed through to the node, which
// declares ExtendWebSocketsToKubelet; with
// --feature-gates=ExtendWebSocketsToKubelet=false the API server tunnels it
// and speaks SPDY/3.1 to the node on a plain upgrade. The pod's server listens
// on 127.0.0.1 of the pod's own network namespace only, so every byte went
// through the node's dial inside that namespace.
// Run as root in a network namespace of its own:
//   unshare --net -- bash -c 'ip link set lo up && exec npx vitest run test/e2e/kubelet-portforward.test.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { leakedProcesses, waitUntil, BUSYBOX } from './helpers.js';
import { clusterNode, sh, streamingRequests as streamingRequestsFor } from './cluster-node.js';

const NODE = 'pf-a';
/** the node's InternalIP, on lo of this test's network namespace (kubelet-api.test.ts does the same) */
const NODE_IP = '10.253.253.2';
/** /big: 4 000 000 bytes, many SPDY data frames and well past every window */
const BIG = Buffer.from('0123456789abcdef\n'.repeat(Math.ceil(4_000_000 / 17))).subarray(0, 4_000_000);
// PF_DEBUG=1: the daemon logs at debug level (streams, dialers), shown when kubectl's error does not come
const cluster = clusterNode({ node: NODE, ip: NODE_IP, testFile: 'test/e2e/kubelet-portforward.test.ts', debug: !!process.env.PF_DEBUG });
const { kubectl } = cluster;
let sandboxId: string;
const forwards: Forward[] = [];

interface Forward {
  proc: ChildProcess;
  /** remote port → local port */
  local: Map<number, number>;
  out(): string;
  /** stderr, klog's \" unescaped */
  err(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** `kubectl port-forward pod/web :P …`: resolves once kubectl listens on every port. */
async function portForward(remotePorts: number[]): Promise<Forward> {
  const proc = spawn(path.join(cluster.cp.binDir, 'kubectl'), ['--kubeconfig', cluster.cp.kubeconfig, 'port-forward', 'pod/web', ...remotePorts.map((p) => `:${p}`)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const f: Forward = {
    proc, local: new Map(), out: () => out, err: () => err.replace(/\\"/g, '"'), exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  forwards.push(f);
  await waitUntil(() => {
    for (const m of out.matchAll(/^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$/gm)) f.local.set(Number(m[2]), Number(m[1]));
    if (proc.exitCode !== null) throw new Error(`kubectl port-forward exited ${proc.exitCode}: ${err}`);
    return remotePorts.every((p) => f.local.has(p)) || undefined;
  }, 30_000, `kubectl port-forward ${remotePorts.join(' ')} listening\n${err}`);
  return f;
}

/** GET through a local port: status and body */
function get(port: number, p: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: 30_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} on :${port} timed out`)));
    req.on('error', reject);
  });
}

/** A raw TCP conversation: write, optionally hold the connection open, read to EOF. */
function rawRequest(port: number, text: string): { socket: net.Socket; response: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(text);
  const response = new Promise<string>((resolve, reject) => {
    let b = '';
    socket.on('data', (d) => (b += d));
    socket.on('end', () => resolve(b));
    socket.on('error', reject);
  });
  return { socket, response };
}

/** apiserver_websocket_streaming_requests_total for port-forward, by proxy_type */
const streamingRequests = () => streamingRequestsFor(kubectl, 'portforward');

/** kubectl's report of an error on a connection's error stream */
async function kubectlError(f: Forward): Promise<void> {
  try {
    await waitUntil(() => /an error occurred forwarding/.test(f.err()) || undefined, 20_000, 'kubectl\'s error');
  } catch (e) {
    const node = cluster.daemon.proc.stderr().split('\n').filter((l) => /kubelet|spdy|port-forward/i.test(l)).slice(-40).join('\n');
    throw new Error(`${(e as Error).message}\n--- kubectl:\n${f.out()}${f.err()}\n--- node:\n${node}`);
  }
}

const node = async () => JSON.parse(await kubectl(['get', 'node', NODE, '-o', 'json']));

beforeAll(async () => {
  await cluster.start();
  // httpd on 127.0.0.1 of the pod's network namespace only: reachable through the node's dial and nothing else
  await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: web }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'mkdir /www && echo "hello from $(hostname)" > /www/index.html && yes 0123456789abcdef | head -c 4000000 > /www/big && exec httpd -f -p 127.0.0.1:8080 -h /www']
      readinessProbe:
        exec: { command: [wget, -q, -O, /dev/null, 'http://127.0.0.1:8080/'] }
        periodSeconds: 1
`);
  await kubectl(['wait', '--for=condition=Ready', 'pod/web', '--timeout=90s']);
  const sandboxes = fs.readdirSync(path.join(cluster.env.runRoot, 'runtime', 'sandboxes'));
  expect(sandboxes).toHaveLength(1);
  sandboxId = sandboxes[0]!;
}, 600_000);

afterAll(async () => {
  for (const f of forwards) await f.stop().catch(() => undefined);
  // no dialer (nor anything else of the node) outlives the daemon and its pods
  const processes = () => leakedProcesses(cluster.env.dir).map((p) => `process ${p}: ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
  expect(await cluster.teardown({ afterDaemonStop: processes })).toEqual([]);
}, 240_000);

describe('kubectl port-forward through the API server', () => {
  it('the node declares ExtendWebSocketsToKubelet; nothing listens on 8080 outside the pod; the node refuses plain requests and unknown pods', async () => {
    expect((await node()).status.declaredFeatures).toContain('ExtendWebSocketsToKubelet');
    const host = await new Promise<string>((resolve) => net.connect(8080, '127.0.0.1').once('connect', () => resolve('open')).once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error')));
    expect(host).toBe('ECONNREFUSED');
    const pki = path.join(cluster.cp.dir, 'pki');
    const curl = (p: string, extra: string[] = []) => sh('curl', ['-sk', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', '--cert', path.join(pki, 'admin.crt'), '--key', path.join(pki, 'admin.key'), ...extra, `https://${NODE_IP}:${cluster.kubeletPort}${p}`]);
    const plain = await curl('/portForward/default/web');
    expect(plain.stdout).toMatch(/^Upgrade request required: port-forward streams over SPDY\/3\.1.*\n\n400$/s);
    const missing = await curl('/portForward/default/nope', ['-H', 'Connection: Upgrade', '-H', 'Upgrade: SPDY/3.1', '-H', 'X-Stream-Protocol-Version: portforward.k8s.io']);
    expect(missing.stdout).toBe('pod does not exist\n\n404');
    const badProto = await curl('/portForward/default/web', ['-H', 'Connection: Upgrade', '-H', 'Upgrade: SPDY/3.1', '-H', 'X-Stream-Protocol-Version: v4.channel.k8s.io']);
    expect(badProto.stdout).toMatch(/unable to negotiate protocol: client supports \[v4\.channel\.k8s\.io\], server accepts \[portforward\.k8s\.io\]\n\n403$/);
  }, 60_000);

  it('GET through kubectl port-forward returns the pod\'s page and 4 MB intact; the WebSocket went to the node as is', async () => {
    const before = await streamingRequests();
    const f = await portForward([8080]);
    const local = f.local.get(8080)!;
    const page = await get(local, '/');
    expect(page).toMatchObject({ status: 200 });
    expect(page.body.toString()).toBe('hello from web\n');
    const big = await get(local, '/big');
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(BIG.length);
    expect(createHash('sha256').update(big.body).digest('hex')).toBe(createHash('sha256').update(BIG).digest('hex'));
    expect(f.out()).toContain('Handling connection for');
    const after = await streamingRequests();
    expect((after.proxied_to_kubelet ?? 0) - (before.proxied_to_kubelet ?? 0)).toBeGreaterThanOrEqual(1);
    expect(after.translated_at_apiserver ?? 0).toBe(before.translated_at_apiserver ?? 0);
    await f.stop();
  }, 120_000);

  it('two connections at once: one held open half-sent while the other completes, then both answer', async () => {
    const f = await portForward([8080]);
    const local = f.local.get(8080)!;
    const a = rawRequest(local, 'GET /big HTTP/1.0\r\n'); // not finished: httpd waits for the blank line
    await new Promise((r) => setTimeout(r, 300));
    const b = await get(local, '/');
    expect(b.body.toString()).toBe('hello from web\n');
    a.socket.write('\r\n');
    const ra = await a.response;
    expect(ra).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
    expect(ra.length).toBeGreaterThan(BIG.length);
    const [c, d] = await Promise.all([get(local, '/big'), get(local, '/')]);
    expect([c.body.length, d.body.toString()]).toEqual([BIG.length, 'hello from web\n']);
    expect(f.out().match(/Handling connection for/g)?.length).toBe(4);
    await f.stop();
  }, 120_000);

  it('a port nobody listens on: kubectl reports kubelet\'s error (containerd\'s text); the node keeps forwarding the good port', async () => {
    const good = await portForward([8080]);
    const both = await portForward([8080, 9999]);
    const r = rawRequest(both.local.get(9999)!, 'GET / HTTP/1.0\r\n\r\n');
    expect(await r.response).toBe('');
    await kubectlError(both);
    expect(both.err()).toContain(
      `an error occurred forwarding ${both.local.get(9999)} -> 9999: error forwarding port 9999 to pod ${sandboxId}, uid : ` +
        `failed to connect to localhost:9999 inside namespace "${sandboxId}", IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6 dial tcp6 [::1]:9999: connect: `,
    );
    // kubectl (since 1.29) ends the whole port-forward on an error from the pod: "lost connection to pod"
    expect(await both.exited).not.toBe(0);
    expect(both.err()).toContain('lost connection to pod');
    // the node kept serving the other connection's forward, and a new one
    expect((await get(good.local.get(8080)!, '/')).body.toString()).toBe('hello from web\n');
    const again = await portForward([8080]);
    expect((await get(again.local.get(8080)!, '/')).body.toString()).toBe('hello from web\n');
    await good.stop();
    await again.stop();
    // every dialer of those connections is gone
    await waitUntil(() => leakedProcesses(cluster.env.dir).every((p) => !fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('dial')) || undefined, 10_000, 'dialers gone');
  }, 120_000);

  it('the daemon stops promptly with a forward open: its dialers go, kubectl loses the connection', async () => {
    const f = await portForward([8080]);
    const hold = rawRequest(f.local.get(8080)!, 'GET / HTTP/1.0\r\n'); // httpd waits for the rest: a dialer stays
    const dialers = () => leakedProcesses(cluster.env.dir).filter((p) => / dial /.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')));
    await waitUntil(() => dialers().length === 1 || undefined, 10_000, 'a dialer running');
    const t0 = Date.now();
    await cluster.daemon.stop(); // the pod keeps running; the next test's daemon adopts it
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(dialers()).toEqual([]);
    expect(await f.exited).not.toBe(0);
    expect(f.err()).toContain('lost connection to pod');
    hold.socket.destroy();
  }, 60_000);

  it('with --feature-gates=ExtendWebSocketsToKubelet=false the API server tunnels to the node over SPDY/3.1: the same works', async () => {
    await cluster.restartDaemon(['--feature-gates', 'ExtendWebSocketsToKubelet=false']);
    await waitUntil(async () => (await node()).status.declaredFeatures === undefined || undefined, 30_000, 'declaredFeatures gone from the Node');
    await kubectl(['wait', '--for=condition=Ready', 'pod/web', '--timeout=60s']);
    const before = await streamingRequests();
    const f = await portForward([8080, 9999]);
    const local = f.local.get(8080)!;
    const [page, big] = await Promise.all([get(local, '/'), get(local, '/big')]);
    expect(page.body.toString()).toBe('hello from web\n');
    expect(createHash('sha256').update(big.body).digest('hex')).toBe(createHash('sha256').update(BIG).digest('hex'));
    const after = await streamingRequests();
    expect((after.translated_at_apiserver ?? 0) - (before.translated_at_apiserver ?? 0)).toBeGreaterThanOrEqual(1);
    expect(after.proxied_to_kubelet ?? 0).toBe(before.proxied_to_kubelet ?? 0);
    // the error path over the tunnel too
    await rawRequest(f.local.get(9999)!, 'GET / HTTP/1.0\r\n\r\n').response;
    await kubectlError(f);
    expect(f.err()).toContain(`error forwarding port 9999 to pod ${sandboxId}, uid : failed to connect to localhost:9999 inside namespace "${sandboxId}"`);
    await f.stop();
  }, 180_000);
});
