// `kubectl exec` / `kubectl attach` (the real v1.36 kubectl) to pods of a real
// `nodelet daemon --kubeconfig --feature-gates=ExtendWebSocketsToKubelet=false`
// through the real kube-apiserver: the Node does not declare the feature, so the
// API server ends kubectl's WebSocket (v5.channel.k8s.io) itself and speaks
// SPDY/3.1 to the node (its StreamTranslator, client-go's SPDY executor):
// `Upgrade: SPDY/3.1`, remotecommand streams, the node answering v4.channel.k8s.io.
// Run as root in a network namespace of its own:
//   unshare --net -- bash -c 'ip link set lo up && exec npx vitest run test/e2e/kubelet-spdy-exec.test.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.js';
import { makeEnv, leakedProcesses, leftovers, removeCgroup, waitUntil, BUSYBOX, type Env } from './helpers.js';
import { startDaemon, type DaemonHandle } from './daemon-helpers.js';

const NODE = 'se-a';
/** the node's InternalIP, on lo of this test's network namespace (as kubelet-portforward.test.ts) */
const NODE_IP = '10.253.253.3';
let cp: ControlPlane;
let env: Env;
let daemon: DaemonHandle;
let kubeletPort: number;

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function sh(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code}: ${r.stderr}\n--- daemon:\n${daemon?.proc.stderr().slice(-3000)}`);
  return r.stdout;
}
const json = async (args: string[]) => JSON.parse(await kubectl([...args, '-o', 'json']));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** apiserver_websocket_streaming_requests_total for a subresource (exec, attach), by proxy_type */
async function streamingRequests(subresource: string): Promise<Record<string, number>> {
  const m = await kubectl(['get', '--raw', '/metrics']);
  const out: Record<string, number> = {};
  for (const x of m.matchAll(/^apiserver_websocket_streaming_requests_total\{([^}]*)\} (\d+)$/gm)) {
    if (!x[1]!.includes(`subresource="${subresource}"`)) continue;
    out[/proxy_type="([^"]+)"/.exec(x[1]!)![1]!] = Number(x[2]);
  }
  return out;
}

/** The translated count went up by at least n and nothing went to the node as a WebSocket. */
function expectTranslated(before: Record<string, number>, after: Record<string, number>, n: number): void {
  expect((after.translated_at_apiserver ?? 0) - (before.translated_at_apiserver ?? 0)).toBeGreaterThanOrEqual(n);
  expect(after.proxied_to_kubelet ?? 0).toBe(before.proxied_to_kubelet ?? 0);
}

/** kubectl in a detached tmux session (a real terminal, 80x24), as kubelet-api.test.ts */
async function tmux(args: string[]) {
  const sock = `nodelet-se-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const rc = path.join(env.dir, `${sock}.rc`);
  const t = (a: string[]) => sh('tmux', ['-L', sock, ...a]);
  const cmd = [path.join(cp.binDir, 'kubectl'), '--kubeconfig', cp.kubeconfig, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const started = await t(['-f', '/dev/null', 'new-session', '-d', '-s', 'k', '-x', '80', '-y', '24', `${cmd}; echo $? > ${rc}; sleep 600`]);
  if (started.code !== 0) throw new Error(`tmux: ${started.stderr}`);
  await t(['set-option', '-t', 'k', 'window-size', 'manual']);
  const screen = async () => (await t(['capture-pane', '-p', '-J', '-t', 'k', '-S', '-200'])).stdout.replace(/[ \t]+$/gm, '');
  return {
    keys: async (...k: string[]) => void (await t(['send-keys', '-t', 'k', ...k])),
    resize: async (cols: number, rows: number) => void (await t(['resize-window', '-t', 'k', '-x', String(cols), '-y', String(rows)])),
    until: (re: RegExp, what: string) =>
      waitUntil(async () => re.test(await screen()) || undefined, 20_000, what).catch(async (e) => {
        throw new Error(`${(e as Error).message}; screen:\n${await screen()}`);
      }),
    exitCode: () => waitUntil(() => (fs.existsSync(rc) ? Number(fs.readFileSync(rc, 'utf8').trim()) : undefined), 20_000, 'kubectl exited'),
    kill: () => void t(['kill-server']),
  };
}

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

async function startNode(): Promise<void> {
  const kc = await cp.nodeKubeconfig(NODE);
  daemon = await startDaemon(env, ['--kubeconfig', kc, '--node-name', NODE, '--node-ip', NODE_IP, '--node-status-update-frequency', '2000',
    '--kubelet-port', String(kubeletPort), '--kubelet-address', NODE_IP, '--feature-gates', 'ExtendWebSocketsToKubelet=false']);
}

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
  if (Object.keys(os.networkInterfaces()).some((i) => i !== 'lo'))
    throw new Error('run this test inside its own network namespace: unshare --net -- bash -c \'ip link set lo up && exec npx vitest run test/e2e/kubelet-spdy-exec.test.ts\'');
  const ip = await sh('ip', ['addr', 'replace', `${NODE_IP}/32`, 'dev', 'lo']);
  if (ip.code !== 0) throw new Error(`ip addr add ${NODE_IP} dev lo: ${ip.stderr}`);
  cp = await startControlPlane();
  env = makeEnv();
  // SE_DEBUG=1: the daemon logs at debug level (streams, sessions)
  if (process.env.SE_DEBUG) env.globals = env.globals.map((g) => (g === 'warn' ? 'debug' : g));
  kubeletPort = await freePort(NODE_IP);
  await startNode();
  await waitUntil(async () => (await node().catch(() => undefined))?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True' || undefined, 40_000, `${NODE} Ready`);
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
---
apiVersion: v1
kind: Pod
metadata: { name: attachable }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: reader
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      stdin: true
      stdinOnce: true
      command: [sh, -c, 'echo ready; while read l; do echo "got:$l"; echo "err:$l" >&2; done; echo "stdin closed"']
`);
  await kubectl(['wait', '--for=condition=Ready', 'pod/shell', 'pod/attachable', '--timeout=90s']);
}, 600_000);

afterAll(async () => {
  await cp?.kubectl(['delete', 'pods', '--all', '--wait=true', '--timeout=60s']).catch(() => undefined);
  let leaks: string[] = [];
  if (env) {
    await waitUntil(() => leftovers(env, { daemon: true }).filter((l) => !l.startsWith('process')).length === 0 || undefined, 60_000, 'pods gone').catch(() => undefined);
    leaks = leftovers(env, { daemon: true }).filter((l) => !l.startsWith('process'));
  }
  await daemon?.stop().catch(() => undefined);
  if (env) leaks.push(...leakedProcesses(env.dir).map((p) => `process ${p}: ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`));
  await cp?.down();
  if (env) {
    removeCgroup(env.cgroupParent);
    fs.rmSync(env.dir, { recursive: true, force: true });
  }
  expect(leaks).toEqual([]);
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
    const t = await tmux(['exec', '-it', 'shell', '--', 'sh']);
    try {
      await t.until(/# ?$/m, 'a shell prompt');
      await t.keys('echo "term=$TERM"; stty size', 'Enter');
      await t.until(/term=xterm\n24 80\n/, 'TERM and the 80x24 window');
      await t.resize(100, 30);
      await t.keys('stty size', 'Enter');
      await t.until(/\n30 100\n/, 'the resized window');
      await t.keys('exit 4', 'Enter');
      expect(await t.exitCode()).toBe(4);
    } finally {
      t.kill();
    }
  }, 90_000);

  it('kubectl attach -i to a container with stdin + stdinOnce: lines in, stdout and stderr back apart, EOF ends the container', async () => {
    const before = await streamingRequests('attach');
    await waitUntil(async () => (await kubectl(['logs', 'attachable'])).includes('ready') || undefined, 20_000, 'reader ready');
    const r = await cp.kubectl(['attach', '-i', 'attachable', '-c', 'reader'], { input: 'one\ntwo\n', timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('got:one\ngot:two\n');
    expect(r.stdout).not.toContain('ready'); // attach sees the output from then on
    expect(r.stderr).toContain('err:one\nerr:two\n');
    await waitUntil(async () => (await json(['get', 'pod', 'attachable'])).status.containerStatuses[0]?.state?.terminated || undefined, 30_000, 'reader exited');
    const logged = (await kubectl(['logs', 'attachable'])).split('\n');
    expect(logged.filter((l) => !l.startsWith('err:'))).toEqual(['ready', 'got:one', 'got:two', 'stdin closed', '']);
    expectTranslated(before, await streamingRequests('attach'), 1);
  }, 120_000);

  it('the daemon stops promptly with an exec open: the command is killed, kubectl loses the stream; a new daemon serves again', async () => {
    const proc = cp.kubectl(['exec', 'shell', '--', 'sh', '-c', 'echo started; exec sleep 1717'], { timeoutMs: 60_000 });
    await waitUntil(() => sleepers('1717').length === 1 || undefined, 20_000, 'the exec running');
    const t0 = Date.now();
    await daemon.stop(); // the pods keep running; the next daemon adopts them
    expect(Date.now() - t0).toBeLessThan(10_000);
    const r = await proc;
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('started\n');
    expect(r.stderr).toContain('the kubelet server is stopping'); // not the success an empty error stream would be
    await waitUntil(() => sleepers('1717').length === 0 || undefined, 10_000, 'the exec killed');
    await startNode();
    await waitUntil(async () => (await cp.kubectl(['exec', 'shell', '--', 'echo', 'back'])).stdout === 'back\n' || undefined, 60_000, 'exec through the new daemon');
  }, 120_000);
});
