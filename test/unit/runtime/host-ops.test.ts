// NodeletRuntime without root: every kernel contact goes through a fake HostOps
// (src/sys/host.ts), the shim, cgroups, pinner, network and images are fakes too.
// Checks the runtime's own steps: what it mounts, signals, reads and writes.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { NodeletRuntime } from '../../../src/runtime/runtime.js';
import type { ContainerConfig, PodSandboxConfig } from '../../../src/runtime/types.js';
import type { HostOps, ProcessHandle } from '../../../src/sys/host.js';
import type { CgroupManager } from '../../../src/cgroups/types.js';
import type { ImageProvider, ImageRecord } from '../../../src/image/types.js';
import type { NamespacePinner, PodNetwork } from '../../../src/network/types.js';
import type { ShimClient, ShimState } from '../../../src/runtime/shim/index.js';
import type { ShimPlan } from '../../../src/runtime/shim/plan.js';
import type { Mount } from '../../../src/cri/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const SIG = os.constants.signals;

function fakeHost(log: string[]): HostOps {
  const files: Record<string, string> = {
    '/proc/sys/kernel/cap_last_cap': '40\n',
    '/proc/self/status': 'Name:\tnode\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n',
    '/proc/self/limits': 'Max open files            1024                 4096                 files     \n',
    '/proc/self/oom_score_adj': '0\n',
    '/etc/resolv.conf': 'nameserver 10.0.0.53\nsearch example.org\n',
    '/etc/hosts': '127.0.0.1 localhost\n',
  };
  return {
    mountTmpfs: (target, o) => log.push(`tmpfs ${target} size=${o.sizeBytes} mode=${o.mode.toString(8)}`),
    mountAll: (mounts: Mount[], target) => {
      log.push(`mount ${mounts.map((m) => m.type).join(',')} ${target}`);
      // what the overlay would show: the image's /etc/passwd
      fs.mkdirSync(join(target, 'etc'), { recursive: true });
      fs.writeFileSync(join(target, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
    },
    unmountAll: (target) => log.push(`unmount ${target}`),
    openProcess: (pid): ProcessHandle => ({
      signal: (sig) => (log.push(`signal ${pid} ${sig}`), onSignal?.(sig), true),
      close: () => log.push(`close ${pid}`),
    }),
    readFile: (f) => files[f],
    hostname: () => 'fakehost',
    totalMemoryBytes: () => 8 << 30,
    listDevices: () => [],
  };
}
let onSignal: ((sig: number) => void) | undefined;

function fakeCgroups(log: string[]): CgroupManager {
  return {
    version: 'v2', parent: '/nodelet',
    podPath: (uid, qos) => `/nodelet/${qos === 'Guaranteed' ? '' : qos.toLowerCase() + '/'}pod${uid}`,
    create: async (p) => void log.push(`cgroup create ${p}`),
    update: async () => undefined,
    procsFiles: (p) => [`/fake/cgroup${p}/cgroup.procs`],
    killAll: async (p) => void log.push(`cgroup kill ${p}`),
    remove: async (p) => void log.push(`cgroup remove ${p}`),
    stats: async () => ({ cpuUsageNanos: 0, memoryWorkingSetBytes: 0, memoryUsageBytes: 0, pids: 0, oomKills: 0 }),
    pids: async () => [],
    exists: () => true,
    oomCounterFile: (p) => `/fake/cgroup${p}/memory.events`,
    removeEmptyParents: () => void log.push('cgroup removeEmptyParents'),
  };
}

function setup() {
  const dir = `/dev/shm/nodelet-test-rt-${randomBytes(6).toString('hex')}`;
  fs.mkdirSync(dir);
  dirs.push(dir);
  const log: string[] = [];
  const image: ImageRecord = {
    id: 'sha256:' + 'a'.repeat(64), manifestDigest: 'sha256:' + 'b'.repeat(64), names: ['test/app:v1'], repoDigests: [],
    config: { os: 'linux', architecture: 'amd64', env: ['PATH=/bin'], exposedPorts: [], labels: {}, diffIds: [], user: 'app' },
    chainIds: [], size: 0, pulledAt: new Date().toISOString(),
  };
  const images: ImageProvider = {
    getImage: async () => image,
    ensureImage: async () => image,
    prepareRootfs: async (key) => (log.push(`prepare ${key.slice(0, 6)}`), [{ type: 'overlay', source: 'overlay', options: ['lowerdir=/x'] }]),
    removeRootfs: async (key) => void log.push(`removeRootfs ${key.slice(0, 6)}`),
  };
  const pinner: NamespacePinner = {
    pin: async (req) => (log.push(`pin ${[req.net && 'net', req.ipc && 'ipc', req.uts && 'uts'].filter(Boolean).join(',')}`), { net: join(req.dir, 'net'), ipc: join(req.dir, 'ipc'), uts: join(req.dir, 'uts') }),
    unpin: async () => void log.push('unpin'),
  };
  const network: PodNetwork = {
    setUp: async () => (log.push('cni add'), { ips: ['10.9.0.5'], interfaceName: 'eth0' }),
    check: async () => undefined,
    tearDown: async () => void log.push('cni del'),
  };
  let exit!: (s: ShimState) => void;
  const plans: ShimPlan[] = [];
  const shim = {
    start: async (plan: ShimPlan): Promise<ShimState> => {
      plans.push(plan);
      return { containerId: plan.containerId, shimPid: 4000, pid: 4001, status: 'running', startedAt: new Date().toISOString() };
    },
    waitExit: (_stateDir: string) => new Promise<ShimState>((r) => (exit = r)),
    shimAlive: async () => false,
    readState: async () => undefined,
  } as unknown as ShimClient;
  onSignal = (sig) => {
    if (sig === SIG.SIGTERM) exit({ containerId: 'x', shimPid: 4000, pid: 4001, status: 'exited', startedAt: '', finishedAt: new Date().toISOString(), exitCode: 143, signal: 'SIGTERM' });
  };
  const opts = { runRoot: join(dir, 'run'), images, cgroups: fakeCgroups(log), pinner, network, shim, host: fakeHost(log) };
  return { dir, log, opts, plans };
}

const podConfig = (): PodSandboxConfig => ({
  uid: 'u1', name: 'web', namespace: 'default', hostname: 'web', hostNetwork: false, hostPID: false, hostIPC: false, shareProcessNamespace: false,
  hostAliases: [], portMappings: [], qosClass: 'BestEffort', resources: {}, labels: {}, annotations: {},
});

const ctrConfig = (dir: string): ContainerConfig => ({
  name: 'app', attempt: 0, imageRef: 'test/app:v1', imageId: 'sha256:' + 'a'.repeat(64), argv: ['/bin/app'], env: [], mounts: [], resources: {},
  tty: false, stdin: false, logPath: join(dir, 'logs', '0.log'), labels: {}, annotations: {},
  security: { privileged: false, supplementalGroups: [], capabilitiesAdd: [], capabilitiesDrop: [], readOnlyRootFilesystem: false, noNewPrivs: false },
});

describe('NodeletRuntime over a fake HostOps (no root)', () => {
  it('sandbox → container → stop → remove: mounts, signals and host reads go through the port', async () => {
    const { dir, log, opts, plans } = setup();
    const rt = await NodeletRuntime.open(opts);
    const sbId = await rt.runPodSandbox(podConfig());
    const sbDir = join(opts.runRoot, 'sandboxes', sbId);
    expect(log).toContain(`tmpfs ${join(sbDir, 'shm')} size=${64 * 1024 * 1024} mode=1777`);
    // host files: written atomically with their modes, from the fake host's /etc/resolv.conf
    expect(fs.readFileSync(join(sbDir, 'resolv.conf'), 'utf8')).toContain('nameserver 10.0.0.53');
    expect(fs.statSync(join(sbDir, 'hosts')).mode & 0o777).toBe(0o644);
    expect(fs.readFileSync(join(sbDir, 'hosts'), 'utf8')).toContain('10.9.0.5');
    expect(fs.statSync(join(sbDir, 'sandbox.json')).mode & 0o777).toBe(0o600);

    const id = await rt.createContainer(sbId, ctrConfig(dir));
    const rootfs = join(opts.runRoot, 'containers', id, 'rootfs');
    expect(log).toContain(`mount overlay ${rootfs}`);
    await rt.startContainer(id);
    const plan = plans[0]!;
    expect(plan.uid).toBe(1000); // USER app, resolved in the (fake) mounted rootfs
    expect(plan.oomCounterFile).toBe(`/fake/cgroup/nodelet/besteffort/podu1/${id}/memory.events`); // from the CgroupManager interface
    expect((await rt.containerStatus(id)).state).toBe('running');

    await rt.stopContainer(id, 5);
    expect(log).toContain(`signal 4001 ${SIG.SIGTERM}`);
    expect(log).not.toContain(`signal 4001 ${SIG.SIGKILL}`); // it exited on SIGTERM
    expect(log).toContain('close 4001');
    const st = await rt.containerStatus(id);
    expect(st).toMatchObject({ state: 'exited', exitCode: 143 });

    await rt.removeContainer(id);
    expect(log).toContain(`unmount ${rootfs}`);
    await rt.removePodSandbox(sbId);
    expect(log).toContain(`unmount ${join(sbDir, 'shm')}`);
    expect(log.slice(-3)).toEqual(['unpin', `unmount ${join(sbDir, 'shm')}`, `cgroup remove /nodelet/besteffort/podu1`]);
    expect(fs.existsSync(sbDir)).toBe(false);
    await rt.close();
  });

  it('recovers its records from the run root with the same port', async () => {
    const { opts } = setup();
    const rt = await NodeletRuntime.open(opts);
    const sbId = await rt.runPodSandbox(podConfig());
    await rt.close();
    fs.writeFileSync(join(opts.runRoot, 'sandboxes', 'f'.repeat(64) + ''), ''); // not a directory: ignored
    const rt2 = await NodeletRuntime.open(opts);
    expect((await rt2.listPodSandboxes()).map((s) => s.id)).toEqual([sbId]);
    await rt2.close();
  });
});
