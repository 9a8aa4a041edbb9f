// The daemon: static pods, the API (create/get/watch/delete, logs, exec,
// events, metrics), log follow across rotation, restart recovery, and the
// client verbs. Real runtime, cgroups and CNI; short periods and back-offs.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BUSYBOX, cgroupChildren, leftovers, makeEnv, run, sleep, start, waitUntil, type Env } from './helpers.js';
import { api, cstatus, getPod, startDaemon, stopAndClean, waitPod, watch, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
afterEach(async () => {
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

const podYaml = (name: string, container: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 2
  containers:
${container}`;

describe('nodelet daemon', () => {
  it('creates, gets, watches and deletes pods through the API; apply/get/exec/describe/logs/delete client verbs', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const w = watch(daemon.socket, '/api/v1/namespaces/default/pods?watch=1');
    const body = podYaml('api1', `    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo started; exec sleep 1000"] }`);
    const r = await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml');
    expect(r.status).toBe(201);
    expect(r.json.metadata.uid).toBeTruthy();
    const dup = await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml');
    expect(dup.status).toBe(409);
    expect(dup.json).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409 });
    const pod = await waitPod(daemon.socket, 'api1', (p) => p.status?.phase === 'Running' && cstatus(p, 'c')?.ready);
    expect(pod.status.podIP).toMatch(/^10\./);
    const missing = await api(daemon.socket, 'GET', '/api/v1/namespaces/default/pods/nope');
    expect(missing.json).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });

    const sock = ['--socket', daemon.socket];
    const g = await run([...env.globals, 'get', 'pods', ...sock]);
    expect(g.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\napi1\s+1\/1\s+Running\s+0\s+\d+s/);
    const x = await run([...env.globals, 'exec', ...sock, 'api1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    expect(x.code).toBe(5);
    expect(x.stdout).toBe('out\n');
    expect(x.stderr).toBe('err\n');
    const l = await run([...env.globals, 'logs', ...sock, 'api1']);
    expect(l.stdout).toBe('started\n');
    const d = await run([...env.globals, 'describe', 'pod', ...sock, 'api1']);
    expect(d.stdout).toMatch(/Status:\s+Running/);
    expect(d.stdout).toMatch(/Started\s+\d+s\s+nodelet\s+Started container c/);

    const top = await run([...env.globals, 'top', 'pods', ...sock]);
    expect(top.stdout).toMatch(/^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\napi1\s+\d+m\s+\d+Mi\n$/);
    const del = await run([...env.globals, 'delete', 'pod', ...sock, 'api1', '--grace-period', '1']);
    expect(del.stdout).toBe('pod "api1" deleted\n');
    expect(await getPod(daemon.socket, 'api1')).toBeUndefined();
    await waitUntil(() => w.events.some((e) => e.type === 'DELETED'), 5000, 'DELETED event');
    w.stop();
    const types = w.events.map((e) => e.type);
    expect(types[0]).toBe('ADDED');
    expect(types).toContain('MODIFIED');
    expect(types.at(-1)).toBe('DELETED');
    const versions = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    // events API with a field selector
    const ev = await api(daemon.socket, 'GET', '/api/v1/events?fieldSelector=involvedObject.name=api1');
    expect(ev.status).toBe(200);
    const metrics = await api(daemon.socket, 'GET', '/metrics');
    expect(metrics.body).toMatch(/nodelet_pods\{phase="Running"\} 0/);
    expect(metrics.body).toMatch(/nodelet_pod_sync_duration_seconds_count \d+/);
    expect(leftovers(env, { daemon: true }).join('\n')).toBe('');
  });

  it('run --detach hands a pod to the daemon; get -w streams its changes; get -o json/yaml', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const sock = ['--socket', daemon.socket];
    const w = start([...env.globals, 'get', 'pods', '-w', ...sock]);
    const f = path.join(env.dir, 'det.yaml');
    fs.writeFileSync(f, podYaml('det', `    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "exec sleep 1000"] }`));
    const r = await run([...env.globals, 'run', '--detach', ...sock, f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('pod/det created\n');
    await w.waitFor(/det\s+1\/1\s+Running/);
    w.child.kill('SIGTERM');
    await w.done;
    expect(w.stdout()).toMatch(/^NAME\s+READY\s+STATUS/);
    const j = await run([...env.globals, 'get', 'pods', 'det', '-o', 'json', ...sock]);
    expect(JSON.parse(j.stdout).status.phase).toBe('Running');
    const y = await run([...env.globals, 'get', 'pods', '-o', 'yaml', ...sock]);
    expect(y.stdout).toMatch(/kind: List[\s\S]*name: det/);
    const again = await run([...env.globals, 'apply', '-f', f, ...sock]);
    expect(again.stdout).toBe('pod/det unchanged\n');
  });

  it('reads a config file (flags override it) and rejects unknown keys', async () => {
    env = makeEnv();
    const cfg = path.join(env.dir, 'config.yaml');
    const socket = path.join(env.dir, 'from-config.sock');
    const mdir = path.join(env.dir, 'cfg-manifests');
    const wrongParent = `/nodelet-test-wrong-${path.basename(env.dir).slice(-8)}`;
    fs.writeFileSync(cfg, `socket: ${socket}\nmanifestDir: ${mdir}\nrescanMs: 500\ncgroupParent: ${wrongParent}\n`);
    const flags = env.nodeFlags;
    const p = start([...env.globals, 'daemon', '--config', cfg, ...flags]);
    try {
      await waitUntil(() => fs.existsSync(socket), 20_000, 'socket from the config file');
      expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
      fs.writeFileSync(path.join(mdir, 'a.yaml'), podYaml('cfgpod', `    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "exec sleep 1000"] }`));
      await waitPod(socket, 'cfgpod', (x) => cstatus(x, 'c')?.state?.running);
      expect(cgroupChildren(env.cgroupParent).length).toBeGreaterThan(0); // --cgroup-parent beat the file
      expect(fs.existsSync(`/sys/fs/cgroup/memory${wrongParent}`)).toBe(false);
      fs.unlinkSync(path.join(mdir, 'a.yaml'));
      await waitUntil(async () => (await getPod(socket, 'cfgpod')) === undefined, 20_000, 'static pod removed');
    } finally {
      p.child.kill('SIGTERM');
      await p.done;
    }
    fs.writeFileSync(cfg, 'sockett: /x\n');
    const bad = await run([...env.globals, 'daemon', '--config', cfg, ...flags]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('unknown config key "sockett"');
  });

  it('static pods: adding, changing and removing a manifest file creates, replaces and deletes its pod', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const f = path.join(daemon.manifestDir, 'static.yaml');
    fs.writeFileSync(f, podYaml('static1', `    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo v1; exec sleep 1000"] }`));
    const p1 = await waitPod(daemon.socket, 'static1', (p) => cstatus(p, 'c')?.state?.running);
    expect(p1.metadata.annotations['kubernetes.io/config.source']).toBe('file');
    fs.writeFileSync(f, podYaml('static1', `    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo v2; exec sleep 1000"] }`));
    const p2 = await waitPod(daemon.socket, 'static1', (p) => p.metadata.uid !== p1.metadata.uid && cstatus(p, 'c')?.state?.running);
    const logs = await api(daemon.socket, 'GET', '/api/v1/namespaces/default/pods/static1/log');
    expect(logs.body).toBe('v2\n');
    expect(p2.metadata.uid).not.toBe(p1.metadata.uid);
    fs.unlinkSync(f);
    await waitUntil(async () => (await getPod(daemon!.socket, 'static1')) === undefined, 20_000, 'static pod deleted');
    await waitUntil(() => leftovers(env!, { daemon: true }).length === 0, 10_000, 'clean state');
  });

  it('a request body over the limit is 413 RequestEntityTooLarge (declared or streamed), and the daemon serves on', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const big = podYaml('big', `    - { name: c, image: ${BUSYBOX}, command: ["true"], env: [{ name: X, value: "${'x'.repeat(5 << 20)}" }] }`);
    const r = await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', big, 'application/yaml');
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ kind: 'Status', reason: 'RequestEntityTooLarge', code: 413 });
    expect(r.json.message).toContain('the request body is larger than 4194304 bytes');
    // chunked, without a content-length: refused while streaming
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath: daemon!.socket, method: 'POST', path: '/api/v1/namespaces/default/pods', headers: { 'content-type': 'application/yaml', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let i = 0; i < 6; i++) req.write(Buffer.alloc(1 << 20, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await api(daemon.socket, 'GET', '/healthz')).status).toBe(200);
    expect((await api(daemon.socket, 'GET', '/api/v1/pods')).json.items).toEqual([]);
  });

  it('follows logs across a rotation', async () => {
    env = makeEnv();
    daemon = await startDaemon(env, ['--container-log-max-size', '4096', '--container-log-max-files', '3']);
    const body = podYaml('chatty', `    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "sleep 2; i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line-$i-padding-padding-padding; usleep 5000; done; echo END; exec sleep 1000"] }`);
    expect((await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml')).status).toBe(201);
    await waitPod(daemon.socket, 'chatty', (p) => cstatus(p, 'c')?.state?.running);
    const f = start([...env.globals, 'logs', '-f', '--socket', daemon.socket, 'chatty']);
    await f.waitFor(/END/, 20_000);
    f.child.kill('SIGTERM');
    await f.done;
    const lines = f.stdout().split('\n').filter((x) => x.startsWith('line-'));
    // every line exactly once, in order, although the file rotated several times (4 KiB, ~45 bytes per line)
    expect(lines.length).toBe(400);
    expect(lines.map((x) => Number(x.split('-')[1]))).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    const logDir = fs.readdirSync(env.podLogDir)[0]!;
    expect(fs.existsSync(path.join(env.podLogDir, logDir, 'c', '0.log.1'))).toBe(true);
  });

  it('keeps pods, containers and restart counts across a daemon SIGKILL and restart', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const body = `
apiVersion: v1
kind: Pod
metadata: { name: survivor }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - { name: crash, image: ${BUSYBOX}, command: ["sh", "-c", "echo run; sleep 0.3; exit 1"] }
    - { name: steady, image: ${BUSYBOX}, command: ["sh", "-c", "exec sleep 1000"] }
`;
    expect((await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml')).status).toBe(201);
    const before = await waitPod(daemon.socket, 'survivor', (p) => cstatus(p, 'crash')?.restartCount >= 2 && cstatus(p, 'steady')?.state?.running);
    const steadyId = cstatus(before, 'steady').containerID;
    const restarts = cstatus(before, 'crash').restartCount;
    await daemon.stop('SIGKILL');
    await sleep(300);
    daemon = await startDaemon(env);
    const after = await waitPod(daemon.socket, 'survivor', (p) => cstatus(p, 'steady')?.state?.running);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(cstatus(after, 'steady').containerID).toBe(steadyId); // not restarted
    expect(cstatus(after, 'crash').restartCount).toBeGreaterThanOrEqual(restarts);
  });

  it('after a daemon SIGKILL, probes run again: the pod stays Ready, readiness can still turn False, probe metrics have samples, events are kept', async () => {
    env = makeEnv();
    daemon = await startDaemon(env);
    const body = `
apiVersion: v1
kind: Pod
metadata: { name: probed }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "touch /tmp/ready; exec sleep 1000"]
      readinessProbe: { exec: { command: ["test", "-f", "/tmp/ready"] }, periodSeconds: 1 }
`;
    expect((await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml')).status).toBe(201);
    await waitPod(daemon.socket, 'probed', (p) => cstatus(p, 'c')?.ready === true);
    const eventsBefore = (await api(daemon.socket, 'GET', '/api/v1/namespaces/default/events')).json.items.filter((e: any) => e.involvedObject.name === 'probed').map((e: any) => e.reason);
    expect(eventsBefore).toContain('Started');
    await sleep(1000); // events reach the pod store within 0.5 s
    await daemon.stop('SIGKILL');
    daemon = await startDaemon(env);
    // Ready from the first status after the restart (the saved result), never 0/1 for a probe period
    const first = await waitPod(daemon.socket, 'probed', (p) => !!cstatus(p, 'c'));
    expect(cstatus(first, 'c').ready).toBe(true);
    const eventsAfter = (await api(daemon.socket, 'GET', '/api/v1/namespaces/default/events')).json.items.filter((e: any) => e.involvedObject.name === 'probed').map((e: any) => e.reason);
    for (const r of new Set(eventsBefore)) expect(eventsAfter).toContain(r);
    // the probe really runs again: make it fail and watch Ready turn False
    const x = await run([...env.globals, 'exec', '--socket', daemon.socket, 'probed', '--', 'rm', '/tmp/ready']);
    expect(x.code).toBe(0);
    await waitPod(daemon.socket, 'probed', (p) => cstatus(p, 'c')?.ready === false, 15_000);
    const metrics = (await api(daemon.socket, 'GET', '/metrics')).body;
    expect(metrics).toMatch(/^nodelet_probe_results\{probe_type="readiness",result="failure"\} [1-9]/m);
  });
});
