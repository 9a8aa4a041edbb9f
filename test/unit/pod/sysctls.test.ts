import { describe, expect, it } from 'vitest';
import { SysctlAllowlist, namespacedBy, sysctlProcPath, toDotSeparated } from '../../../src/pod/sysctls.js';
import type { Pod } from '../../../src/pod/api-types.js';

const pod = (sysctls: { name: string; value: string }[], spec: Partial<Pod['spec']> = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u' },
  spec: { containers: [{ name: 'c', image: 'i' }], securityContext: { sysctls }, ...spec },
});

describe('sysctl names', () => {
  it('reads both notations; a slash in the dot form is a dot inside a component', () => {
    expect(toDotSeparated('net.ipv4.ip_forward')).toBe('net.ipv4.ip_forward');
    expect(toDotSeparated('net/ipv4/conf/eth0.100/rp_filter')).toBe('net.ipv4.conf.eth0/100.rp_filter');
    expect(sysctlProcPath('net.ipv4.conf.eth0/100.rp_filter')).toBe('net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlProcPath('net/ipv4/conf/eth0.100/rp_filter')).toBe('net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlProcPath('kernel.shm_rmid_forced')).toBe('kernel/shm_rmid_forced');
  });

  it('knows which namespace isolates a sysctl', () => {
    expect(namespacedBy('net.core.somaxconn')).toBe('net');
    expect(namespacedBy('kernel.msgmax')).toBe('ipc');
    expect(namespacedBy('kernel.sem')).toBe('ipc');
    expect(namespacedBy('fs.mqueue.msg_max')).toBe('ipc');
    expect(namespacedBy('kernel.pid_max')).toBeUndefined();
    expect(namespacedBy('vm.swappiness')).toBeUndefined();
  });
});

describe('kubelet sysctl admission', () => {
  it('admits the safe set, refuses the rest with SysctlForbidden naming the sysctl', () => {
    const a = new SysctlAllowlist();
    expect(a.admit(pod([{ name: 'net.ipv4.ip_local_port_range', value: '1024 65000' }, { name: 'kernel.shm_rmid_forced', value: '1' }]))).toBeUndefined();
    expect(a.admit(pod([{ name: 'net.core.somaxconn', value: '1024' }]))).toEqual({
      reason: 'SysctlForbidden', message: 'Pod was rejected: forbidden sysctl: "net.core.somaxconn" not allowlisted',
    });
  });

  it('unsafe patterns from the node allow more; host namespaces forbid theirs', () => {
    const a = new SysctlAllowlist(['net.core.somaxconn', 'kernel.msg*']);
    expect(a.check('net.core.somaxconn', false, false)).toBeUndefined();
    expect(a.check('kernel.msgmax', false, false)).toBeUndefined();
    expect(a.check('kernel.sem', false, false)).toBe('"kernel.sem" not allowlisted');
    expect(a.check('net.core.somaxconn', true, false)).toBe('"net.core.somaxconn" not allowed with host net enabled');
    expect(a.check('kernel.shm_rmid_forced', false, true)).toBe('"kernel.shm_rmid_forced" not allowed with host ipc enabled');
    expect(a.admit(pod([{ name: 'net.ipv4.tcp_syncookies', value: '1' }], { hostNetwork: true }))?.reason).toBe('SysctlForbidden');
  });

  it('refuses patterns that are malformed or not namespaced', () => {
    expect(() => new SysctlAllowlist(['kernel.pid_max'])).toThrow(/not known to be namespaced/);
    expect(() => new SysctlAllowlist(['vm.*'])).toThrow(/not known to be namespaced/);
    expect(() => new SysctlAllowlist(['net..core'])).toThrow(/is invalid/);
    expect(() => new SysctlAllowlist(['Net.core'])).toThrow(/is invalid/);
  });
});
