// `kubectl exec` / `kubectl attach` (the real v1.36 kubectl) to pods of a real
// `nodelet daemon --kubeconfig --feature-gates=ExtendWebSocketsToKubelet=false`
// through the real kube-apiserver: the Node does not declare the feature, so the
// API server ends kubectl's WebSocket (v5.channel.k8s.io) itself and speaks
// SPDY/3.1 to the node (its StreamTranslator, client-go's SPDY executor):
// `Upgrade: SPDY/3.1`, remotecommand streams, the node answering v4.channel.k8s.io.
// Run as root in a network namespace of its own:
//   unshare --net -- bash -c 'ip link set lo up && exec npx vitest run test/e2e/kubelet-spdy-exec.test.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { ControlPlane } from '../helpers/control-plane.js';
import { leakedProcesses, waitUntil, BUSYBOX, type Env } from './helpers.js';
import { attachablePod, attachToReader, clusterNode, streamingRequests as streamingRequestsFor, withTmux, type Tmux } from './cluster-node.js';

const NODE = 'se-a';
/** the node's InternalIP, on lo of this test's network namespace (as kubelet-portforward.test.ts) */
const NODE_IP = '10.253.253.3';
/** every daemon of this file: the Node does not declare the feature */
const GATE = ['--feature-gates', 'ExtendWebSocketsToKubelet=false'];
// SE_DEBUG=1: the daemon logs at debug level (streams, sessions)
const cluster = clusterNode({ node: NODE, ip: NODE_IP, testFile: 'test/e2e/kubelet-spdy-exec.test.ts', daemonFlags: GATE, debug: !!process.env.SE_DEBUG });
const { kubectl, json } = cluster;
let cp: ControlPlane;
let env: Env;
let kubeletPort: number;

/** apiserver_websocket_streaming_requests_total for a subresource (exec, attach), by proxy_type */
const streamingRequests = (subresource: string) => streamingRequestsFor(kubectl, subresource);

/** The translated count went up by at least n and nothing went to the node as a WebSocket. */
function expectTranslated(before: Record<string, number>, after: Record<string, number>, n: number): void {
  expect((after.translated_at_apiserver ?? 0) - (before.translated_at_apiserver ?? 0)).toBeGreaterThanOrEqual(n);
  expect(after.proxied_to_kubelet ?? 0).toBe(before.proxied_to_kubelet ?? 0);
}

/** kubectl in a detached tmux session (a real terminal, 80x24) for `fn`, killed after it, as kubelet-api.test.ts */
const inTmux = <T>(args: string[], fn: (t: Tmux) => Promise<T>) => withTmux(cp, env, args, fn);

/** An upgrade straight to the node (admin's client certificate): the response's status and headers. */
function upgradeToNode(p: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const pki = path.join(cp.dir, 'pki');
  return new Promise((resolve, reject) => {
    const r = https.request({
      host: NODE_IP, port: kubeletPort, path: p, method: 'POST', rejectUnauthorized: false, agent: false,
      cert: fs.readFileSync(path.join(pki, 'admin.crt')), key: fs.readFileSync(path.join(pki, 'admin.key')),
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', ...headers },
    });
    r.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    r.once('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    r.once('error', reject);
    r.end();
  });
}

const node = async () => json(['get', 'node', NODE]);

/** pids of `sleep <n>` anywhere on the host (the exec'd command in the container) */
function sleepers(n: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${n}\0`) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

beforeAll(async () => {
  await cluster.start();
  ({ cp, env, kubeletPort } = cluster);
  await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: shell }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: sh
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      command: [sleep, '3600']
---${attachablePod()}`);
  await kubectl(['wait', '--for=condition=Ready', 'pod/shell', 'pod/attachable', '--timeout=90s']);
}, 600_000);

afterAll(async () => {
  // nothing of the node outlives the daemon and its pods (an exec's command neither)
  const processes = () => leakedProcesses(env.dir).map((p) => `process ${p}: ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
  expect(await cluster.teardown({ afterDaemonStop: processes })).toEqual([]);
}, 240_000);

describe('kubectl exec / attach through an API server that speaks SPDY/3.1 to the node', () => {
  it('the node does not declare ExtendWebSocketsToKubelet; asked directly, it answers v4.channel.k8s.io of client-go\'s list, 403 without a common one', async () => {
    expect((await node()).status.declaredFeatures).toBeUndefined();
    const ok = await upgradeToNode('/exec/default/shell/sh?command=true&output=1', { 'X-Stream-Protocol-Version': 'v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io' });
    expect(ok).toMatchObject({ status: 101, headers: { upgrade: 'SPDY/3.1', 'x-stream-protocol-version': 'v4.channel.k8s.io' } });
    const none = await upgradeToNode('/exec/default/shell/sh?command=true&output=1', { 'X-Stream-Protocol-Version': 'v5.channel.k8s.io' });
    expect(none.status).toBe(403);
    expect(none.headers['x-accepted-stream-protocol-versions']).toBe('v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io');
    const noPod = await upgradeToNode('/exec/default/nope/sh?command=true&output=1', { 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
    expect(noPod.status).toBe(404);
  }, 60_000);

  it('kubectl exec: output on stdout and stderr apart, exit codes (3 kept), a missing binary fails; translated at the API server', async () => {
    const before = await streamingRequests('exec');
    const hi = await cp.kubectl(['exec', 'shell', '--', 'echo', 'hi']);
    expect(hi).toMatchObject({ code: 0, stdout: 'hi\n' });
    const three = await cp.kubectl(['exec', 'shell', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(three.code).toBe(3);
    expect(three.stdout).toBe('out\n');
    expect(three.stderr).toContain('err\n');
    expect(three.stderr).toContain('command terminated with exit code 3');
    const missing = await cp.kubectl(['exec', 'shell', '--', '/no/such/binary']);
    expect(missing.code).not.toBe(0);
    // 3 MB of output through SPDY data frames, intact
    const big = await cp.kubectl(['exec', 'shell', '--', 'sh', '-c', 'yes 0123456789abcdef | head -c 3000000']);
    expect(big.code).toBe(0);
    expect(big.stdout.length).toBe(3_000_000);
    expect(createHash('sha256').update(big.stdout).digest('hex')).toBe(createHash('sha256').update('0123456789abcdef\n'.repeat(176471).slice(0, 3_000_000)).digest('hex'));
    expectTranslated(before, await streamingRequests('exec'), 4);
  }, 120_000);

  it('kubectl exec -i: stdin to the command, its EOF (v5\'s close → the stdin stream\'s FIN) ends it; 2 MB in intact', async () => {
    const before = await streamingRequests('exec');
    const cat = await cp.kubectl(['exec', '-i', 'shell', '--', 'sh', '-c', 'cat; echo " done"'], { input: 'piped' });
    expect(cat).toMatchObject({ code: 0, stdout: 'piped done\n' });
    const data = Buffer.alloc(2 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE((i * 2654435761) >>> 0, i);
    const b64 = data.toString('base64');
    const sum = await cp.kubectl(['exec', '-i', 'shell', '--', 'sh', '-c', 'base64 -d | md5sum'], { input: b64 });
    expect(sum.code).toBe(0);
    expect(sum.stdout.split(' ')[0]).toBe(createHash('md5').update(data).digest('hex'));
    expectTranslated(before, await streamingRequests('exec'), 2);
  }, 120_000);

  it('kubectl exec -it in a terminal (tmux): TERM, the window size and its resize on the resize stream, exit code', async () => {
    await inTmux(['exec', '-it', 'shell', '--', 'sh'], async (t) => {
      await t.until(/# ?$/m, 'a shell prompt');
      await t.keys('echo "term=$TERM"; stty size', 'Enter');
      await t.until(/term=xterm\n24 80\n/, 'TERM and the 80x24 window');
      await t.resize(100, 30);
      await t.keys('stty size', 'Enter');
      await t.until(/\n30 100\n/, 'the resized window');
      await t.keys('exit 4', 'Enter');
      expect(await t.exitCode()).toBe(4);
    });
  }, 90_000);

  it('kubectl attach -i to a container with stdin + stdinOnce: lines in, stdout and stderr back apart, EOF ends the container', async () => {
    const before = await streamingRequests('attach');
    await attachToReader(cluster, ['logs', 'attachable']);
    expectTranslated(before, await streamingRequests('attach'), 1);
  }, 120_000);

  it('the daemon stops promptly with an exec open: the command is killed, kubectl loses the stream; a new daemon serves again', async () => {
    const proc = cp.kubectl(['exec', 'shell', '--', 'sh', '-c', 'echo started; exec sleep 1717'], { timeoutMs: 60_000 });
    await waitUntil(() => sleepers('1717').length === 1 || undefined, 20_000, 'the exec running');
    const t0 = Date.now();
    await cluster.daemon.stop(); // the pods keep running; the next daemon adopts them
    expect(Date.now() - t0).toBeLessThan(10_000);
    const r = await proc;
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('started\n');
    expect(r.stderr).toContain('the kubelet server is stopping'); // not the success an empty error stream would be
    await waitUntil(() => sleepers('1717').length === 0 || undefined, 10_000, 'the exec killed');
    await cluster.restartDaemon(GATE);
    await waitUntil(async () => (await cp.kubectl(['exec', 'shell', '--', 'echo', 'back'])).stdout === 'back\n' || undefined, 60_000, 'exec through the new daemon');
  }, 120_000);
});
