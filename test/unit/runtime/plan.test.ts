import { describe, expect, it } from 'vitest';
import { computeShimPlan, mergeEnv, computeRlimits, MASKED_PATHS, READONLY_PATHS, type ShimPlanInput } from '../../../src/runtime/compute-plan.js';
import { capabilityNumber, computeCapabilitySet, maskToHex, maskToNames, DEFAULT_CAPABILITIES } from '../../../src/runtime/capabilities.js';
import type { ContainerConfig, PodSandboxConfig } from '../../../src/runtime/types.js';
import { MS } from '../../../src/sys/ffi.js';

function pod(over: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
  return {
    uid: 'u1', name: 'web', namespace: 'default', hostname: 'web', hostNetwork: false, hostPID: false, hostIPC: false,
    shareProcessNamespace: false, hostAliases: [], portMappings: [], qosClass: 'BestEffort', resources: {}, labels: {}, annotations: {},
    ...over,
  };
}

function ctr(over: Partial<ContainerConfig> = {}, sec: Partial<ContainerConfig['security']> = {}): ContainerConfig {
  return {
    name: 'app', attempt: 0, imageRef: 'busybox', imageId: 'sha256:x', argv: ['/bin/sh', '-c', 'true'], env: [], mounts: [],
    resources: {}, tty: false, stdin: false, logPath: '/logs/app/0.log', labels: {}, annotations: {},
    security: { privileged: false, supplementalGroups: [], capabilitiesAdd: [], capabilitiesDrop: [], readOnlyRootFilesystem: false, noNewPrivs: false, ...sec },
    ...over,
  };
}

function input(over: Partial<ShimPlanInput> = {}, p = pod(), c = ctr()): ShimPlanInput {
  return {
    containerId: 'c'.repeat(64), stateDir: '/run/n/containers/c', rootfs: '/run/n/containers/c/rootfs', config: c,
    sandbox: {
      config: p, namespaces: p.hostNetwork ? {} : { net: '/run/n/sb/ns/net', ipc: '/run/n/sb/ns/ipc', uts: '/run/n/sb/ns/uts' },
      sharedPidNs: p.shareProcessNamespace ? '/proc/42/ns/pid' : undefined,
      hostsPath: '/sb/hosts', hostnamePath: '/sb/hostname', resolvConfPath: '/sb/resolv.conf', shmPath: '/sb/shm',
    },
    user: { uid: 0, gid: 0, additionalGids: [], home: '/root' },
    cgroupVersion: 'v1',
    cgroupProcsFiles: ['/sys/fs/cgroup/memory/n/pod/c/cgroup.procs', '/sys/fs/cgroup/pids/n/pod/c/cgroup.procs'],
    capLastCap: 40, nofileHardLimit: 20000,
    ...over,
  };
}

describe('computeCapabilitySet', () => {
  const names = (o: Parameters<typeof computeCapabilitySet>[0]) => maskToNames(computeCapabilitySet(o)).sort();
  it.each([
    ['default', { add: [], drop: [] }, [...DEFAULT_CAPABILITIES].sort()],
    ['add one', { add: ['NET_ADMIN'], drop: [] }, [...DEFAULT_CAPABILITIES, 'NET_ADMIN'].sort()],
    ['drop one with CAP_ prefix', { add: [], drop: ['CAP_NET_RAW'] }, DEFAULT_CAPABILITIES.filter((c) => c !== 'NET_RAW').sort()],
    ['drop ALL', { add: [], drop: ['ALL'] }, []],
    ['drop ALL add one', { add: ['NET_BIND_SERVICE'], drop: ['ALL'] }, ['NET_BIND_SERVICE']],
    ['add ALL drop one', { add: ['ALL'], drop: ['SYS_ADMIN'] }, maskToNames((1n << 41n) - 1n).filter((n) => n !== 'SYS_ADMIN').sort()],
  ])('%s', (_n, o, want) => {
    expect(names({ privileged: false, capLastCap: 40, ...o })).toEqual(want);
  });
  it('the default set is containerd\'s mask 0xa80425fb', () => {
    expect(maskToHex(computeCapabilitySet({ privileged: false, add: [], drop: [], capLastCap: 40 }))).toBe('0x00000000a80425fb');
  });
  it('privileged gets every capability the kernel knows, ignoring drops', () => {
    expect(computeCapabilitySet({ privileged: true, add: [], drop: ['ALL'], capLastCap: 37 })).toBe((1n << 38n) - 1n);
  });
  it('never grants what the daemon lacks (no CAP_SYS_RESOURCE here)', () => {
    const avail = ((1n << 41n) - 1n) & ~(1n << 24n);
    expect(computeCapabilitySet({ privileged: true, add: [], drop: [], capLastCap: 40, available: avail })).toBe(avail);
    const r = computeShimPlan(input({ capAvailable: avail }, pod(), ctr({}, { capabilitiesAdd: ['SYS_RESOURCE', 'NET_ADMIN'] })));
    expect(maskToNames(BigInt(r.plan.capabilities.bounding))).toContain('NET_ADMIN');
    expect(maskToNames(BigInt(r.plan.capabilities.bounding))).not.toContain('SYS_RESOURCE');
    expect(r.warnings.join()).toMatch(/SYS_RESOURCE not granted/);
  });
  it('unknown capability names are a clear error', () => {
    expect(() => capabilityNumber('NET_FLY')).toThrow(/Unknown capability "NET_FLY"/);
  });
});

describe('computeRlimits / mergeEnv', () => {
  it('clamps nofile to the hard limit with a warning', () => {
    const r = computeRlimits(20000);
    expect(r.rlimits).toEqual([{ resource: 7, soft: 20000, hard: 20000 }]);
    expect(r.warnings[0]).toMatch(/clamped/);
  });
  it('keeps 1048576 when allowed', () => {
    expect(computeRlimits(2 ** 20 * 4)).toEqual({ rlimits: [{ resource: 7, soft: 1048576, hard: 1048576 }], warnings: [] });
  });
  it('later env lists replace earlier keys', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4=5'])).toEqual(['A=1', 'B=3', 'C=4=5']);
  });
});

describe('computeShimPlan', () => {
  it('joins the pod namespaces first and creates pid + mnt', () => {
    const { plan } = computeShimPlan(input());
    expect(plan.namespaces).toEqual([
      { type: 'net', path: '/run/n/sb/ns/net' }, { type: 'ipc', path: '/run/n/sb/ns/ipc' }, { type: 'uts', path: '/run/n/sb/ns/uts' },
      { type: 'pid' }, { type: 'mnt' },
    ]);
    expect(plan.hostname).toBeUndefined();
  });

  it.each([
    ['hostNetwork', pod({ hostNetwork: true }), [{ type: 'ipc', path: undefined }, { type: 'pid' }, { type: 'mnt' }]],
    ['hostPID', pod({ hostPID: true }), [{ type: 'net' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mnt' }]],
    ['hostIPC', pod({ hostIPC: true }), [{ type: 'net' }, { type: 'uts' }, { type: 'pid' }, { type: 'mnt' }]],
    ['shareProcessNamespace', pod({ shareProcessNamespace: true }), [{ type: 'net' }, { type: 'ipc' }, { type: 'uts' }, { type: 'pid', path: '/proc/42/ns/pid' }, { type: 'mnt' }]],
  ])('namespaces with %s', (_n, p, want) => {
    const inp = input({}, p);
    if (p.hostNetwork) inp.sandbox.namespaces = { ipc: '/x/ipc' };
    const got = computeShimPlan(inp).plan.namespaces.map((n) => (n.path && n.type !== 'pid' ? { type: n.type } : n));
    expect(got.map((n) => n.type)).toEqual(want.map((n) => n.type));
    const pidNs = got.find((n) => n.type === 'pid');
    if (p.shareProcessNamespace) expect(pidNs).toEqual({ type: 'pid', path: '/proc/42/ns/pid' });
  });

  it('mounts in runc order with the pod files and /dev/shm bound from the sandbox', () => {
    const { plan } = computeShimPlan(input());
    expect(plan.mounts.map((m) => m.target)).toEqual([
      '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys', '/sys/fs/cgroup', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids',
      '/etc/hosts', '/etc/hostname', '/etc/resolv.conf',
    ]);
    const byT = Object.fromEntries(plan.mounts.map((m) => [m.target, m]));
    expect(byT['/dev/pts']!.data).toContain('newinstance');
    expect(byT['/dev/pts']!.data).toContain('ptmxmode=0666');
    expect(byT['/dev/shm']!.source).toBe('/sb/shm');
    const sys = plan.mounts.filter((m) => m.target === '/sys');
    expect(sys[0]).toMatchObject({ fstype: 'sysfs' });
    expect(sys[0]!.flags & MS.RDONLY).toBe(0); // the superblock is shared by the pod: never mount it ro
    expect(sys[1]).toMatchObject({ fstype: 'bind', source: '/run/n/containers/c/rootfs/sys' });
    expect(sys[1]!.flags & MS.RDONLY).toBe(MS.RDONLY);
    expect(byT['/sys/fs/cgroup/memory']).toMatchObject({ source: '/sys/fs/cgroup/memory/n/pod/c', fstype: 'bind' });
    expect(byT['/sys/fs/cgroup/memory']!.flags & MS.RDONLY).toBe(MS.RDONLY);
    expect(byT['/etc/hosts']).toMatchObject({ source: '/sb/hosts', mkdir: 'file' });
    expect(plan.maskedPaths).toEqual(MASKED_PATHS);
    expect(plan.readonlyPaths).toEqual(READONLY_PATHS);
    expect(plan.devices.map((d) => d.path)).toEqual(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    expect(plan.symlinks).toContainEqual(['/dev/ptmx', 'pts/ptmx']);
    expect(plan.symlinks).toContainEqual(['/dev/fd', '/proc/self/fd']);
  });

  it('cgroup v2 mounts cgroup2 read-only', () => {
    const { plan } = computeShimPlan(input({ cgroupVersion: 'v2', cgroupProcsFiles: ['/sys/fs/cgroup/n/pod/c/cgroup.procs'] }));
    const cg = plan.mounts.filter((m) => m.target.startsWith('/sys/fs/cgroup'));
    expect(cg).toHaveLength(1);
    expect(cg[0]).toMatchObject({ fstype: 'cgroup2' });
    expect(cg[0]!.flags & MS.RDONLY).toBe(MS.RDONLY);
  });

  it('volumes: read-only honoured, parents before children, a volume on /etc/hosts replaces the managed file', () => {
    const c = ctr({ mounts: [
      { hostPath: '/h/b', containerPath: '/data/sub', readOnly: false, propagation: 'rslave' },
      { hostPath: '/h/a', containerPath: '/data', readOnly: true },
      { hostPath: '/h/hosts', containerPath: '/etc/hosts', readOnly: true },
    ] });
    const { plan } = computeShimPlan(input({}, pod(), c));
    const vols = plan.mounts.filter((m) => m.source.startsWith('/h/'));
    expect(vols.map((v) => v.target)).toEqual(['/data', '/data/sub', '/etc/hosts']);
    expect(vols[0]!.flags & MS.RDONLY).toBe(MS.RDONLY);
    expect(vols[1]!.flags & MS.RDONLY).toBe(0);
    expect(vols[1]!.flags & (MS.SLAVE | MS.PRIVATE | MS.REC)).toBe(MS.SLAVE | MS.REC);
    expect(vols[0]!.flags & MS.PRIVATE).toBe(MS.PRIVATE);
    expect(plan.mounts.filter((m) => m.target === '/etc/hosts')).toHaveLength(1);
  });

  it('a file volume gets a file target, a directory volume a directory; /proc, /dev, /sys are created if the image lacks them', () => {
    const c = ctr({ mounts: [
      { hostPath: '/h/dir', containerPath: '/data', readOnly: false },
      { hostPath: '/h/file', containerPath: '/dev/termination-log', readOnly: false },
    ] });
    const { plan } = computeShimPlan(input({ fileVolumeSources: new Set(['/h/file']) }, pod(), c));
    expect(plan.mounts.find((m) => m.source === '/h/dir')!.mkdir).toBe('dir');
    expect(plan.mounts.find((m) => m.source === '/h/file')!.mkdir).toBe('file');
    for (const t of ['/proc', '/dev', '/sys']) expect(plan.mounts.find((m) => m.target === t)!.mkdir).toBe('dir');
  });

  it('privileged: all caps, host devices, writable /sys and cgroups, nothing masked', () => {
    const c = ctr({}, { privileged: true, noNewPrivs: true });
    const { plan } = computeShimPlan(input({ hostDevices: [{ path: '/dev/loop0', type: 'b', major: 7, minor: 0, mode: 0o660, uid: 0, gid: 6 }] }, pod(), c));
    expect(plan.capabilities.bounding).toBe(maskToHex((1n << 41n) - 1n));
    expect(plan.devices.map((d) => d.path)).toContain('/dev/loop0');
    expect(plan.mounts.filter((m) => m.target === '/sys')).toHaveLength(1);
    expect(plan.mounts.find((m) => m.target === '/sys')!.flags & MS.RDONLY).toBe(0);
    expect(plan.mounts.find((m) => m.target === '/sys/fs/cgroup/memory')!.flags & MS.RDONLY).toBe(0);
    expect(plan.maskedPaths).toEqual([]);
    expect(plan.readonlyPaths).toEqual([]);
    expect(plan.noNewPrivs).toBe(false);
  });

  it('procMount Unmasked clears masked and read-only paths only', () => {
    const { plan } = computeShimPlan(input({}, pod(), ctr({}, { procMount: 'Unmasked' })));
    expect(plan.maskedPaths).toEqual([]);
    expect(plan.capabilities.bounding).toBe('0x00000000a80425fb');
  });

  it('env: PATH default, HOSTNAME, image env, then spec env wins; HOME from passwd', () => {
    const { plan } = computeShimPlan(input({ image: { env: ['PATH=/img/bin', 'A=img', 'B=img'] }, user: { uid: 1000, gid: 1000, additionalGids: [], home: '/home/u' } }, pod(), ctr({ env: ['B=spec'] })));
    expect(plan.env).toEqual(['PATH=/img/bin', 'HOSTNAME=web', 'A=img', 'B=spec', 'HOME=/home/u']);
    expect(plan.uid).toBe(1000);
  });

  it('hostNetwork: HOSTNAME is the host\'s', () => {
    const inp = input({}, pod({ hostNetwork: true }));
    inp.sandbox.namespaces = { ipc: '/x/ipc' };
    inp.sandbox.hostHostname = 'node1';
    expect(computeShimPlan(inp).plan.env).toContain('HOSTNAME=node1');
  });

  it('cwd: spec workingDir, else the image, else /', () => {
    expect(computeShimPlan(input({ image: { env: [], workingDir: '/img' } }, pod(), ctr({ workingDir: '/w' }))).plan.cwd).toBe('/w');
    expect(computeShimPlan(input({ image: { env: [], workingDir: '/img' } })).plan.cwd).toBe('/img');
    expect(computeShimPlan(input()).plan.cwd).toBe('/');
  });

  it('rlimits never exceed the caller hard limit, with a warning', () => {
    const r = computeShimPlan(input());
    expect(r.plan.rlimits[0]!.hard).toBe(20000);
    expect(r.warnings.join()).toMatch(/RLIMIT_NOFILE/);
  });

  it('readOnlyRootFilesystem sets the flag and mounts the pod files read-only', () => {
    const { plan } = computeShimPlan(input({}, pod(), ctr({}, { readOnlyRootFilesystem: true })));
    expect(plan.readonlyRootfs).toBe(true);
    expect(plan.mounts.find((m) => m.target === '/etc/resolv.conf')!.flags & MS.RDONLY).toBe(MS.RDONLY);
  });

  it.each([
    ['empty argv', ctr({ argv: [] }), /has no command/],
    ['relative volume path', ctr({ mounts: [{ hostPath: '/h', containerPath: 'data', readOnly: false }] }), /mountPath "data"/],
    ['.. in volume path', ctr({ mounts: [{ hostPath: '/h', containerPath: '/a/../etc', readOnly: false }] }), /without "\.\."/],
    ['runAsNonRoot as root', ctr({}, { runAsNonRoot: true }), /runAsNonRoot/],
  ])('rejects %s', (_n, c, re) => {
    expect(() => computeShimPlan(input({}, pod(), c))).toThrow(re);
  });

  it('raises oom_score_adj to the floor the daemon may set, with a warning', () => {
    const r = computeShimPlan(input({ oomScoreAdj: -997, oomScoreAdjFloor: 0 }));
    expect(r.plan.oomScoreAdj).toBe(0);
    expect(r.warnings.join()).toMatch(/CAP_SYS_RESOURCE/);
    expect(computeShimPlan(input({ oomScoreAdj: 500, oomScoreAdjFloor: 0 })).plan.oomScoreAdj).toBe(500);
    expect(computeShimPlan(input({ oomScoreAdj: -997 })).plan.oomScoreAdj).toBe(-997);
  });

  it('passes cgroup, oom and log settings through', () => {
    const { plan } = computeShimPlan(input({ oomScoreAdj: 1000, oomCounterFile: '/sys/fs/cgroup/memory/n/pod/c/memory.oom_control' }));
    expect(plan.oomScoreAdj).toBe(1000);
    expect(plan.cgroupProcsFiles).toHaveLength(2);
    expect(plan.logMaxBytes).toBe(10 * 1024 * 1024);
    expect(plan.capabilities.inheritable).toBe('0x0000000000000000');
  });
});
