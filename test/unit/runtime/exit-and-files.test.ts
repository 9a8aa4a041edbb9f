import { describe, expect, it } from 'vitest';
import { computeExitStatus } from '../../../src/runtime/exit-status.js';
import { computeHostsFile, computeResolvConf } from '../../../src/runtime/sandbox-files.js';
import { computePodInitPlan } from '../../../src/runtime/pod-init.js';

describe('computeExitStatus', () => {
  const base = { containerOomKills: 0, podOomKills: 0, containerHasMemoryLimit: false };
  it.each([
    ['exit 0 → Completed', { exitCode: 0 }, base, { exitCode: 0, reason: 'Completed', oomKilled: false }],
    ['exit 3 → Error', { exitCode: 3 }, base, { exitCode: 3, reason: 'Error', oomKilled: false }],
    ['SIGKILL without code → 137', { signal: 'SIGKILL' }, base, { exitCode: 137, signal: 'SIGKILL', reason: 'Error', oomKilled: false }],
    ['SIGTERM → 143', { signal: 'SIGTERM' }, base, { exitCode: 143, reason: 'Error' }],
    ['shim OOM + container limit', { signal: 'SIGKILL', exitCode: 137, oomKilled: true }, { ...base, containerHasMemoryLimit: true }, { exitCode: 137, reason: 'OOMKilled', oomKilled: true, oomScope: 'container' }],
    ['cgroup counter only', { exitCode: 137 }, { ...base, containerOomKills: 1, containerHasMemoryLimit: true }, { reason: 'OOMKilled', oomScope: 'container' }],
    ['pod limit fired', { signal: 'SIGKILL', oomKilled: true }, { ...base, podOomKills: 1, podHasMemoryLimit: true }, { reason: 'OOMKilled', oomScope: 'pod' }],
    // containerd: an OOM kill in the container's cgroup (a worker the victim) → OOMKilled whatever the main process's code
    ['worker OOM-killed, main exits 3 (shim flag)', { exitCode: 3, oomKilled: true }, { ...base, containerHasMemoryLimit: true }, { reason: 'OOMKilled', oomKilled: true, exitCode: 3, oomScope: 'container' }],
    ['worker OOM-killed, main exits 0 (cgroup counter)', { exitCode: 0 }, { ...base, containerOomKills: 1, containerHasMemoryLimit: true }, { reason: 'OOMKilled', oomKilled: true, exitCode: 0 }],
    ['a pod-level OOM kill of another container does not mark a clean exit', { exitCode: 0 }, { ...base, podOomKills: 1, podHasMemoryLimit: true }, { reason: 'Completed', oomKilled: false }],
  ])('%s', (_n, state, rest, want) => {
    expect(computeExitStatus({ state, ...rest })).toMatchObject(want);
  });
});

describe('computeHostsFile', () => {
  it('kubelet-managed content with pod IP and aliases', () => {
    const t = computeHostsFile({ hostname: 'web', podIPs: ['10.88.0.5'], hostAliases: [{ ip: '1.2.3.4', hostnames: ['a', 'b'] }], hostNetwork: false });
    expect(t).toMatch(/^# Kubernetes-managed hosts file\.\n127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n/);
    expect(t).toContain('10.88.0.5\tweb\n');
    expect(t).toContain('# Entries added by HostAliases.\n1.2.3.4\ta\tb\n');
  });
  it('hostNetwork copies the host file', () => {
    expect(computeHostsFile({ hostname: 'x', podIPs: [], hostAliases: [], hostNetwork: true, hostHostsFile: '127.0.0.1 me' })).toBe('127.0.0.1 me\n');
  });
});

describe('computeResolvConf', () => {
  it('explicit dns config', () => {
    expect(computeResolvConf({ dns: { nameservers: ['10.0.0.10'], searches: ['ns.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] }, hostNetwork: false, hostResolvConf: '' }).content)
      .toBe('search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n');
  });
  it('host file minus loopback nameservers', () => {
    const r = computeResolvConf({ hostNetwork: false, hostResolvConf: 'nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch lan\nnameserver ::1' });
    expect(r.content).toBe('nameserver 10.1.1.1\nsearch lan\n');
    expect(r.droppedNameservers).toEqual(['127.0.0.53', '::1']);
  });
  it('hostNetwork keeps loopback nameservers', () => {
    expect(computeResolvConf({ hostNetwork: true, hostResolvConf: 'nameserver 127.0.0.53\n' }).content).toBe('nameserver 127.0.0.53\n');
  });
});

describe('computePodInitPlan', () => {
  it('pod-init joins the pinned namespaces, creates pid + mnt, runs unprivileged', () => {
    const p = computePodInitPlan({ sandboxId: 's', dir: '/sb/pod-init', binary: '/bin/busybox', namespaces: { net: '/n', ipc: '/i', uts: '/u' }, cgroupProcsFiles: ['/x/cgroup.procs'], nofileHardLimit: 100 });
    expect(p.namespaces).toEqual([{ type: 'net', path: '/n' }, { type: 'ipc', path: '/i' }, { type: 'uts', path: '/u' }, { type: 'pid' }, { type: 'mnt' }]);
    expect(p.uid).toBe(65534);
    expect(p.capabilities.bounding).toBe('0x0000000000000000');
    expect(p.rlimits[0]!.hard).toBe(100);
  });
});
