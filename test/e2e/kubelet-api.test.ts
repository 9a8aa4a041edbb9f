// The kubelet server (port 10250 of the Node, here a free port on 127.0.0.1)
// against a real control plane (v1.36 on 127.0.0.1 in this test's network
// namespace) and a real `nodelet daemon --kubeconfig`: the real kubectl's
// logs/exec/get --raw go through kube-apiserver to the node; anonymous and
// unprivileged callers are refused by the node itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import type { ControlPlane } from '../helpers/control-plane.js';
import { sleep, waitUntil, BUSYBOX, type Env } from './helpers.js';
import { attachablePod, attachToReader, clusterNode, sh, withTmux, type Tmux } from './cluster-node.js';

const NODE = 'kl-a';
/** the node's InternalIP, on lo of this test's network namespace (not 127.0.0.1: see ClusterNodeOptions.ip) */
const NODE_IP = '10.253.253.1';
const cluster = clusterNode({ node: NODE, ip: NODE_IP, testFile: 'test/e2e/kubelet-api.test.ts' });
const { kubectl, json } = cluster;
let cp: ControlPlane;
let env: Env;
let port: number;

/** curl to the node's port directly: status code and body */
async function curl(p: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  const r = await sh('curl', ['-sk', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...extra, `https://${NODE_IP}:${port}${p}`]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

/** kubectl in a detached tmux session (a real terminal, 80x24) for `fn`, killed after it */
const inTmux = <T>(args: string[], fn: (t: Tmux) => Promise<T>) => withTmux(cp, env, args, fn);

beforeAll(async () => {
  await cluster.start();
  ({ cp, env, kubeletPort: port } = cluster);
  await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: chatty }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: a
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo "a-$i"; sleep 0.2; done']
    - name: b
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'echo "b-start $(cat /proc/uptime)"; sleep 1; exit 1']
`);
  await kubectl(['wait', '--for=jsonpath={.status.containerStatuses[0].state.running}', 'pod/chatty', '--timeout=60s']);
}, 600_000);

afterAll(async () => {
  expect(await cluster.teardown()).toEqual([]);
}, 240_000);

describe('the kubelet server', () => {
  it('the Node advertises the port and ExtendWebSocketsToKubelet; the serving certificate is self-signed for the node; anonymous is 401', async () => {
    const node = await json(['get', 'node', NODE]);
    expect(node.status.daemonEndpoints.kubeletEndpoint.Port).toBe(port);
    expect(node.status.declaredFeatures).toContain('ExtendWebSocketsToKubelet');
    const pki = path.join(env.root, 'pki');
    const x = new X509Certificate(fs.readFileSync(path.join(pki, 'kubelet.crt')));
    expect(x.subject).toBe(`CN=${NODE}`);
    expect(x.subjectAltName).toContain(`IP Address:${NODE_IP}`);
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: NODE_IP });
    expect(x.subjectAltName).toContain(`DNS:${NODE}`);
    expect(fs.statSync(path.join(pki, 'kubelet.key')).mode & 0o777).toBe(0o600);
    for (const p of ['/healthz', '/pods', '/stats/summary', '/containerLogs/default/chatty/a']) {
      const r = await curl(p);
      expect({ p, status: r.status, body: r.body }).toEqual({ p, status: 401, body: 'Unauthorized' });
    }
    // a bad token is 401 too (TokenReview says not authenticated)
    expect((await curl('/pods', ['-H', 'Authorization: Bearer not-a-token'])).status).toBe(401);
    // the admin's client certificate (system:masters, signed by the cluster CA) is allowed
    const pkiCp = path.join(cp.dir, 'pki');
    const ok = await curl('/healthz', ['--cert', path.join(pkiCp, 'admin.crt'), '--key', path.join(pkiCp, 'admin.key')]);
    expect(ok).toEqual({ status: 200, body: 'ok' });
  }, 60_000);

  it('a ServiceAccount without RBAC is authenticated by TokenReview and refused (403) by the node', async () => {
    await kubectl(['create', 'namespace', 'norights']);
    await kubectl(['create', 'serviceaccount', '-n', 'norights', 'nobody']);
    const token = (await kubectl(['create', 'token', '-n', 'norights', 'nobody'])).trim();
    const r = await curl('/pods', ['-H', `Authorization: Bearer ${token}`]);
    expect(r).toEqual({ status: 403, body: 'Forbidden (user=system:serviceaccount:norights:nobody, verb=get, resource=nodes, subresource(s)=[pods proxy])\n' });
    const s = await curl('/stats/summary', ['-H', `Authorization: Bearer ${token}`]);
    expect(s.status).toBe(403);
    expect(s.body).toContain('subresource(s)=[stats]');
    // given nodes/proxy, the same token may read /pods (the SAR decides)
    await kubectl(['create', 'clusterrole', 'node-proxy', '--verb=get', '--resource=nodes/proxy']);
    await kubectl(['create', 'clusterrolebinding', 'nobody-node-proxy', '--clusterrole=node-proxy', '--serviceaccount=norights:nobody']);
    const allowed = await waitUntil(async () => {
      const x = await curl('/pods', ['-H', `Authorization: Bearer ${token}`]);
      return x.status === 200 ? x : undefined; // the denial is cached for 30 s
    }, 45_000, 'nodes/proxy granted');
    expect(JSON.parse(allowed.body).items.map((p: any) => p.metadata.name)).toContain('chatty');
  }, 90_000);

  it('kubectl logs through the API server: default container, -c, -f, --previous after a restart, --since, --tail, --limit-bytes, --timestamps', async () => {
    await waitUntil(async () => (await kubectl(['logs', 'chatty', '-c', 'a'])).split('\n').filter(Boolean).length >= 20 || undefined, 30_000, '20 lines of a');
    const all = (await kubectl(['logs', 'chatty', '-c', 'a'])).split('\n').filter(Boolean);
    expect(all.slice(0, 3)).toEqual(['a-1', 'a-2', 'a-3']);
    const dflt = await cp.kubectl(['logs', 'chatty']);
    expect(dflt.code).toBe(0);
    expect(dflt.stdout.split('\n')[0]).toBe('a-1'); // kubectl defaults to the first container
    expect((await kubectl(['logs', 'chatty', '-c', 'a', '--tail=2'])).split('\n').filter(Boolean).length).toBe(2);
    expect(await kubectl(['logs', 'chatty', '-c', 'a', '--limit-bytes=4'])).toBe('a-1\n');
    expect(await kubectl(['logs', 'chatty', '-c', 'a', '--tail=1', '--timestamps'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z a-\d+\n$/);
    const since = (await kubectl(['logs', 'chatty', '-c', 'a', '--since=1s'])).split('\n').filter(Boolean);
    expect(since.length).toBeGreaterThan(0);
    expect(since.length).toBeLessThanOrEqual(8); // ~5 lines a second
    expect(since[0]).not.toBe('a-1');
    // -f: a new line arrives, then stop
    const f = spawn(path.join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfig, 'logs', '-f', '--tail=0', 'chatty', '-c', 'a'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    f.stdout.on('data', (d) => (out += d));
    try {
      await waitUntil(() => /a-\d+\n/.test(out) || undefined, 15_000, 'a followed line');
    } finally {
      f.kill('SIGTERM');
    }
    expect(Number(/a-(\d+)/.exec(out)![1])).toBeGreaterThan(Number(/a-(\d+)/.exec(all.at(-1)!)![1]));
    // b exits 1 each second and is restarted: its previous instance's log
    await waitUntil(async () => (await json(['get', 'pod', 'chatty'])).status.containerStatuses.find((s: any) => s.name === 'b')?.restartCount >= 1 || undefined, 60_000, 'b restarted');
    expect(await kubectl(['logs', 'chatty', '-c', 'b', '--previous'])).toMatch(/^b-start \d/);
    const noPrev = await cp.kubectl(['logs', 'chatty', '-c', 'a', '--previous']);
    expect(noPrev.code).not.toBe(0);
    expect(noPrev.stderr).toContain('previous terminated container "a" in pod "chatty" not found');
  }, 120_000);

  it('kubectl exec through the API server (WebSocket proxied to the node): exit codes, output, stdin', async () => {
    const hi = await cp.kubectl(['exec', 'chatty', '-c', 'a', '--', 'echo', 'hi']);
    expect(hi).toMatchObject({ code: 0, stdout: 'hi\n' });
    const three = await cp.kubectl(['exec', 'chatty', '-c', 'a', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(three.code).toBe(3);
    expect(three.stdout).toBe('out\n');
    expect(three.stderr).toContain('err\n');
    const cat = await cp.kubectl(['exec', '-i', 'chatty', '-c', 'a', '--', 'sh', '-c', 'cat; echo " done"'], { input: 'piped' });
    expect(cat).toMatchObject({ code: 0, stdout: 'piped done\n' });
    const missing = await cp.kubectl(['exec', 'chatty', '-c', 'a', '--', '/no/such/binary']);
    expect(missing.code).not.toBe(0);
  }, 60_000);

  it('WebSockets through the API server as the conformance specs open them: exec with channel.k8s.io (v1), logs with binary.k8s.io and base64.binary.k8s.io', async () => {
    const field = async (k: string) => Buffer.from((await kubectl(['config', 'view', '--raw', '--minify', '-o', `jsonpath={.users[0].user.${k}}`])).trim(), 'base64');
    const tls = { ca: fs.readFileSync(cp.caFile), cert: await field('client-certificate-data'), key: await field('client-key-data') };
    const open = (p: string, protocols: string[]) =>
      new Promise<{ protocol: string; messages: [Buffer, boolean][] }>((resolve, reject) => {
        const ws = new WebSocket(`${cp.server.replace(/^https/, 'wss')}${p}`, protocols, tls);
        const messages: [Buffer, boolean][] = [];
        ws.on('message', (d: Buffer, bin: boolean) => messages.push([d, bin]));
        ws.on('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        ws.on('error', reject);
        ws.on('close', () => resolve({ protocol: ws.protocol, messages }));
      });
    const exec = await open('/api/v1/namespaces/default/pods/chatty/exec?command=echo&command=remote+execution+test&container=a&stdout=1&stderr=1', ['channel.k8s.io']);
    expect(exec.protocol).toBe('channel.k8s.io');
    expect(Buffer.concat(exec.messages.filter(([d]) => d[0] === 1).map(([d]) => d.subarray(1))).toString()).toBe('remote execution test\n');
    expect(exec.messages.filter(([d]) => d[0] !== 1 && d.length > 1)).toEqual([]); // v1: nothing on the error channel on success
    const fail = await open('/api/v1/namespaces/default/pods/chatty/exec?command=sh&command=-c&command=exit+3&container=a&stdout=1', ['channel.k8s.io']);
    expect(Buffer.concat(fail.messages.filter(([d]) => d[0] === 3).map(([d]) => d.subarray(1))).toString()).toContain('exit code 3');

    const logs = await open('/api/v1/namespaces/default/pods/chatty/log?container=a&limitBytes=8', ['binary.k8s.io']);
    expect(Buffer.concat(logs.messages.map(([d]) => d)).toString()).toBe('a-1\na-2\n');
    const b64 = await open('/api/v1/namespaces/default/pods/chatty/log?container=a&limitBytes=4', ['base64.binary.k8s.io']);
    expect(b64.messages.every(([, bin]) => !bin)).toBe(true);
    expect(b64.messages.map(([d]) => Buffer.from(d.toString(), 'base64').toString()).join('')).toBe('a-1\n');
  }, 60_000);

  it('kubectl exec -it in a terminal (tmux): prompt, TERM, the window size and its resize, Ctrl-C, exit code', async () => {
    await inTmux(['exec', '-it', 'chatty', '-c', 'a', '--', 'sh'], async (t) => {
      await t.until(/# ?$/m, 'a shell prompt'); // (trailing blanks are trimmed from the screen)
      await t.keys('echo "term=$TERM"; stty size', 'Enter');
      await t.until(/term=xterm\n24 80\n/, 'TERM and the 80x24 window');
      await t.resize(100, 30);
      // kubectl sends the new size when SIGWINCH reaches it: ask again until the shell sees it
      await waitUntil(async () => {
        await t.keys('stty size', 'Enter');
        return (await t.screen().then((x) => /\n30 100\n/.test(x))) || (await sleep(500), undefined);
      }, 20_000, 'the resized window');
      await t.keys('sleep 1000', 'Enter');
      await sleep(300);
      await t.keys('C-c'); // SIGINT to the terminal's foreground job, not a kill of the exec
      await t.keys('echo "after=$?"', 'Enter');
      await t.until(/\nafter=130\n/, 'Ctrl-C interrupting sleep');
      await t.keys('exit 4', 'Enter');
      expect(await t.exitCode()).toBe(4);
    });
  }, 90_000);

  it('kubectl attach: to a container with stdin (stdinOnce: EOF ends it), and -it to a tty container in tmux', async () => {
    await kubectl(['apply', '-f', '-'], attachablePod(`
    - name: term
      image: ${BUSYBOX}
      imagePullPolicy: IfNotPresent
      stdin: true
      tty: true
      command: [sh]
`));
    try {
      await kubectl(['wait', '--for=condition=Ready', 'pod/attachable', '--timeout=60s']);
      // piped stdin: the lines go in, stdout and stderr come back apart; kubectl's EOF closes the container's stdin (stdinOnce)
      const logged = await attachToReader(cluster, ['logs', 'attachable', '-c', 'reader']);
      expect(logged.filter((l) => l.startsWith('err:'))).toEqual(['err:one', 'err:two']);
      // -it: the tty container's shell; detaching (the session ends) leaves it running, a second attach finds it
      await inTmux(['attach', '-it', 'attachable', '-c', 'term'], async (t) => {
        await t.keys('Enter');
        await t.until(/# ?$/m, 'the shell prompt after attach');
        await t.keys('echo "pid=$$"; stty size', 'Enter');
        await t.until(/pid=1\n24 80\n/, 'the container shell (pid 1) at the window size');
      }); // kubectl gone = detached
      await sleep(500);
      const st = (await json(['get', 'pod', 'attachable'])).status.containerStatuses.find((c: any) => c.name === 'term');
      expect(st.state.running).toBeTruthy();
      expect(st.restartCount).toBe(0);
    } finally {
      await kubectl(['delete', 'pod', 'attachable', '--wait=true', '--timeout=60s']);
    }
  }, 180_000);

  it('kubectl cp both ways (tar through exec), bytes intact', async () => {
    const dir = fs.mkdtempSync(path.join(env.dir, 'cp-'));
    const src = path.join(dir, 'in.bin');
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    fs.writeFileSync(src, data);
    fs.mkdirSync(path.join(dir, 'tree', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree', 'sub', 'f.txt'), 'nested\n');
    // local paths relative to the temp dir (kubectl cp takes any path with a ':' for a pod's)
    const run = (args: string[]) => cp.kubectl(args, { cwd: dir });
    expect((await run(['cp', 'in.bin', 'chatty:/tmp/in.bin', '-c', 'a'])).code).toBe(0);
    expect((await kubectl(['exec', 'chatty', '-c', 'a', '--', 'md5sum', '/tmp/in.bin'])).split(' ')[0]).toBe(createHash('md5').update(data).digest('hex'));
    expect((await run(['cp', 'tree', 'chatty:/tmp/tree', '-c', 'a'])).code).toBe(0);
    expect(await kubectl(['exec', 'chatty', '-c', 'a', '--', 'cat', '/tmp/tree/sub/f.txt'])).toBe('nested\n');
    const back = await run(['cp', 'chatty:/tmp/in.bin', 'out.bin', '-c', 'a']);
    expect(back.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out.bin')).equals(data)).toBe(true);
  }, 90_000);

  it('nodes/<n>/proxy: stats/summary, metrics/resource, metrics, pods, healthz', async () => {
    const sum = JSON.parse(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/stats/summary`]));
    expect(sum.node.nodeName).toBe(NODE);
    expect(sum.node.cpu.usageCoreNanoSeconds).toBeGreaterThan(0);
    expect(sum.node.cpu.usageNanoCores).toBeGreaterThan(0);
    expect(sum.node.memory.workingSetBytes).toBeGreaterThan(0);
    expect(sum.node.fs.capacityBytes).toBeGreaterThan(0);
    const pod = sum.pods.find((p: any) => p.podRef.name === 'chatty');
    expect(pod.podRef).toMatchObject({ namespace: 'default', uid: expect.any(String) });
    const a = pod.containers.find((c: any) => c.name === 'a');
    expect(a.cpu.usageCoreNanoSeconds).toBeGreaterThan(0);
    expect(a.cpu.usageNanoCores).toBeGreaterThanOrEqual(0);
    expect(a.memory.workingSetBytes).toBeGreaterThan(0);
    expect(a.memory.usageBytes).toBeGreaterThan(0);
    expect(pod.cpu.usageCoreNanoSeconds).toBeGreaterThan(0);
    expect(pod.memory.workingSetBytes).toBeGreaterThan(0);
    const res = await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics/resource`]);
    expect(res).toMatch(/^container_cpu_usage_seconds_total\{container="a",namespace="default",pod="chatty"\} [\d.e+-]+ \d+$/m);
    expect(res).toMatch(/^container_memory_working_set_bytes\{container="a",namespace="default",pod="chatty"\} [1-9]\d* \d+$/m);
    expect(res).toMatch(/^pod_cpu_usage_seconds_total\{namespace="default",pod="chatty"\} [\d.e+-]+ \d+$/m);
    expect(res).toMatch(/^pod_memory_working_set_bytes\{namespace="default",pod="chatty"\} \d+ \d+$/m);
    expect(res).toMatch(/^node_cpu_usage_seconds_total [\d.e+-]+ \d+$/m);
    expect(res).toMatch(/^node_memory_working_set_bytes \d+ \d+$/m);
    const m = await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics`]);
    expect(m).toMatch(/^kubelet_running_pods 1$/m);
    expect(m).toMatch(/^kubelet_running_containers\{container_state="running"\} [12]$/m);
    expect(m).toMatch(/^nodelet_pods\{phase="Running"\} 1$/m);
    const pods = JSON.parse(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/pods`]));
    expect(pods.kind).toBe('PodList');
    expect(pods.items.map((p: any) => p.metadata.name)).toEqual(['chatty']);
    expect(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/healthz`])).toBe('ok');
  }, 60_000);
});
