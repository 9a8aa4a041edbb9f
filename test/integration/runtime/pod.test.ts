// A real two-container pod on the real kernel: namespaces, mounts, hostname,
// /etc/hosts, capabilities, localhost networking; limits (OOM, CPU, pids);
// exec; a failing start. Run inside `unshare --net` (scripts/test does).
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerConfig, makeFixture, mountsUnder, pidAlive, podConfig, sleep, waitFor, type Fixture } from './fixture.js';
import type { ContainerExitEvent } from '../../../src/runtime/types.js';
import { NodeletRuntime } from '../../../src/runtime/runtime.js';

let f: Fixture;
const exits: ContainerExitEvent[] = [];
beforeAll(async () => {
  f = await makeFixture();
  f.rt.onContainerExit((e) => exits.push(e));
});
afterAll(async () => { await f?.teardown(); });

const sh = (script: string) => ['/bin/sh', '-c', script];
const out = async (id: string, script: string) => {
  const r = await f.rt.execSync(id, sh(script), { timeoutMs: 10_000 });
  expect(r.exitCode, `exec "${script}" stderr=${r.stderr.toString()}`).toBe(0);
  return r.stdout.toString().trim();
};

describe('two-container pod', () => {
  let sbId: string;
  let a: string;
  let b: string;
  beforeAll(async () => {
    sbId = await f.rt.runPodSandbox(podConfig({ name: 'twins', hostAliases: [{ ip: '10.9.9.9', hostnames: ['alias.example'] }] }));
    a = await f.rt.createContainer(sbId, containerConfig(f, 'a', sh('mkdir -p /www && echo hello-from-a > /www/index.html && exec httpd -f -p 8080 -h /www')));
    b = await f.rt.createContainer(sbId, containerConfig(f, 'b', ['sleep', '1000']));
    await f.rt.startContainer(a);
    await f.rt.startContainer(b);
  });

  it('both run, each as PID 1 of its own PID namespace', async () => {
    expect((await f.rt.containerStatus(a)).state).toBe('running');
    expect(await out(b, 'cat /proc/1/cmdline | tr "\\0" " "')).toBe('sleep 1000');
    expect(await out(a, 'cat /proc/1/comm')).toBe('httpd');
    // b cannot see a's httpd
    expect(await out(b, 'ps -o comm | grep -c httpd || true')).toBe('0');
  });

  it('they reach each other on localhost and share net, IPC and UTS namespaces', async () => {
    const body = await waitFor(async () => {
      const r = await f.rt.execSync(b, ['wget', '-qO-', 'http://127.0.0.1:8080/index.html'], { timeoutMs: 5000 });
      return r.exitCode === 0 ? r.stdout.toString().trim() : undefined;
    }, 10_000, 'httpd in a');
    expect(body).toBe('hello-from-a');
    for (const ns of ['net', 'ipc', 'uts']) {
      const na = await out(a, `readlink /proc/self/ns/${ns}`);
      expect(await out(b, `readlink /proc/self/ns/${ns}`)).toBe(na);
      expect(fs.readlinkSync(`/proc/self/ns/${ns}`)).not.toBe(na);
    }
    expect(await out(a, 'readlink /proc/self/ns/pid')).not.toBe(await out(b, 'readlink /proc/self/ns/pid'));
    expect(await out(a, 'hostname')).toBe('twins');
    expect(await out(b, 'hostname')).toBe('twins');
  });

  it('has the pod IP, /etc/hosts, /etc/hostname, /dev/shm shared, mounts as runc sets them', async () => {
    const st = await f.rt.podSandboxStatus(sbId);
    expect(st.ips.length).toBe(1);
    const hosts = await out(a, 'cat /etc/hosts');
    expect(hosts).toContain('127.0.0.1\tlocalhost');
    expect(hosts).toContain(`${st.ips[0]}\ttwins`);
    expect(hosts).toContain('10.9.9.9\talias.example');
    expect(await out(b, 'cat /etc/hostname')).toBe('twins');
    await out(a, 'echo shared > /dev/shm/x');
    expect(await out(b, 'cat /dev/shm/x')).toBe('shared');
    const mounts = await out(b, 'cat /proc/mounts');
    expect(mounts).toMatch(/^proc \/proc proc rw,nosuid,nodev,noexec/m);
    expect(mounts).toMatch(/^devpts \/dev\/pts devpts .*ptmxmode=666/m);
    expect(mounts).toMatch(/^sysfs \/sys sysfs ro,/m);
    expect(mounts).toMatch(/^mqueue \/dev\/mqueue mqueue/m);
    expect(await out(b, 'ls -l /dev/null | cut -c1')).toBe('c');
    expect(await out(b, 'head -c 20 /proc/timer_list | wc -c')).toBe('0'); // masked (the host's has content)
    expect(await out(b, 'ls /sys/firmware | wc -l')).toBe('0');
    expect((await f.rt.execSync(b, sh('echo 1 > /proc/sys/kernel/domainname'))).exitCode).not.toBe(0);
  });

  it('runs with containerd\'s default capabilities', async () => {
    expect(await out(b, 'grep CapEff /proc/self/status | cut -f2')).toBe('00000000a80425fb');
    expect(await out(b, 'grep CapBnd /proc/1/status | cut -f2')).toBe('00000000a80425fb');
    expect(await out(b, 'grep NoNewPrivs /proc/1/status | cut -f2')).toBe('0');
  });

  it('nofile is clamped to the daemon\'s hard limit', async () => {
    const hard = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!.trim().split(/\s+/)[4]!;
    expect(await out(b, 'ulimit -n')).toBe(String(Math.min(Number(hard), 1048576)));
  });

  it('exec: output, exit code, stdin, and a timeout that leaves nothing behind', async () => {
    const r = await f.rt.execSync(b, sh('echo out; echo err >&2; exit 3'));
    expect(r).toMatchObject({ exitCode: 3, timedOut: false });
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr.toString()).toBe('err\n');
    expect((await f.rt.execSync(b, ['cat'], { stdin: 'piped' })).stdout.toString()).toBe('piped');
    const t0 = Date.now();
    const t = await f.rt.execSync(b, sh('sleep 100 & sleep 100'), { timeoutMs: 300 });
    expect(t.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    await waitFor(async () => (await f.cgroups.pids(`${(await f.rt.podSandboxStatus(sbId)).cgroupPath}/${b}`)).length === 1 || undefined, 5000, 'exec processes gone');
  });

  it('exec -it: a terminal from the container\'s own devpts, sized and resized; -i streams stdin', async () => {
    const t = await f.rt.exec(b, sh('tty; stty size; read x; stty size; exit 5'), { tty: true, stdin: true, size: { cols: 120, rows: 33 } });
    expect(t.stderr).toBeNull();
    let acc = '';
    t.stdout.on('data', (d: Buffer) => { acc += d.toString(); });
    await waitFor(() => /33 120\r\n/.test(acc) || undefined, 5000, 'the first stty size');
    expect(acc).toMatch(/^\/dev\/pts\/\d+\r\n33 120\r\n$/);
    t.resize(80, 24);
    t.stdin!.write('x\n');
    expect(await t.exit).toEqual({ exitCode: 5 });
    expect(acc).toMatch(/x\r\n24 80\r\n$/);

    const i = await f.rt.exec(b, ['sh', '-c', 'while read l; do echo "<$l>"; done; exit 2'], { stdin: true });
    let got = '';
    i.stdout.on('data', (d: Buffer) => { got += d.toString(); });
    i.stderr!.resume();
    i.stdin!.write('one\n');
    await waitFor(() => got === '<one>\n' || undefined, 5000, 'the echo of the first line');
    i.stdin!.end('two\n');
    expect(await i.exit).toEqual({ exitCode: 2 });
    expect(got).toBe('<one>\n<two>\n');
    const e = await f.rt.exec(b, ['/no/such/binary']).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_EXEC_START' });
    await waitFor(async () => (await f.cgroups.pids(`${(await f.rt.podSandboxStatus(sbId)).cgroupPath}/${b}`)).length === 1 || undefined, 5000, 'exec processes gone');
  });

  it('stop: SIGTERM then SIGKILL after the grace period, exit recorded and announced', async () => {
    const t0 = Date.now();
    const running = await f.rt.exec(b, ['sleep', '4260.5']); // ends with the container
    running.stdout.resume();
    running.stderr!.resume();
    // the exec joined the container's cgroup; the shim's helper relaying it did not
    expect((await f.cgroups.pids(`${(await f.rt.podSandboxStatus(sbId)).cgroupPath}/${b}`)).length).toBe(2);
    await f.rt.stopContainer(b, 1); // sleep as PID 1 ignores SIGTERM → SIGKILL after 1 s
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const st = await f.rt.containerStatus(b);
    expect(st).toMatchObject({ state: 'exited', exitCode: 137, signal: 'SIGKILL', reason: 'Error' });
    expect(exits.find((e) => e.containerId === b)?.status.exitCode).toBe(137);
    expect(await running.exit).toEqual({ exitCode: 137, signal: 'SIGKILL' });
    await expect(f.rt.exec(b, ['true'])).rejects.toMatchObject({ code: 'ERR_CONTAINER_NOT_RUNNING' });
    await f.rt.stopContainer(b, 1); // idempotent
  });

  it('removing the pod leaves no mounts, cgroups, namespaces or state', async () => {
    const cg = (await f.rt.podSandboxStatus(sbId)).cgroupPath;
    await f.rt.removePodSandbox(sbId);
    await f.rt.removePodSandbox(sbId);
    expect(mountsUnder(f.runRoot)).toEqual([]);
    expect(f.cgroups.exists(cg)).toBe(false);
    expect(fs.readdirSync(path.join(f.runRoot, 'sandboxes'))).toEqual([]);
    expect(fs.readdirSync(path.join(f.runRoot, 'containers'))).toEqual([]);
    expect(f.images.keys()).toEqual([]);
    expect(execFileSync('ip', ['-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }).trim()).toBe('');
  });
});

/** Run `fn` with a fresh sandbox that is removed afterwards, even on failure. */
async function withPod(cfg: Parameters<typeof podConfig>[0], fn: (sb: string) => Promise<void>): Promise<void> {
  const sb = await f.rt.runPodSandbox(podConfig(cfg));
  try {
    await fn(sb);
  } finally {
    await f.rt.removePodSandbox(sb);
  }
  expect(mountsUnder(path.join(f.runRoot, 'sandboxes', sb))).toEqual([]);
}

describe('shareProcessNamespace', () => {
  it('containers see each other\'s processes and survive one of them exiting', async () => {
    await withPod({ shareProcessNamespace: true }, async (sb) => {
    const a = await f.rt.createContainer(sb, containerConfig(f, 'a', ['sleep', '1001']));
    const b = await f.rt.createContainer(sb, containerConfig(f, 'b', ['sleep', '1002']));
    await f.rt.startContainer(a);
    await f.rt.startContainer(b);
    const ps = await out(b, 'ps -o args');
    expect(ps).toContain('sleep 1001');
    expect(ps).toContain('sleep 1002');
    await f.rt.stopContainer(a, 0);
    expect((await f.rt.containerStatus(b)).state).toBe('running');
    expect(await out(b, 'echo alive')).toBe('alive');
    expect(await out(b, 'cat /proc/1/cmdline | tr "\\0" " "')).toMatch(/sh -c while/);
    // orphans are reparented to the pod-init, which reaps them (no zombies)
    await out(b, '(sleep 0.2 &); true');
    let ps2 = '';
    await waitFor(async () => {
      await sleep(200);
      ps2 = await out(b, 'ps -o pid,ppid,stat,args');
      return (!ps2.includes('sleep 0.2') && ps2.split('\n').every((l) => !/ Z /.test(l))) || undefined;
    }, 10_000, 'the pod-init to reap the orphan').catch(() => expect.fail(`zombies left:\n${ps2}`));
    });
  });
});

describe('limits', () => {
  it('memory limit → OOMKilled, exit 137, container scope', async () => {
    await withPod({ qosClass: 'Burstable' }, async (sb) => {
    const c = await f.rt.createContainer(sb, containerConfig(f, 'hog', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=128M', 'count=1'], { resources: { memoryLimitBytes: 32 * 1024 * 1024 } }));
    const seen = new Promise<ContainerExitEvent>((resolve) => f.rt.onContainerExit((e) => { if (e.containerId === c) resolve(e); }));
    await f.rt.startContainer(c);
    const ev = await seen;
    expect(ev.status).toMatchObject({ state: 'exited', exitCode: 137, reason: 'OOMKilled', oomKilled: true, oomScope: 'container' });
    });
  });

  it('the pod memory limit → OOMKilled with pod scope', async () => {
    await withPod({ qosClass: 'Burstable', resources: { memoryLimitBytes: 32 * 1024 * 1024 } }, async (sb) => {
      const c = await f.rt.createContainer(sb, containerConfig(f, 'hog', ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=128M', 'count=1']));
      const seen = new Promise<ContainerExitEvent>((resolve) => f.rt.onContainerExit((e) => { if (e.containerId === c) resolve(e); }));
      await f.rt.startContainer(c);
      expect((await seen).status).toMatchObject({ exitCode: 137, reason: 'OOMKilled', oomKilled: true, oomScope: 'pod' });
    });
  });

  it('CPU limit throttles (cpu.stat nr_throttled)', async () => {
    await withPod({}, async (sb) => {
    const c = await f.rt.createContainer(sb, containerConfig(f, 'spin', sh('while :; do :; done'), { resources: { cpuLimitMilli: 100 } }));
    await f.rt.startContainer(c);
    await sleep(1000);
    const cg = `${(await f.rt.podSandboxStatus(sb)).cgroupPath}/${c}`;
    const cpuDir = f.cgroups.procsFiles(cg).map((p) => path.dirname(p)).find((d) => fs.existsSync(path.join(d, 'cpu.cfs_quota_us')) || fs.existsSync(path.join(d, 'cpu.max')))!;
    const stat = Object.fromEntries(fs.readFileSync(path.join(cpuDir, 'cpu.stat'), 'utf8').trim().split('\n').map((l) => l.split(' ')));
    expect(Number(stat.nr_throttled)).toBeGreaterThan(0);
    const stats = await f.rt.containerStats(c);
    expect(stats.cpuUsageNanos).toBeGreaterThan(0);
    expect(stats.cpuUsageNanos).toBeLessThan(0.5e9); // ~0.1 s of CPU in 1 s, far from a whole core
    });
  });

  it('pids limit stops a fork bomb', async () => {
    let cg = '';
    await withPod({}, async (sb) => {
    const c = await f.rt.createContainer(sb, containerConfig(f, 'bomb', sh('(i=0; while [ $i -lt 100 ]; do sleep 100 & i=$((i+1)); done; echo spawned); echo survived; exec sleep 100'), { resources: { pidsLimit: 20 } }));
    await f.rt.startContainer(c);
    cg = `${(await f.rt.podSandboxStatus(sb)).cgroupPath}/${c}`;
    const logPath = (await f.rt.containerStatus(c)).logPath;
    // The subshell gives up at the first failed fork ("can't fork"); its sleeps stay behind, PID 1 goes on.
    await waitFor(() => (fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('survived')) || undefined, 15_000, 'the fork loop to end');
    expect(fs.readFileSync(logPath, 'utf8')).toMatch(/can't fork|Resource temporarily unavailable/);
    const n = (await f.cgroups.pids(cg)).length;
    expect(n).toBeLessThanOrEqual(20);
    expect(n).toBeGreaterThan(5);
    expect(fs.readFileSync(logPath, 'utf8')).not.toContain('spawned');
    });
    expect(f.cgroups.exists(cg)).toBe(false);
  });
});

describe('failing start', () => {
  it('a nonexistent binary is a clear StartError and leaves nothing behind', async () => {
    await withPod({ hostNetwork: true }, async (sb) => {
    const c = await f.rt.createContainer(sb, containerConfig(f, 'bad', ['/no/such/binary']));
    const err = await f.rt.startContainer(c).then(() => undefined, (e: unknown) => e as Error & { code?: string });
    expect(err?.code).toBe('ERR_CONTAINER_START');
    expect(err?.message).toMatch(/\/no\/such\/binary/);
    expect(err?.message).toMatch(/ENOENT|No such file/);
    const st = await f.rt.containerStatus(c);
    expect(st).toMatchObject({ state: 'exited', reason: 'StartError', exitCode: 128 });
    const cg = `${(await f.rt.podSandboxStatus(sb)).cgroupPath}/${c}`;
    expect(await f.cgroups.pids(cg)).toEqual([]);
    await f.rt.removeContainer(c);
    expect(f.cgroups.exists(cg)).toBe(false);
    expect(fs.existsSync(path.join(f.runRoot, 'containers', c))).toBe(false);
    expect(mountsUnder(path.join(f.runRoot, 'containers'))).toEqual([]);
    });
  });
});

describe('security context', () => {
  it('runAsUser/supplementalGroups, readOnlyRootFilesystem, noNewPrivs; privileged; runAsNonRoot refused', async () => {
    await withPod({}, async (sb) => {
      const u = await f.rt.createContainer(sb, containerConfig(f, 'user', ['sleep', '1000'], {}, { runAsUser: 1000, supplementalGroups: [3000], readOnlyRootFilesystem: true, noNewPrivs: true, capabilitiesDrop: ['NET_RAW'] }));
      const p = await f.rt.createContainer(sb, containerConfig(f, 'priv', ['sleep', '1000'], {}, { privileged: true }));
      await f.rt.startContainer(u);
      await f.rt.startContainer(p);
      // containerd puts the primary gid in the supplementary list too (ensureAdditionalGids)
      expect(await out(u, 'id')).toBe('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),3000');
      expect(await out(u, 'echo $HOME')).toBe('/home');
      expect((await f.rt.execSync(u, sh('touch /newfile'))).exitCode).not.toBe(0);
      expect(await out(u, 'grep -E "^(CapBnd|NoNewPrivs)" /proc/1/status | cut -f2 | tr "\\n" " "')).toBe('00000000a80405fb 1');
      expect(await out(u, 'grep CapEff /proc/1/status | cut -f2')).toBe('0000000000000000'); // non-root: kernel drops them at exec
      // privileged: every capability the daemon holds (its bounding set)
      const bnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
      expect(await out(p, 'grep CapEff /proc/self/status | cut -f2')).toBe(bnd);
      const sysLine = await out(p, 'grep " /sys " /proc/mounts');
      expect(sysLine.split(' ')[3]!.split(',')[0], sysLine).toBe('rw');
      expect(await out(p, 'test -c /dev/loop-control && echo yes')).toBe('yes');
      expect(await out(p, 'head -c 20 /proc/timer_list | wc -c')).toBe('20'); // unmasked
      const err = await f.rt.createContainer(sb, containerConfig(f, 'nonroot', ['true'], {}, { runAsNonRoot: true })).catch((e: { code?: string }) => e);
      expect((err as { code?: string }).code).toBe('ERR_CONTAINER_RUN_AS_NON_ROOT');
      expect((await f.rt.listContainers({ sandboxId: sb })).map((c) => c.name).sort()).toEqual(['priv', 'user']);
    });
    expect(fs.readdirSync(path.join(f.runRoot, 'containers'))).toEqual([]);
    expect(f.images.keys()).toEqual([]);
  });
});

describe('sandbox rollback', () => {
  it('a failure midway (pod-init cannot start) undoes namespaces, network, /dev/shm, cgroup and state', async () => {
    const broken = new NodeletRuntime({ ...f.opts, podInitBinary: '/nonexistent/busybox' });
    const cfg = podConfig({ shareProcessNamespace: true });
    const err = await broken.runPodSandbox(cfg).catch((e: Error & { code?: string }) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ERR_CONTAINER_START');
    expect(fs.readdirSync(path.join(f.runRoot, 'sandboxes'))).toEqual([]);
    expect(mountsUnder(path.join(f.runRoot, 'sandboxes'))).toEqual([]);
    expect(f.cgroups.exists(f.cgroups.podPath(cfg.uid, cfg.qosClass))).toBe(false);
    expect(execFileSync('ip', ['-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }).trim()).toBe('');
    await broken.close();
  });

  it('an invalid hostname is refused before anything is created', async () => {
    const err = await f.rt.runPodSandbox(podConfig({ hostname: 'not_valid!' })).catch((e: Error & { code?: string }) => e);
    expect((err as { code?: string }).code).toBe('ERR_POD_HOSTNAME_INVALID');
    expect(fs.readdirSync(path.join(f.runRoot, 'sandboxes'))).toEqual([]);
  });
});

describe('lost shim', () => {
  it('a shim killed under a running container → exited/Unknown 255, event, container killed', async () => {
    await withPod({ hostNetwork: true }, async (sb) => {
      const c = await f.rt.createContainer(sb, containerConfig(f, 'orphaned', ['sleep', '1000']));
      const seen = new Promise<ContainerExitEvent>((resolve) => f.rt.onContainerExit((e) => { if (e.containerId === c) resolve(e); }));
      await f.rt.startContainer(c);
      const pid = (await f.rt.containerStatus(c)).pid!;
      const { shimPid } = JSON.parse(fs.readFileSync(path.join(f.runRoot, 'containers', c, 'shim', 'state.json'), 'utf8')) as { shimPid: number };
      process.kill(shimPid, 'SIGKILL');
      const ev = await seen;
      expect(ev.status).toMatchObject({ state: 'exited', exitCode: 255, reason: 'Unknown' });
      await waitFor(() => !pidAlive(pid) || undefined, 5000, 'the container to be killed');
    });
  });
});
