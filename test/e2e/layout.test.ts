// The on-disk layout kubectl, kubelet and log-shipper users expect, against the real binary with the
// env's private dirs (makeEnv: --pod-log-dir <dir>/logs, --container-log-link-dir <dir>/containers,
// --cni-conf-dir <dir>/cni): kubelet's <ns>_<pod>_<uid>/<container>/<n>.log, the /var/log/containers-style
// symlink <pod>_<ns>_<container>-<id>.log, both gone with the pod; the built-in CNI network written once.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUSYBOX, leftovers, makeEnv, run, start, waitUntil, writeManifest, type Env } from './helpers.js';
import { api, getPod, waitPod } from './daemon-helpers.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

const podYaml = (name: string, cmd: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", ${JSON.stringify(cmd)}] }
`;

describe('on-disk layout', () => {
  it('daemon: kubelet log layout + log-shipper symlink, both removed with the pod; the default CNI network is written once and logged', async () => {
    const e = (env = makeEnv());
    const socket = path.join(e.dir, 'nodelet.sock');
    const globals = e.globals.map((x) => (x === 'warn' ? 'info' : x)); // the CNI line is an info line
    const d = start([...globals, 'daemon', ...e.nodeFlags, '--socket', socket, '--manifest-dir', path.join(e.dir, 'manifests')]);
    try {
      await waitUntil(async () => (await api(socket, 'GET', '/healthz').catch(() => undefined))?.status === 200, 20_000, `daemon\n${d.stderr()}`);
      expect((await api(socket, 'POST', '/api/v1/namespaces/default/pods', podYaml('logger', 'echo hello-layout; exec sleep 1000'), 'application/yaml')).status).toBe(201);
      const pod = await waitPod(socket, 'logger', (p) => p.status?.containerStatuses?.[0]?.state?.running);
      const uid = pod.metadata.uid as string;
      const id = (pod.status.containerStatuses[0].containerID as string).replace(/^nodelet:\/\//, '');

      const logFile = path.join(e.podLogDir, `default_logger_${uid}`, 'c', '0.log');
      await waitUntil(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('hello-layout'), 10_000, `${logFile}`);
      const link = path.join(e.logLinkDir, `logger_default_c-${id}.log`);
      expect(fs.readdirSync(e.logLinkDir)).toEqual([path.basename(link)]);
      expect(fs.readlinkSync(link)).toBe(logFile);
      expect(fs.readFileSync(link, 'utf8')).toContain('hello-layout'); // log shippers read through it
      expect(fs.existsSync(path.join(e.root, 'logs'))).toBe(false); // nothing in the old root-relative place

      // the logs verbs read the path from the runtime's status
      const logs = await run([...e.globals, 'logs', '--socket', socket, 'logger']);
      expect(logs.stdout).toBe('hello-layout\n');

      // CNI: no configuration in the dir → the built-in one written there, said once
      const conf = path.join(e.dir, 'cni', '10-nodelet.conflist');
      expect(JSON.parse(fs.readFileSync(conf, 'utf8')).plugins[0].bridge).toBe(e.bridgeName);
      const said = d.stderr().split('\n').filter((l) => l.includes('wrote the built-in default'));
      expect(said.length, d.stderr()).toBe(1);
      expect(said[0]).toContain(`no CNI network configuration in ${path.join(e.dir, 'cni')}: wrote the built-in default ${conf}`);

      expect((await api(socket, 'DELETE', '/api/v1/namespaces/default/pods/logger')).status).toBe(200);
      await waitUntil(async () => (await getPod(socket, 'logger')) === undefined, 20_000, 'pod deleted');
      expect(fs.existsSync(link)).toBe(false);
      expect(fs.existsSync(path.dirname(path.dirname(logFile)))).toBe(false);
      expect(fs.readdirSync(e.podLogDir)).toEqual([]);
      expect(leftovers(e, { daemon: true }).join('\n')).toBe('');
    } finally {
      d.child.kill('SIGTERM');
      await d.done;
    }
  });

  it('run: the same layout while the pod runs, nothing left at exit; an existing CNI config is used, none written', async () => {
    const e = (env = makeEnv());
    // a configuration already there (as a user's /etc/cni/net.d would have): used as it is, nothing written beside it
    const cniDir = path.join(e.dir, 'cni');
    fs.mkdirSync(cniDir, { recursive: true });
    const mine = path.join(cniDir, '50-mine.conflist');
    fs.writeFileSync(mine, JSON.stringify({
      cniVersion: '1.0.0', name: 'mine',
      plugins: [{ type: 'bridge', bridge: e.bridgeName, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '10.253.77.0/24' }]], dataDir: path.join(e.dir, 'ipam') } }],
    }));
    const f = writeManifest(e, 'job.yaml', podYaml('job', 'echo from-run; ls /proc/1 >/dev/null; sleep 1'));
    const r = start([...e.globals.map((x) => (x === 'warn' ? 'info' : x)), 'run', ...e.nodeFlags, f]);
    await r.waitFor(/\[c\] from-run/, 30_000);
    const [dir] = fs.readdirSync(e.podLogDir);
    expect(dir).toMatch(/^default_job_[0-9a-f-]{36}$/);
    expect(fs.existsSync(path.join(e.podLogDir, dir!, 'c', '0.log'))).toBe(true);
    const [link] = fs.readdirSync(e.logLinkDir);
    expect(link).toMatch(/^job_default_c-[0-9a-f]{64}\.log$/);
    expect(fs.readlinkSync(path.join(e.logLinkDir, link!))).toBe(path.join(e.podLogDir, dir!, 'c', '0.log'));
    const res = await r.done;
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readdirSync(cniDir)).toEqual(['50-mine.conflist']);
    expect(res.stderr).not.toContain('wrote the built-in default');
    expect(leftovers(e).join('\n')).toBe('');
  });

  it('--help shows the ecosystem defaults', async () => {
    for (const verb of ['run', 'daemon']) {
      const h = await run([verb, '--help']);
      const text = h.stdout.replace(/\s+/g, ' ');
      expect(text).toContain('(default /etc/cni/net.d)');
      expect(text).toContain("(default /opt/cni/bin, then Debian's /usr/lib/cni)");
      expect(text).toContain('--pod-log-dir');
      expect(text).toContain('(default /var/log/pods)');
      expect(text).toContain('(default /var/log/containers; "" = none)');
    }
  });
});
