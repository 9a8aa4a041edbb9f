// scripts/control-plane against the real v1.36 binaries: up, identities, down.
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneScript, startControlPlane, type ControlPlane } from '../../helpers/control-plane.js';

const run = promisify(execFile);
let cp: ControlPlane;
let upMs = 0;

beforeAll(async () => {
  const t0 = Date.now();
  cp = await startControlPlane();
  upMs = Date.now() - t0;
}, 1_800_000);
afterAll(async () => {
  await cp?.down();
});

/** TCP ports in LISTEN state in this network namespace. */
function listeningPorts(): Set<number> {
  const out = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(f)) continue;
    for (const l of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = l.trim().split(/\s+/);
      if (cols.length > 3 && cols[3] === '0A') out.add(parseInt(cols[1].split(':')[1], 16));
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

describe('scripts/control-plane', () => {
  it('comes up with a ready API server (admin kubeconfig, kubectl v1.36)', async () => {
    console.log(`control plane up in ${upMs} ms (${cp.dir})`);
    const r = await cp.kubectl(['get', '--raw', '/readyz']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
    const v = await cp.kubectl(['version', '-o', 'json']);
    expect(v.code).toBe(0);
    const ver = JSON.parse(v.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    expect(ver.serverVersion.gitVersion).toMatch(/^v1\.36\./);
    expect(ver.clientVersion.gitVersion).toMatch(/^v1\.36\./);
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const who = await cp.kubectl(['auth', 'whoami', '-o', 'json']);
    expect(JSON.parse(who.stdout).status.userInfo.groups).toContain('system:masters');
  });

  it('env prints KUBECONFIG, CONTROL_PLANE_DIR and the bin dir first on PATH', async () => {
    const { stdout } = await run(controlPlaneScript, ['env'], { env: { ...process.env, CONTROL_PLANE_DIR: cp.dir } });
    expect(stdout).toContain(`export KUBECONFIG=${cp.kubeconfig}`);
    expect(stdout).toContain(`export CONTROL_PLANE_DIR=${cp.dir}`);
    expect(stdout).toContain(`export PATH=${cp.binDir}:"$PATH"`);
    const { stdout: which } = await run('bash', ['-c', 'eval "$("$0" env)"; command -v kubectl; kubectl version --client -o json', controlPlaneScript], {
      env: { ...process.env, CONTROL_PLANE_DIR: cp.dir },
    });
    expect(which.split('\n')[0]).toBe(path.join(cp.binDir, 'kubectl'));
    expect(which).toContain('"gitVersion": "v1.36.');
  });

  it('the default ServiceAccount and kube-root-ca.crt exist (controller-manager works)', async () => {
    const sa = await cp.kubectl(['get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name']);
    expect(sa.stdout.trim()).toBe('serviceaccount/default');
    const ca = await cp.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', 'default', '-o', 'jsonpath={.data.ca\\.crt}']);
    expect(ca.stdout).toBe(readFileSync(cp.caFile, 'utf8'));
  });

  it('node-kubeconfig authenticates as system:node:NAME in system:nodes, and is restricted by the Node authorizer', async () => {
    const kc = await cp.nodeKubeconfig('cp-test-node');
    expect(await cp.nodeKubeconfig('cp-test-node')).toBe(kc); // made once
    const who = await cp.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: kc });
    expect(who.code).toBe(0);
    const info = JSON.parse(who.stdout).status.userInfo as { username: string; groups: string[] };
    expect(info.username).toBe('system:node:cp-test-node');
    expect(info.groups).toContain('system:nodes');
    const secrets = await cp.kubectl(['get', 'secrets', '-n', 'kube-system'], { kubeconfig: kc });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toContain('Forbidden');
    const bad = await run(controlPlaneScript, ['node-kubeconfig', 'Bad_Name'], { env: { ...process.env, CONTROL_PLANE_DIR: cp.dir } }).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('DNS-1123');
  });

  it('status reports all four components running and the API server ready', async () => {
    const { stdout } = await run(controlPlaneScript, ['status'], { env: { ...process.env, CONTROL_PLANE_DIR: cp.dir } });
    for (const c of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) expect(stdout).toContain(`${c} running`);
  });

  it('the controller-manager signs an approved CertificateSigningRequest with the cluster CA', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'cp-csr-'));
    try {
      await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${tmp}/k.pem`, '-subj', '/CN=csr-user/O=testers', '-out', `${tmp}/r.csr`]);
      const csr = {
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { name: 'cp-test-csr' },
        spec: { request: readFileSync(`${tmp}/r.csr`).toString('base64'), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['client auth'], expirationSeconds: 3600 },
      };
      expect((await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(csr) })).code).toBe(0);
      expect((await cp.kubectl(['certificate', 'approve', 'cp-test-csr'])).code).toBe(0);
      let cert = '';
      for (let i = 0; i < 100 && !cert; i++) {
        cert = (await cp.kubectl(['get', 'csr', 'cp-test-csr', '-o', 'jsonpath={.status.certificate}'])).stdout.trim();
        if (!cert) await new Promise((r) => setTimeout(r, 200));
      }
      expect(cert).not.toBe('');
      const pem = Buffer.from(cert, 'base64').toString();
      const x = new X509Certificate(pem);
      expect(x.subject).toContain('CN=csr-user');
      expect(x.verify(new X509Certificate(readFileSync(cp.caFile)).publicKey)).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('fails clearly on bad input without leaving anything behind', async () => {
    const before = readdirSync('/var/tmp').filter((n) => n.startsWith('nodelet-cp.')).length;
    const r = await run(controlPlaneScript, ['up'], { env: { ...process.env, NODE_MONITOR_GRACE_PERIOD: 'soon', CONTROL_PLANE_DIR: '' } }).catch((e) => e);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('NODE_MONITOR_GRACE_PERIOD');
    expect(readdirSync('/var/tmp').filter((n) => n.startsWith('nodelet-cp.')).length).toBe(before);
    const e = await run(controlPlaneScript, ['env'], { env: { ...process.env, CONTROL_PLANE_DIR: '' } }).catch((x) => x);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('CONTROL_PLANE_DIR is not set');
  });

  it('down stops every process, frees every port and removes the state dir; a second down is a no-op', async () => {
    const pids = readdirSync(path.join(cp.dir, 'pids')).map((f) => Number(readFileSync(path.join(cp.dir, 'pids', f), 'utf8').trim()));
    expect(pids.length).toBeGreaterThanOrEqual(4);
    const ports = readFileSync(path.join(cp.dir, 'ports'), 'utf8')
      .split('\n')
      .filter((l) => /_port=\d+$/.test(l))
      .map((l) => Number(l.split('=')[1]));
    expect(ports).toHaveLength(5);
    const listening = listeningPorts();
    for (const p of [ports[0], ports[2], ports[3], ports[4]]) expect(listening.has(p), `port ${p} listening before down`).toBe(true);
    for (const pid of pids) expect(alive(pid)).toBe(true);

    await cp.down();
    for (const pid of pids) expect(alive(pid), `pid ${pid} after down`).toBe(false);
    const after = listeningPorts();
    for (const p of ports) expect(after.has(p), `port ${p} after down`).toBe(false);
    expect(existsSync(cp.dir)).toBe(false);
    const again = await run(controlPlaneScript, ['down'], { env: { ...process.env, CONTROL_PLANE_DIR: cp.dir } });
    expect(again.stderr).toContain('nothing to stop');
  });

  it('with CONTROL_PLANE_OWNER_PID, a watchdog takes everything down once the owner is gone', async () => {
    const owner = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const { stdout } = await run(controlPlaneScript, ['up'], {
        env: { ...process.env, CONTROL_PLANE_OWNER_PID: String(owner.pid), CONTROL_PLANE_DIR: '' },
        timeout: 600_000,
      });
      const dir = /^export CONTROL_PLANE_DIR=(.+)$/m.exec(stdout)?.[1];
      expect(dir).toBeTruthy();
      const pids = readdirSync(path.join(dir!, 'pids')).map((f) => Number(readFileSync(path.join(dir!, 'pids', f), 'utf8').trim()));
      expect(pids.length).toBe(5); // four components + the watchdog
      owner.kill('SIGKILL');
      for (let i = 0; i < 150 && (existsSync(dir!) || pids.some(alive)); i++) await new Promise((r) => setTimeout(r, 200));
      for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
      expect(existsSync(dir!)).toBe(false);
    } finally {
      owner.kill('SIGKILL');
    }
  }, 600_000);
});
